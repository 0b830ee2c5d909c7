from django.urls import path

from conventions import views

app_name = "conventions"

urlpatterns = [
    path("", views.convention_list, name="list"),
    path("nouvelle/", views.convention_create, name="create"),
    path("organisations/", views.organisation_search, name="organisations"),
    path("adhesions/<year:year>/", views.adhesion_matrix, name="adhesions"),
    path("adhesions/<year:year>.<str:fmt>", views.adhesion_matrix_export, name="adhesions-export"),
    path("agents/<year:year>/", views.staff_made_available, name="staff"),
    path("agents/<year:year>.<str:fmt>", views.staff_made_available_export, name="staff-export"),
    # The schéma de mutualisation: before the conventions' ``<str:reference>/`` addresses.
    path("schema/", views.scheme_list, name="schemes"),
    path("schema/nouveau/", views.scheme_create, name="scheme-create"),
    path("schema/<int:pk>/", views.scheme_detail, name="scheme"),
    path("schema/<int:pk>/modifier/", views.scheme_edit, name="scheme-edit"),
    path("schema/<int:pk>/actions/ajouter/", views.scheme_action_add, name="scheme-action-add"),
    path("schema/actions/<int:pk>/modifier/", views.scheme_action_edit, name="scheme-action-edit"),
    path(
        "schema/actions/<int:pk>/supprimer/",
        views.scheme_action_delete,
        name="scheme-action-delete",
    ),
    path("schema/<int:pk>/avis/ajouter/", views.scheme_opinion_add, name="scheme-opinion-add"),
    path("schema/<int:pk>/transmettre/", views.scheme_submit, name="scheme-submit"),
    path("schema/<int:pk>/approuver/", views.scheme_adopt, name="scheme-adopt"),
    path("<str:reference>/", views.convention_detail, name="detail"),
    path("<str:reference>/modifier/", views.convention_edit, name="edit"),
    path("<str:reference>/pdf/", views.convention_pdf, name="pdf"),
    path("<str:reference>/transition/<str:name>/", views.convention_transition, name="transition"),
    path("<str:reference>/ajouter/<str:kind>/", views.convention_add_related, name="add-related"),
    path(
        "<str:reference>/actes/<str:kind>/<int:pk>/modifier/",
        views.convention_record_edit,
        name="record-edit",
    ),
    path(
        "<str:reference>/actes/<str:kind>/<int:pk>/supprimer/",
        views.convention_record_delete,
        name="record-delete",
    ),
    path(
        "<str:reference>/deliberations/ajouter/",
        views.deliberation_add,
        name="deliberation-add",
    ),
    path(
        "<str:reference>/deliberations/<int:pk>/transmission/",
        views.deliberation_publicity,
        name="deliberation-publicity",
    ),
    path("<str:reference>/transmission/", views.convention_publicity, name="publicity"),
    path("<str:reference>/avenants/nouveau/", views.amendment_create, name="amendment-create"),
    path(
        "<str:reference>/avenants/<int:number>/deliberation/",
        views.amendment_deliberation_add,
        name="amendment-deliberation",
    ),
    path(
        "<str:reference>/avenants/<int:number>/previsions/",
        views.amendment_forecasts,
        name="amendment-forecasts",
    ),
    path(
        "<str:reference>/avenants/<int:number>/avis/",
        views.amendment_opinion_add,
        name="amendment-opinion",
    ),
    path(
        "<str:reference>/avenants/<int:number>/pdf/",
        views.amendment_pdf,
        name="amendment-pdf",
    ),
    path(
        "<str:reference>/avenants/<int:number>/signer/",
        views.amendment_sign,
        name="amendment-sign",
    ),
    path("<str:reference>/resilier/", views.convention_terminate, name="terminate"),
    path(
        "<str:reference>/pieces/<int:pk>/",
        views.attachment_download,
        name="attachment-download",
    ),
]
