"""The API's OpenAPI schema (/api/v1/schema/): drf-spectacular's, with the error answers of
each operation documented in the one error shape (mutualisation/rest.py's ``ErrorSerializer``).

Apart from mutualisation/rest.py: drf-spectacular's AutoSchema imports DRF's generic views,
which read DRF's settings, which import mutualisation/rest.py (pagination, errors)."""

from django.utils.translation import gettext_lazy
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import permissions

from mutualisation.rest import ErrorSerializer

# What each error status means, as the schema documents it (each answered in the error shape).
ERROR_DESCRIPTIONS = {
    400: gettext_lazy(
        "Requête invalide : un paramètre (filtre, date, nombre) ou une donnée envoyée est "
        "refusé ; « fields » détaille chaque champ."
    ),
    401: gettext_lazy("Authentification absente, ou jeton inconnu ou révoqué."),
    403: gettext_lazy("Action non permise à cet utilisateur."),
    404: gettext_lazy(
        "Ressource introuvable, ou que l'utilisateur ne peut pas voir (jamais 403, qui dirait "
        "qu'elle existe) ; ou page au-delà de la dernière."
    ),
    409: gettext_lazy("Conflit avec l'état de la ressource (modifiée entre-temps, déjà émise)."),
    429: gettext_lazy(
        "Trop de requêtes : réessayez après le nombre de secondes de l'en-tête Retry-After."
    ),
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's schema, plus the error answers each operation can give, all in the
    one error shape (``ErrorSerializer``): 400 (a refused parameter, or a NUL character in the
    address), 401 (authentication), 403, 404 (a resource or a page), 409 (writes only) and
    429 (throttling)."""

    def error_statuses(self) -> list[int]:
        statuses = {400, 429}
        if self.view.get_authenticators():
            statuses.add(401)  # an unknown or revoked token is refused even where anyone reads
        if not any(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            statuses.add(403)
        if "{" in self.path or self._is_list_view() and self._get_paginator() is not None:
            statuses.add(404)
        if self.method not in permissions.SAFE_METHODS:
            statuses.add(409)
        return sorted(statuses)

    def get_description(self):
        """The view's French ``api_description`` (the schema and the Swagger UI are read by
        the API's users), rather than its docstring, written for developers."""
        description = getattr(self.view, "api_description", None)
        return str(description) if description else super().get_description()

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in self.error_statuses():
            responses.setdefault(
                str(status),
                self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=str(ERROR_DESCRIPTIONS[status])),
                    str(status),
                    direction=direction,
                ),
            )
        return responses
