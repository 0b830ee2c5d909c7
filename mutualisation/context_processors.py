"""Template context shared by every page: the navigation the user's roles open."""

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from mutualisation.rules import scope_of


def navigation(request):
    user = getattr(request, "user", None)
    scope = scope_of(user)
    items = []
    if scope.has_any_role:
        items.append({"label": _("Territoire"), "url": reverse("home"), "name": "home"})
        items.append(
            {"label": _("Conventions"), "url": reverse("conventions:list"), "name": "conventions"}
        )
        items.append(
            {"label": _("Remboursements"), "url": reverse("costing:index"), "name": "costing"}
        )
        # The programme: the scheme, who adheres to what, staff, the annual report.
        items.append(
            {
                "label": _("Mutualisation"),
                "url": reverse("conventions:schemes"),
                "name": "mutualisation",
            }
        )
    if user is not None and user.is_authenticated and user.has_perm("costing.record_usage"):
        # The finance officer's monthly work: the grids and the import of the usage.
        items.append(
            {
                "label": _("Recours"),
                "url": reverse("costing:usage-list", args=[timezone.localdate().year]),
                "name": "usage",
            }
        )
    if user is not None and user.is_authenticated and user.has_perm("mutualisation.use_admin"):
        items.append({"label": _("Administration"), "url": reverse("admin:index"), "name": "admin"})
    return {"nav_items": items, "user_scope": scope, "nav_current": current_item(request)}


# The conventions' pages that belong to the programme rather than to one convention.
PROGRAMME_PAGES = ("scheme", "adhesions", "staff")


def current_item(request) -> str | None:
    """The menu item of the page shown: its application's, the usage pages' being « Recours »."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return None
    name = match.url_name or ""
    if match.namespace == "costing" and name.startswith("usage"):
        return "usage"
    if (match.namespace, name) == ("costing", "annual-report") or (
        match.namespace == "conventions" and name.startswith(PROGRAMME_PAGES)
    ):
        return "mutualisation"
    return match.namespace or match.url_name
