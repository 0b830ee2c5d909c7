"""Response headers every page carries, beyond Django's security middleware; requests no
person can send refused early; the page of a request that waited too long for another's
write."""

import logging

from django.core.exceptions import BadRequest
from django.http import HttpResponse
from django.template.loader import render_to_string

from mutualisation.database import is_busy

logger = logging.getLogger(__name__)

# No browser feature the application uses: camera, microphone, location, payment, USB…
PERMISSIONS_POLICY = (
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), "
    "interest-cohort=(), fullscreen=(self)"
)


class PrivateResponsesMiddleware:
    """Pages of a signed-in person, and every document (PDF, CSV, XLSX, ZIP), are never kept by
    a shared office PC's browser or a proxy (``Cache-Control: no-store``); every response
    states the Permissions-Policy."""

    DOCUMENT_TYPES = ("application/pdf", "text/csv", "application/zip", "application/vnd.")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        user = getattr(request, "user", None)
        content_type = response.get("Content-Type", "")
        if (user is not None and user.is_authenticated) or content_type.startswith(
            self.DOCUMENT_TYPES
        ):
            response["Cache-Control"] = "no-store, private"
        return response


class BusyDatabaseMiddleware:
    """A write that waited too long for another one (mutualisation.database.is_busy) answers a
    French « réessayez » page, status 503 with Retry-After, rather than a server error. The
    services roll their transaction back, so nothing of the request was half-written."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not is_busy(exception):
            return None
        logger.warning(
            "Base de données occupée : %s %s", request.method, request.path, exc_info=True
        )
        response = HttpResponse(render_to_string("503.html"), status=503)
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response


class RefuseNulCharactersMiddleware:
    """An address or a query string holding a NUL character (``%00``) is no request a person
    sends: answered « Requête invalide » (400). PostgreSQL refuses the character even in a
    lookup, so a reference read from the address gave a 500. Forms already refuse it in what
    is posted."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path_info or any(
            "\x00" in key or "\x00" in value
            for key, values in request.GET.lists()
            for value in values
        ):
            raise BadRequest
        return self.get_response(request)
