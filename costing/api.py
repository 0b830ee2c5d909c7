"""Costs, usage, statements and the year's reimbursements in the REST API (/api/v1/): read
through the same scopes as the screens (what the user may not see is a 404). See
mutualisation/api.py."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import QueryDict
from django.shortcuts import get_object_or_404
from django.urls import path, register_converter
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from conventions.models import Convention
from costing import engine, exports, forms, resources, services, statements, views
from costing.models import CostBase, Statement, UnitCost, UsageRecord
from costing.serializers import (
    BatchRecordStatus,
    CostBaseInputSerializer,
    CostBaseSerializer,
    NotificationSerializer,
    ReimbursementsSerializer,
    StatementDetailSerializer,
    StatementSerializer,
    UnitCostSerializer,
    UsageBatchResultSerializer,
    UsageBatchSerializer,
    UsageRecordSerializer,
)
from mutualisation.converters import YearConverter
from mutualisation.forms import RowsConflict
from mutualisation.rest import (
    Conflict,
    DocumentActionsMixin,
    ErrorSerializer,
    Pagination,
    Refused,
)
from mutualisation.rules import scope_of

register_converter(YearConverter, "api-year")  # the screens' budget years (costing/urls.py)


class CostBaseViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
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

    @extend_schema(
        description=_(
            "Crée la base de coûts d'un service pour une année (agents des finances du "
            "territoire du service) : validée par les règles du formulaire, lignes comprises ; "
            "chaque erreur à son chemin (« lines.2.account »)."
        ),
        request=CostBaseInputSerializer,
        responses={201: CostBaseSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    def create(self, request):
        if not request.user.has_perm("costing.manage_costs"):
            raise PermissionDenied
        return self.save_base(request, CostBase(), status=201)

    @extend_schema(
        description=_(
            "Remplace une base de coûts et toutes ses lignes (agents des finances du territoire "
            "du service) : « version », celle lue, refuse une modification faite entre-temps "
            "(409). Un coût unitaire déjà notifié reste tel quel : il se corrige par une nouvelle "
            "version."
        ),
        request=CostBaseInputSerializer,
        responses={200: CostBaseSerializer, 400: ErrorSerializer, 409: ErrorSerializer},
    )
    def update(self, request, pk=None):
        return self.save_base(request, self.managed_object())

    def save_base(self, request, base: CostBase, status: int = 200):
        """The screens' form and lines formset, bound to the JSON, validated and saved by
        ``services.cost_base_save``; the base's former lines are replaced by those sent."""
        CostBaseInputSerializer(data=request.data).is_valid(raise_exception=True)
        data = QueryDict(mutable=True)
        for name, value in request.data.items():
            if name != "lines" and value is not None:
                data[name] = str(value)
        if base.pk and "version" not in request.data:
            data["version"] = str(base.version)
        former = list(base.lines.order_by("pk")) if base.pk else []
        sent = request.data.get("lines") or []
        data["lines-TOTAL_FORMS"] = str(len(former) + len(sent))
        data["lines-INITIAL_FORMS"] = str(len(former))
        for index, line in enumerate(former):
            data[f"lines-{index}-id"] = str(line.pk)
            data[f"lines-{index}-DELETE"] = "on"
        for index, line in enumerate(sent, start=len(former)):
            for name, value in line.items():
                if name != "eligible" and value is not None:
                    data[f"lines-{index}-{name}"] = str(value)
            if line.get("eligible", True):  # a checkbox: posted when ticked (the default)
                data[f"lines-{index}-eligible"] = "on"
            if line.get("budget_adjustment") is None:  # no foreseeable change: 0, as on screen
                data[f"lines-{index}-budget_adjustment"] = "0"
        form = forms.CostBaseForm(data, instance=base, user=request.user)
        lines = forms.CostLineFormSet(data, instance=base, prefix="lines")
        if not all([form.is_valid(), lines.is_valid()]):  # noqa: C419 (every error)
            raise ValidationError(form_errors(form, lines))
        try:
            saved = services.cost_base_save(form=form, lines=lines)
        except services.StaleCostBase as stale:
            raise Refused(services.stale_cost_base_message(base)) from stale
        except DjangoValidationError as error:  # created meanwhile by someone else
            raise Refused(" ".join(error.messages)) from error
        except RowsConflict as conflict:
            raise Refused(str(conflict)) from conflict
        fresh = self.get_queryset().get(pk=saved.pk)
        return Response(CostBaseSerializer(fresh).data, status=status)

    def managed_object(self) -> CostBase:
        """A cost base the user sees (404 otherwise) and may manage: finance of its service's
        territory (403 otherwise)."""
        base = self.get_object()
        if not (
            self.request.user.has_perm("costing.manage_costs")
            and CostBase.objects.managed_by(self.request.user).filter(pk=base.pk).exists()
        ):
            raise PermissionDenied
        return base

    @extend_schema(
        description=_(
            "Calcule le coût unitaire de l'année depuis cette base (coût éligible ÷ unités de "
            "référence, arrondi au centime) : une nouvelle version tant que l'actuelle n'est "
            "pas notifiée. Agents des finances du territoire du service."
        ),
        request=None,
        responses={201: UnitCostSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path="compute-unit-cost")
    def compute_unit_cost(self, request, pk=None):
        """Compute the year's unit cost from this cost base (eligible cost ÷ reference units,
        rounded to the cent): a new version while the current one is not notified."""
        base = self.managed_object()
        try:
            unit_cost = services.unit_cost_compute(base)
        except engine.EngineError as error:
            raise Refused(str(error)) from error
        return Response(UnitCostSerializer(unit_cost).data, status=201)

    @extend_schema(
        description=_(
            "Enregistre le jour où le coût unitaire actuel a été notifié aux bénéficiaires "
            "(avant la date limite budgétaire, D5211-16) ; notifié, il est figé."
        ),
        request=NotificationSerializer,
        responses={200: UnitCostSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path="notify-unit-cost")
    def notify_unit_cost(self, request, pk=None):
        """Record the day the current unit cost was notified to the beneficiaries (before the
        budget deadline, D5211-16); a notified unit cost is frozen."""
        base = self.managed_object()
        data = NotificationSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        unit_cost = services.current_unit_cost(base.service, base.year)
        if unit_cost is None:
            raise Refused(_("Aucun coût unitaire calculé pour cette base : calculez-le d'abord."))
        try:
            unit_cost = services.unit_cost_notify(unit_cost, data.validated_data["notified_on"])
        except engine.EngineError as error:
            raise Refused(str(error)) from error
        return Response(UnitCostSerializer(unit_cost).data)


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

    @extend_schema(
        summary="Enregistrer des recours en lot (outil de comptage)",
        request=UsageBatchSerializer,
        responses={
            201: OpenApiResponse(
                UsageBatchResultSerializer, description="Au moins un recours enregistré."
            ),
            200: OpenApiResponse(
                UsageBatchResultSerializer,
                description="Lot déjà enregistré : aucun nouveau recours.",
            ),
            400: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "Lot refusé, rien d'enregistré : chaque recours invalide sous "
                    "« fields », par son rang (records.3.quantity)."
                ),
            ),
            403: OpenApiResponse(
                ErrorSerializer, description="Pas le droit d'enregistrer des recours."
            ),
            409: OpenApiResponse(
                ErrorSerializer,
                description=(
                    "Lot refusé, rien d'enregistré : une référence externe est déjà "
                    "enregistrée avec d'autres valeurs."
                ),
            ),
        },
        examples=[
            OpenApiExample(
                "batch",
                summary="Deux dossiers ADS",
                request_only=True,
                value={
                    "records": [
                        {
                            "external_reference": "ADS-2026-0001",
                            "convention": "CONV-2025-001",
                            "beneficiary_siren": "216300145",
                            "service": "ads",
                            "month": "2026-03",
                            "quantity": "1",
                            "weight": "PC",
                        },
                        {
                            "external_reference": "ADS-2026-0002",
                            "convention": "CONV-2025-001",
                            "beneficiary_siren": "216300145",
                            "service": "ads",
                            "period_start": "2026-03-01",
                            "period_end": "2026-03-31",
                            "quantity": "1",
                            "weight": "DP",
                            "reference": "PC 063 014 26 00001",
                        },
                    ]
                },
            ),
            OpenApiExample(
                "recorded",
                summary="Lot enregistré (le premier recours l'était déjà)",
                response_only=True,
                status_codes=["201"],
                value={
                    "created": 1,
                    "already_present": 1,
                    "records": [
                        {
                            "index": 0,
                            "external_reference": "ADS-2026-0001",
                            "id": 1203,
                            "status": "already_present",
                            "units": "1.000",
                        },
                        {
                            "index": 1,
                            "external_reference": "ADS-2026-0002",
                            "id": 1517,
                            "status": "created",
                            "units": "0.500",
                        },
                    ],
                },
            ),
            OpenApiExample(
                "refused",
                summary="Lot refusé",
                response_only=True,
                status_codes=["400"],
                value={
                    "detail": "Les données envoyées sont invalides.",
                    "code": "invalid",
                    "fields": {
                        "records.0.month": [
                            "Mois invalide « 2026-13 » : attendu AAAA-MM (ex. 2025-03)."
                        ],
                        "records.3.weight": [
                            "Pondération « XX » inconnue pour l'unité « Équivalent permis (ADS) »."
                        ],
                    },
                },
            ),
            OpenApiExample(
                "conflict",
                summary="Référence externe déjà enregistrée avec d'autres valeurs",
                response_only=True,
                status_codes=["409"],
                value={
                    "detail": "Les données envoyées contredisent celles déjà enregistrées.",
                    "code": "conflict",
                    "fields": {
                        "records.1.external_reference": [
                            "La référence externe « ADS-2026-0002 » est déjà enregistrée pour "
                            "CONV-2025-001 avec d'autres valeurs (quantité : 1 enregistré, 2 "
                            "envoyé) : rien n'a été enregistré. Corrigez le recours à l'écran, "
                            "ou envoyez une autre référence externe."
                        ]
                    },
                },
            ),
        ],
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk(self, request):
        """Record the usage a counting tool (ticketing, ADS instruction) sends: every record
        checked as a row of the usage file import is (convention of the user's territory,
        beneficiary party to it that month, service among its lines, weighting of the service's
        unit, month within its years, year not issued), all recorded or none. Idempotent by
        each record's external reference within its convention: sending a batch again records
        nothing new. Finance officers, managers and administrators of the territory only."""
        if not request.user.has_perm("costing.record_usage"):
            raise exceptions.PermissionDenied(
                _("Vous n'avez pas le droit d'enregistrer des recours.")
            )
        valid, invalid = UsageBatchSerializer(data=request.data).read_records()
        try:
            outcomes = resources.record_usage_batch(valid, user=request.user, invalid=invalid)
        except resources.UsageBatchRefused as refused:
            raise (Conflict if refused.conflict else exceptions.ValidationError)(
                refused.errors
            ) from None
        created = sum(1 for outcome in outcomes if outcome.created)
        result = UsageBatchResultSerializer(
            {
                "created": created,
                "already_present": len(outcomes) - created,
                "records": [
                    {
                        "index": outcome.index,
                        "external_reference": outcome.record.external_reference,
                        "id": outcome.record.pk,
                        "status": BatchRecordStatus.CREATED
                        if outcome.created
                        else BatchRecordStatus.ALREADY_PRESENT,
                        "units": outcome.record.units,
                    }
                    for outcome in outcomes
                ],
            }
        )
        return Response(
            result.data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
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
        description=_(
            "Émet un état en préparation (numéro, données et PDF figés) : agents des finances "
            "du territoire de la convention, par les contrôles des écrans ; refusé : 409 avec "
            "les motifs (« missing »)."
        ),
        request=None,
        responses={200: StatementDetailSerializer, 409: ErrorSerializer},
    )
    @action(detail=True, methods=["post"], url_path="issue")
    def issue(self, request, pk=None):
        """Issue a draft (its number, frozen snapshot and PDF): finance of the convention's
        territory, through the same checks as the screens; refused, 409 with the reasons."""
        statement = self.get_object()
        if not (
            request.user.has_perm("costing.issue_statements")
            and scope_of(request.user).works_on(statement.convention.territory_id)
        ):
            raise PermissionDenied
        try:
            statement = statements.statement_issue(statement, user=request.user)
        except statements.StatementRefused as refused:
            raise Refused(
                _("Émission refusée."), refused.reasons, code="statement_refused"
            ) from refused
        issued = self.get_queryset().prefetch_related("lines__service").get(pk=statement.pk)
        return Response(StatementDetailSerializer(issued, context={"request": request}).data)

    @extend_schema(
        description=_("PDF de l'état : les octets émis, ou le projet d'un état en préparation."),
        responses={(200, "application/pdf"): OpenApiTypes.BINARY},
    )
    @action(detail=True, url_path="pdf")
    def pdf(self, request, pk=None):
        """The statement's PDF: the very bytes issued, or the projet of a draft."""
        statement = get_object_or_404(
            Statement.objects.visible_to(request.user).select_related(
                "convention", "payer", "payee", "cancels"
            ),
            pk=pk,
        )
        return views.statement_pdf_response(request._request, statement)


def form_errors(form, lines) -> dict[str, list[str]]:
    """The form's and its lines' errors, named by their path in the JSON (``lines.0.account``;
    the former lines, replaced, are not counted)."""
    found = {
        ("non_field_errors" if name == "__all__" else name): list(errors)
        for name, errors in form.errors.items()
    }
    if lines.non_form_errors():
        found["lines"] = list(lines.non_form_errors())
    offset = lines.initial_form_count()
    for index, errors in enumerate(lines.errors):
        for name, messages in errors.items():
            position = index - offset
            found[f"lines.{position}" if name == "__all__" else f"lines.{position}.{name}"] = list(
                messages
            )
    return found


@extend_schema(
    description=_(
        "Remboursements de l'année, comme l'export JSON : lignes et règlements par pages "
        "(`page`, `page_size` : 50 par défaut, au plus 500 ; `count`, `settlements_count`, "
        "`next`, `previous`), positions, constats et totaux (de toute l'année). Lus dans les résultats enregistrés, "
        "recalculés seulement pour les conventions dont les données ont changé. Le personnel du "
        "territoire : toute l'année ; les autres : la part de leur organisation. Années de 2000 "
        "à 2100."
    ),
    parameters=[
        OpenApiParameter("page", int, description="Page des lignes et des règlements."),
        OpenApiParameter(
            "page_size",
            int,
            description="Lignes (et règlements) par page : 50 par défaut, au plus 500.",
        ),
    ],
    responses={200: ReimbursementsSerializer},
)
@api_view(["GET"])
def reimbursements(request, year):
    """The year's reimbursements in the shape of the JSON export, read from the stored results
    as the screens read them (``year_results``: a convention is computed again only when its
    inputs changed): a page of lines and of settlements, the positions, findings and the
    year's totals. The territory's staff: its whole year; anyone else: their own organisation's part
    of the conventions they are party to."""
    if not request.user.has_perm("costing.view_reimbursements"):
        raise PermissionDenied  # no role: as on the screens
    scope = scope_of(request.user)
    if scope.is_staff_of_a_territory:
        shown, own = Convention.objects.of_territories(request.user), None
    else:
        shown, own = Convention.objects.visible_to(request.user), scope.organisation_ids
    stored = services.year_results(year, shown)
    part = services.stored_visible_part(stored, own)
    lines, settlements = part["lines"], part["settlements"]
    # One page number for both lists: page n holds the n-th slice of each (the longer one sets
    # the number of pages); only those slices are read from the stored results.
    paginator = Pagination()
    paginator.paginate_queryset(range(max(len(lines), len(settlements))), request)
    page = paginator.page
    start, stop = page.start_index() - 1, page.end_index()
    by_payer, by_payee = services.stored_part_by_party(stored, part)
    return Response(
        {
            "count": len(lines),
            "settlements_count": len(settlements),
            "next": paginator.get_next_link(),
            "previous": paginator.get_previous_link(),
            **exports.year_part_as_dict(
                year, part, lines[start:stop], settlements[start:stop], by_payer, by_payee
            ),
        }
    )


@extend_schema(
    description=_(
        "Les fichiers de la chaîne comptable de l'année : « lignes » (lignes des états émis), "
        "« titres », « mandats », « acomptes » ; en csv ou xlsx, sur les conventions des "
        "territoires de l'agent des finances."
    ),
    responses={
        (200, "text/csv"): OpenApiTypes.BINARY,
        (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"): (
            OpenApiTypes.BINARY
        ),
    },
)
@api_view(["GET"])
def export(request, year, kind, fmt):
    """The finance chain's files of the year (docs/statements.md): ``lignes`` (the issued
    statements' lines), ``titres``, ``mandats``, ``acomptes``; as ``csv`` or ``xlsx``. The same
    rows as the screens' exports, over the conventions of the user's territories."""
    if not request.user.has_perm("costing.issue_statements"):
        raise PermissionDenied
    if kind not in views.EXPORTS or fmt not in exports.SPREADSHEET_FORMATS:
        raise NotFound(_("Export inconnu."))
    return views.export(request._request, year, kind, fmt)


router = SimpleRouter()
router.register("cost-bases", CostBaseViewSet, basename="costbase")
router.register("unit-costs", UnitCostViewSet, basename="unitcost")
router.register("usage-records", UsageRecordViewSet, basename="usagerecord")
router.register("statements", StatementViewSet, basename="statement")

urlpatterns = [
    path("reimbursements/<api-year:year>/", reimbursements, name="reimbursements"),
    path("exports/<api-year:year>/<str:kind>.<str:fmt>", export, name="export"),
    *router.urls,
]
