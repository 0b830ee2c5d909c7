from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

import mutualisation.converters  # noqa: F401  (registers <year:…> for every app's addresses)
from mutualisation import views
from mutualisation.forms import AdminLoginForm, LoginForm

admin.site.site_header = _("Mutualis — administration")
admin.site.site_title = _("Mutualis")
admin.site.index_title = _("Référentiels, conventions et coûts")
admin.site.login_form = AdminLoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path("conventions/", include("conventions.urls")),
    path("couts/", include("costing.urls")),
    path(
        "connexion/",
        auth_views.LoginView.as_view(
            authentication_form=LoginForm, redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "mot-de-passe/",
        auth_views.PasswordChangeView.as_view(
            template_name="registration/password_change.html", success_url="/mot-de-passe/change/"
        ),
        name="password_change",
    ),
    path(
        "mot-de-passe/change/",
        auth_views.PasswordChangeDoneView.as_view(
            template_name="registration/password_changed.html"
        ),
        name="password_change_done",
    ),
    path("accessibilite/", views.accessibility, name="accessibility"),
    path("admin/", admin.site.urls),
    # The REST API, version 1: each app's resources (its api.py), under one namespace.
    path(
        "api/v1/",
        include(
            (
                [
                    path("", include("mutualisation.api")),
                    path("", include("conventions.api")),
                    path("", include("costing.api")),
                ],
                "api",
            )
        ),
    ),
]

# Django's error pages, in the API's error shape under /api/ (mutualisation/rest.py).
handler400 = "mutualisation.rest.bad_request"
handler403 = "mutualisation.rest.permission_denied"
handler404 = "mutualisation.rest.page_not_found"
handler500 = "mutualisation.rest.server_error"

# Uploaded files (signed scans) are never served as /media/ files, in any mode: only through
# conventions:attachment-download, which checks who may see the convention.
