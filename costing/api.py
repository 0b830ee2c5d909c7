"""Costs, usage, statements and the year's reimbursements in the REST API (/api/v1/): read
through the same scopes as the screens (what the user may not see is a 404). See
mutualisation/api.py."""

from dataclasses import replace

from django.db.models import Q
from django.http import Http404
from django.urls import path, register_converter
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action, api_view
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from conventions.models import Convention
from costing import engine, exports, services, views
from costing.models import CostBase, Statement, UnitCost, UsageRecord
from costing.serializers import (
    CostBaseSerializer,
    StatementDetailSerializer,
    StatementSerializer,
    UnitCostSerializer,
    UsageRecordSerializer,
)
from mutualisation.converters import YearConverter
from mutualisation.rest import DocumentActionsMixin
from mutualisation.rules import scope_of

register_converter(YearConverter, "api-year")  # the screens' budget years (costing/urls.py)


class CostBaseViewSet(viewsets.ReadOnlyModelViewSet):
    """Cost bases: the territory's staff see their services'; others, those of the services
    they provide or pay for (never another organisation's detailed cost lines otherwise)."""

    api_description = _(
        "Bases de coûts : le personnel du territoire voit celles de ses services ; les autres, "
        "celles des services qu'ils fournissent ou paient."
    )
    serializer_class = CostBaseSerializer
    filterset_fields = ["year", "service"]

    def get_queryset(self):
        return (
            CostBase.objects.visible_to(self.request.user)
            .select_related("service")
            .prefetch_related("lines")
            .order_by("-year", "service__code", "pk")
        )


class UnitCostViewSet(viewsets.ReadOnlyModelViewSet):
    """Unit costs (every version, notified or not) of the services whose cost bases the user
    may see."""

    api_description = _(
        "Coûts unitaires (toutes les versions, notifiées ou non) des services dont "
        "l'utilisateur voit les bases de coûts."
    )
    serializer_class = UnitCostSerializer
    filterset_fields = ["year", "service", "is_provisional"]

    def get_queryset(self):
        services_seen = CostBase.objects.visible_to(self.request.user).values("service_id")
        queryset = UnitCost.objects.select_related("service").order_by(
            "-year", "service__code", "-version"
        )
        if scope_of(self.request.user).is_superuser:
            return queryset
        staff = scope_of(self.request.user).territory_ids
        return queryset.filter(Q(service_id__in=services_seen) | Q(service__territory_id__in=staff))


class UsageRecordViewSet(viewsets.ReadOnlyModelViewSet):
    """Usage records: the territory's staff see those of their conventions; a party from
    elsewhere (a commune), its own records only."""

    api_description = _(
        "Recours : le personnel du territoire voit ceux de ses conventions ; une partie "
        "d'ailleurs (une commune), les siens seulement."
    )
    serializer_class = UsageRecordSerializer
    filterset_fields = {
        "convention__reference": ["exact"],
        "beneficiary": ["exact"],
        "service": ["exact"],
        "period_start": ["gte", "lte"],
        "reference": ["exact"],
    }

    def get_queryset(self):
        scope = scope_of(self.request.user)
        queryset = UsageRecord.objects.select_related("convention", "service").order_by(
            "convention__reference", "period_start", "beneficiary_id", "pk"
        )
        if scope.is_superuser:
            return queryset
        return queryset.filter(
            Q(convention__territory_id__in=scope.territory_ids)
            | Q(
                beneficiary_id__in=scope.organisation_ids,
                convention__in=Convention.objects.visible_to(self.request.user),
            )
        )


class StatementViewSet(DocumentActionsMixin, viewsets.ReadOnlyModelViewSet):
    """États annuels: those of the user's territories' conventions, and those their own
    organisation owes or is owed."""

    api_description = _(
        "États annuels : ceux des conventions des territoires de l'utilisateur, et ceux que son "
        "organisation doit ou reçoit."
    )
    filterset_fields = ["year", "status", "payer", "payee", "convention__reference"]

    def get_queryset(self):
        queryset = (
            Statement.objects.visible_to(self.request.user)
            .select_related("convention")
            .defer("pdf", "snapshot")
            .order_by("-year", "convention__reference", "payer_id", "pk")
        )
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("lines__service")
        return queryset

    def get_serializer_class(self):
        return StatementDetailSerializer if self.action == "retrieve" else StatementSerializer

    @extend_schema(
        description=_("PDF de l'état : les octets émis, ou le projet d'un état en préparation."),
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, url_path="pdf")
    def pdf(self, request, pk=None):
        """The statement's PDF: the very bytes issued, or the projet of a draft."""
        return views.statement_pdf(request._request, pk)


def own_part(computed: services.Reimbursements, organisation_ids) -> services.Reimbursements:
    """What a party from elsewhere (a commune) sees of the year: its own lines, settlements
    and position, the totals of those only, no finding about the others."""
    result = computed.result

    def mine(*parties):
        return any(p.id in organisation_ids for p in parties)

    lines = tuple(x for x in result.lines if mine(x.payer, x.payee))
    settlements = tuple(s for s in result.settlements if mine(s.payer, s.payee))
    own = replace(
        result,
        lines=lines,
        borne_by_payee=tuple(x for x in result.borne_by_payee if mine(x.payee)),
        settlements=settlements,
        positions=tuple(
            p for p in engine.net_positions(settlements) if p.party.id in organisation_ids
        ),
        findings=(),
        total=sum((x.amount for x in lines), engine.ZERO),
    )
    return replace(computed, result=own, findings=())


@extend_schema(
    description=_(
        "Remboursements de l'année, comme l'export JSON : lignes, règlements, positions, "
        "constats et totaux. Le personnel du territoire : toute l'année ; les autres : la part "
        "de leur organisation. Années de 2000 à 2100."
    ),
    responses={200: OpenApiTypes.OBJECT},
)
@api_view(["GET"])
def reimbursements(request, year):
    """The year's reimbursements, as ``compute_reimbursements`` gives them (the JSON export):
    lines, settlements, positions, findings and totals. The territory's staff: its whole year;
    anyone else: their own organisation's part of the conventions they are party to."""
    if not request.user.has_perm("costing.view_reimbursements"):
        raise Http404
    scope = scope_of(request.user)
    if scope.is_staff_of_a_territory:
        computed = services.compute_reimbursements(
            year, Convention.objects.of_territories(request.user)
        )
    else:
        computed = own_part(
            services.compute_reimbursements(year, Convention.objects.visible_to(request.user)),
            scope.organisation_ids,
        )
    return Response(exports.year_as_dict(computed))


router = SimpleRouter()
router.register("cost-bases", CostBaseViewSet, basename="costbase")
router.register("unit-costs", UnitCostViewSet, basename="unitcost")
router.register("usage-records", UsageRecordViewSet, basename="usagerecord")
router.register("statements", StatementViewSet, basename="statement")

urlpatterns = [
    path("reimbursements/<api-year:year>/", reimbursements, name="reimbursements"),
    *router.urls,
]
