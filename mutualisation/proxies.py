"""The address of the person behind a request, as the login throttling and the API's rate limits
count it: REMOTE_ADDR, or behind MUTUALIS_PROXY_COUNT trusted reverse proxies the hop the
outermost one appended to X-Forwarded-For (what the client wrote before that hop is ignored:
anyone can write that header)."""

from django.conf import settings


def client_ip(request) -> str | None:
    """The client's address (the rule of Django REST framework's ``NUM_PROXIES``, set from the
    same setting, so that the login page and the API count the same person)."""
    proxies = getattr(settings, "MUTUALIS_PROXY_COUNT", 0)
    remote = request.META.get("REMOTE_ADDR")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",")]
    return hops[-min(proxies, len(hops))] or remote
