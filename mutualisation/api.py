"""The REST API's common parts and the reference data's resources (/api/v1/).

Each app publishes its own resources in its ``api.py`` (conventions, costing), with its
``serializers.py``; mutualisation/urls.py includes them under /api/v1/. Every resource reads
through the same scopes as the screens (``visible_to``: what the user may not see is a 404,
never a 403 that would tell it exists) and acts through the same services, permissions and
legal gates; errors have one shape, in French (mutualisation/rest.py)."""

from django.urls import path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers, viewsets
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import SimpleRouter

from mutualisation.models import Organisation, PopulationRecord, Service, UnitType
from mutualisation.rules import home_territories, scope_of


class ScopedViewSet(viewsets.ReadOnlyModelViewSet):
    """A resource read through the user's scope: ``model.objects.visible_to(user)``."""

    def base_queryset(self):
        return self.queryset

    def get_queryset(self):
        return self.base_queryset().visible_to(self.request.user)


# --- reference data ---------------------------------------------------------------------------


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = ["id", "kind", "name", "siren", "insee_code", "epci_nature", "seat"]


class PopulationSerializer(serializers.ModelSerializer):
    class Meta:
        model = PopulationRecord
        fields = ["id", "organisation", "vintage", "in_force_year", "municipal", "total", "source"]


class UnitTypeSerializer(serializers.ModelSerializer):
    class Meta:
        model = UnitType
        fields = ["id", "code", "label", "unit", "description"]


class ServiceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Service
        fields = ["id", "code", "name", "kind", "provider", "territory", "unit_type", "description"]


class OrganisationViewSet(ScopedViewSet):
    """Organisations the user may see: for a territory's staff, its EPCI, its communes and
    every party to its conventions; for everyone, their own organisation."""

    api_description = _(
        "Organisations visibles : pour le personnel d'un territoire, son EPCI, ses communes et "
        "toute partie à ses conventions ; pour chacun, sa propre organisation."
    )
    queryset = Organisation.objects.order_by("name", "pk")
    serializer_class = OrganisationSerializer
    filterset_fields = ["kind", "siren", "insee_code"]


class PopulationViewSet(viewsets.ReadOnlyModelViewSet):
    """Municipal populations (INSEE) of the organisations the user may see."""

    api_description = _("Populations légales (INSEE) des organisations visibles.")
    serializer_class = PopulationSerializer
    filterset_fields = ["organisation", "vintage"]

    def get_queryset(self):
        return PopulationRecord.objects.filter(
            organisation__in=Organisation.objects.visible_to(self.request.user)
        ).order_by("organisation_id", "vintage", "pk")


class UnitTypeViewSet(viewsets.ReadOnlyModelViewSet):
    """Units of use (unité de fonctionnement), shared by every territory."""

    api_description = _("Unités de fonctionnement, communes à tous les territoires.")
    serializer_class = UnitTypeSerializer

    def get_queryset(self):
        if not scope_of(self.request.user).has_any_role:
            return UnitType.objects.none()
        return UnitType.objects.order_by("code")


class ServiceViewSet(viewsets.ReadOnlyModelViewSet):
    """Services of the territories the user works in or whose member their organisation is."""

    api_description = _(
        "Services des territoires où l'utilisateur travaille ou dont son organisation est membre."
    )
    serializer_class = ServiceSerializer
    filterset_fields = ["kind", "provider", "territory", "code"]

    def get_queryset(self):
        return Service.objects.filter(territory__in=home_territories(self.request.user)).order_by(
            "territory_id", "name", "pk"
        )


class SwaggerView(SpectacularSwaggerSplitView):
    """The Swagger UI, its init script a separate file (the split view) and its page our
    template: in French, without the inline style the site's CSP refuses."""

    template_name = "api/swagger_ui.html"


@extend_schema(exclude=True)
@api_view(["GET"])
def api_root(request, format=None):
    """The resources of the API, by name."""
    names = {
        "organisations": "api:organisation-list",
        "populations": "api:population-list",
        "services": "api:service-list",
        "unit_types": "api:unittype-list",
        "conventions": "api:convention-list",
        "cost_bases": "api:costbase-list",
        "unit_costs": "api:unitcost-list",
        "usage_records": "api:usagerecord-list",
        "statements": "api:statement-list",
        "schema": "api:schema",
        "docs": "api:docs",
    }
    return Response({key: reverse(name, request=request) for key, name in names.items()})


router = SimpleRouter()
router.register("organisations", OrganisationViewSet, basename="organisation")
router.register("populations", PopulationViewSet, basename="population")
router.register("unit-types", UnitTypeViewSet, basename="unittype")
router.register("services", ServiceViewSet, basename="service")

urlpatterns = [
    path("", api_root, name="root"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"),
    *router.urls,
]
