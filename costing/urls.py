from django.urls import path

from costing import views

app_name = "costing"

urlpatterns = [
    path("", views.index, name="index"),
    path("remboursements/<year:year>/", views.reimbursements, name="reimbursements"),
    path(
        "remboursements/<year:year>/recalculer/",
        views.reimbursements_recompute,
        name="reimbursements-recompute",
    ),
    path("bases/<year:year>/", views.cost_bases, name="cost-bases"),
    path("bases/nouvelle/", views.cost_base_edit, name="cost-base-create"),
    path("base/<int:pk>/", views.cost_base_detail, name="cost-base"),
    path("base/<int:pk>/modifier/", views.cost_base_edit, name="cost-base-edit"),
    path("base/<int:pk>/calculer/", views.unit_cost_compute, name="unit-cost-compute"),
    path("base/<int:pk>/notifier/", views.unit_cost_notify, name="unit-cost-notify"),
    path("base/<int:pk>/corriger/", views.unit_cost_correct, name="unit-cost-correct"),
    path("base/<int:pk>/provisoire/", views.unit_cost_provisional, name="unit-cost-provisional"),
    path("recours/<year:year>/", views.usage_list, name="usage-list"),
    path("recours/import/", views.usage_import, name="usage-import"),
    path("recours/import/<int:pk>/", views.usage_import_detail, name="usage-import-detail"),
    path(
        "recours/import/<int:pk>/confirmer/",
        views.usage_import_confirm,
        name="usage-import-confirm",
    ),
    path(
        "recours/modele/<year:year>/<int:month>.<str:fmt>",
        views.usage_template,
        name="usage-template",
    ),
    path("recours/fiche/<int:pk>/", views.usage_edit, name="usage-edit"),
    path("recours/<str:reference>/<year:year>/", views.usage_state, name="usage-state"),
    path(
        "recours/<str:reference>/<str:service>/<year:year>/",
        views.usage_grid,
        name="usage-grid",
    ),
    path("simulation/<str:reference>/", views.simulation, name="simulation"),
    path("etats/<year:year>/", views.statement_list, name="statements"),
    path("etats/<year:year>/preparer/", views.statements_prepare, name="statements-prepare"),
    path("etats/<year:year>/lot/", views.batch_start, name="batch-start"),
    path("etat/<int:pk>/", views.statement_detail, name="statement"),
    path("etat/<int:pk>/pdf/", views.statement_pdf, name="statement-pdf"),
    path("etat/<int:pk>/emettre/", views.statement_issue, name="statement-issue"),
    path("etat/<int:pk>/corriger/", views.statement_correct, name="statement-correct"),
    path("etat/<int:pk>/remarque/", views.statement_remark, name="statement-remark"),
    path("etat/<int:pk>/approuver/", views.statement_approve, name="statement-approve"),
    path(
        "etat/remarque/<int:pk>/reponse/",
        views.statement_remark_answer,
        name="statement-remark-answer",
    ),
    path("acomptes/<year:year>/", views.instalment_list, name="instalments"),
    path("acomptes/<year:year>/appeler/", views.instalments_call, name="instalments-call"),
    path("acompte/<int:pk>/<str:action>/", views.instalment_action, name="instalment-action"),
    path("lot/<int:pk>/", views.batch_detail, name="batch"),
    path("lot/<int:pk>/archive/", views.batch_download, name="batch-download"),
    path("exports/<year:year>/<str:kind>.<str:fmt>", views.export, name="export"),
    path("tableau-de-bord/<year:year>/", views.dashboard, name="dashboard"),
    path("rapport/<year:year>/", views.annual_report, name="annual-report"),
    path("rapport/<year:year>/pdf/", views.annual_report_pdf, name="annual-report-pdf"),
    path(
        "recapitulatif/<year:year>/<str:siren>.pdf",
        views.commune_summary_pdf,
        name="commune-summary",
    ),
]
