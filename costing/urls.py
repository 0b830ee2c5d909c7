from django.urls import path

from costing import views

app_name = "costing"

urlpatterns = [
    path("", views.index, name="index"),
    path("remboursements/<int:year>/", views.reimbursements, name="reimbursements"),
    path("bases/<int:year>/", views.cost_bases, name="cost-bases"),
    path("bases/nouvelle/", views.cost_base_edit, name="cost-base-create"),
    path("base/<int:pk>/", views.cost_base_detail, name="cost-base"),
    path("base/<int:pk>/modifier/", views.cost_base_edit, name="cost-base-edit"),
    path("base/<int:pk>/calculer/", views.unit_cost_compute, name="unit-cost-compute"),
    path("base/<int:pk>/notifier/", views.unit_cost_notify, name="unit-cost-notify"),
    path("recours/import/", views.usage_import, name="usage-import"),
    path(
        "recours/<str:reference>/<str:service>/<int:year>/",
        views.usage_grid,
        name="usage-grid",
    ),
    path("simulation/<str:reference>/", views.simulation, name="simulation"),
]
