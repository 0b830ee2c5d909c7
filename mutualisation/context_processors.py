"""Template context shared by every page: the navigation the user's roles open."""

from django.urls import reverse
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
    if user is not None and user.is_authenticated and user.has_perm("mutualisation.use_admin"):
        items.append({"label": _("Administration"), "url": reverse("admin:index"), "name": "admin"})
    return {"nav_items": items, "user_scope": scope}
