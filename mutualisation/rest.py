"""The REST API's settings-level parts (pagination, the one error shape), apart from the
resources so that DRF's settings can import them without importing the views.

Errors have one shape, in French::

    {"detail": "Les données envoyées sont invalides.", "code": "invalid",
     "fields": {"units": ["Ce champ est obligatoire."], "records.3.period_start": [...]}}
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions, pagination, serializers
from rest_framework.views import exception_handler as drf_exception_handler

API_PREFIX = "/api/"


class Pagination(pagination.PageNumberPagination):
    """``?page=2&page_size=200`` (at most 500 a page): ``count``, ``next``, ``previous``,
    ``results``."""

    page_size_query_param = "page_size"
    max_page_size = 500


class DocumentActionsMixin:
    """A viewset whose ``document_actions`` answer a document (a PDF) whatever the client's
    ``Accept`` says: with DRF's JSON renderer alone, a client asking for ``application/pdf``
    was refused 406. A refusal of such an action (404, 429) stays in the JSON error shape."""

    document_actions = ("pdf",)

    def perform_content_negotiation(self, request, force=False):
        force = force or getattr(self, "action", None) in self.document_actions
        return super().perform_content_negotiation(request, force=force)


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (documented in the schema)."""

    detail = serializers.CharField()
    code = serializers.CharField()
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), required=False
    )
    missing = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Une action refusée (409) : tout ce qui manque, en phrases.",
    )
    target = serializers.CharField(
        required=False, help_text="Une transition refusée : le statut visé."
    )


def flatten(errors, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested validation errors as ``{"field": [...], "records.3.units": [...]}``."""
    flat: dict[str, list[str]] = {}
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = "non_field_errors" if key in ("non_field_errors", "__all__") else str(key)
            flat.update(flatten(value, f"{prefix}{name}." if prefix or name else ""))
        return {key.rstrip("."): value for key, value in flat.items()}
    if isinstance(errors, list) and errors and all(not isinstance(e, dict | list) for e in errors):
        return {prefix.rstrip(".") or "non_field_errors": [str(e) for e in errors]}
    if isinstance(errors, list):
        for index, value in enumerate(errors):
            if value:
                flat.update(flatten(value, f"{prefix}{index}."))
        return flat
    return {prefix.rstrip(".") or "non_field_errors": [str(errors)]}


class Refused(exceptions.APIException):
    """An action the law or the data refuses (a legal transition, issuing a statement, a unit
    cost): 409, with everything missing as French sentences under ``missing``."""

    status_code = 409
    default_code = "refused"

    def __init__(self, detail: str, missing=(), *, target: str = "", code: str = "refused"):
        super().__init__(detail, code)
        self.missing = [str(item) for item in missing]
        self.target = target


class Conflict(exceptions.ValidationError):
    """Data that contradicts what is already recorded (409), with each field's messages under
    ``fields`` as for invalid data."""

    status_code = 409
    default_code = "conflict"


def exception_handler(exc, context):
    """Every error in the API's one shape: ``detail`` (French), ``code``, and for invalid
    data, each field's messages under ``fields``."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Ressource introuvable."))
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django's 500, logged
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten(exc.detail)
        conflict = isinstance(exc, Conflict)
        body = {
            "detail": _("Les données envoyées contredisent celles déjà enregistrées.")
            if conflict
            else _("Les données envoyées sont invalides."),
            "code": "conflict" if conflict else "invalid",
            "fields": fields,
        }
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
        body = {"detail": str(detail), "code": str(code)}
        if isinstance(exc, Refused):  # everything missing, and the status refused if any
            body["missing"] = exc.missing
            if exc.target:
                body["target"] = exc.target
    response.data = body
    return response


# Django's own error pages (an address no URL matches, a NUL character refused by
# mutualisation.middleware, an unexpected error) answer the API's clients in its error shape
# rather than an HTML page (mutualisation/urls.py: handler400, handler403, handler404,
# handler500).


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def error_response(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def bad_request(request, exception):
    if is_api(request):
        return error_response(400, _("Requête invalide."), "bad_request")
    return defaults.bad_request(request, exception)


def permission_denied(request, exception):
    if is_api(request):
        return error_response(403, _("Action non permise."), "permission_denied")
    return defaults.permission_denied(request, exception)


def page_not_found(request, exception):
    if is_api(request):
        return error_response(404, _("Ressource introuvable."), "not_found")
    return defaults.page_not_found(request, exception)


def server_error(request):
    if is_api(request):
        return error_response(
            500, _("Erreur du serveur : l'équipe est prévenue, réessayez plus tard."), "error"
        )
    return defaults.server_error(request)
