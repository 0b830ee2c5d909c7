"""Costs, usage and statements as the REST API shows them (costing/api.py). Amounts are exact
decimal strings."""

import calendar

from django.db import models
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from costing.models import CostBase, CostLine, Statement, StatementLine, UnitCost, UsageRecord
from costing.resources import REFERENCE_MAX_LENGTH, max_batch_records
from mutualisation.rest import flatten
from mutualisation.validators import validate_plausible_date


class CostLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = CostLine
        fields = [
            "label",
            "category",
            "account",
            "accounts_amount",
            "budget_adjustment",
            "eligible",
            "justification",
        ]


class CostBaseSerializer(serializers.ModelSerializer):
    service_code = serializers.CharField(source="service.code", read_only=True)
    lines = CostLineSerializer(many=True, read_only=True)

    class Meta:
        model = CostBase
        fields = [
            "id",
            "service",
            "service_code",
            "year",
            "source",
            "source_year",
            "reference_units",
            "reference_basis",
            "reference_year",
            "forecast_cost",
            "actual_cost",
            "notes",
            "version",
            "lines",
        ]


class UnitCostSerializer(serializers.ModelSerializer):
    service_code = serializers.CharField(source="service.code", read_only=True)

    class Meta:
        model = UnitCost
        fields = [
            "id",
            "service",
            "service_code",
            "year",
            "version",
            "amount",
            "is_provisional",
            "eligible_cost",
            "reference_units",
            "notification_deadline",
            "notified_on",
            "computed_at",
            "correction_reason",
        ]


class UsageRecordSerializer(serializers.ModelSerializer):
    convention = serializers.SlugRelatedField(slug_field="reference", read_only=True)
    service_code = serializers.CharField(source="service.code", read_only=True)

    class Meta:
        model = UsageRecord
        fields = [
            "id",
            "convention",
            "beneficiary",
            "service",
            "service_code",
            "period_start",
            "period_end",
            "quantity",
            "weight",
            "units",
            "reference",
            "external_reference",
            "source",
            "reason",
            "recorded_at",
        ]


class StatementLineSerializer(serializers.ModelSerializer):
    service_code = serializers.CharField(source="service.code", read_only=True)

    class Meta:
        model = StatementLine
        fields = [
            "position",
            "service",
            "service_code",
            "period_start",
            "period_end",
            "basis",
            "units",
            "unit_cost",
            "key_weight",
            "key_total",
            "shared_cost",
            "amount",
            "revenue_account",
            "expense_account",
            "usage_count",
        ]


class StatementSerializer(serializers.ModelSerializer):
    convention = serializers.SlugRelatedField(slug_field="reference", read_only=True)
    pdf = serializers.HyperlinkedIdentityField(view_name="api:statement-pdf")

    class Meta:
        model = Statement
        fields = [
            "id",
            "year",
            "convention",
            "payer",
            "payee",
            "status",
            "number",
            "total",
            "instalments_called",
            "ac_deduction",
            "balance",
            "settlement_mode",
            "balance_channel",
            "review_until",
            "approved_at",
            "computed_at",
            "issued_at",
            "pdf",
        ]


class StatementDetailSerializer(StatementSerializer):
    lines = StatementLineSerializer(many=True, read_only=True)

    class Meta(StatementSerializer.Meta):
        fields = [*StatementSerializer.Meta.fields, "lines"]


class NotificationSerializer(serializers.Serializer):
    notified_on = serializers.DateField(
        help_text="Jour où le coût unitaire a été notifié aux bénéficiaires.",
        validators=[validate_plausible_date],
    )


# --- usage sent in bulk by a counting tool ------------------------------------------------------


class UsageBatchRecordSerializer(serializers.Serializer):
    """One use of a service, as a counting tool sends it. Checked then as a row of the usage
    file import is (costing.resources.record_usage_batch)."""

    external_reference = serializers.CharField(
        max_length=REFERENCE_MAX_LENGTH,
        help_text=gettext_lazy(
            "Identifiant du recours dans l'outil qui l'a compté (ex. numéro de dossier ADS), "
            "unique par convention : renvoyer un recours déjà enregistré avec les mêmes valeurs "
            "ne l'enregistre pas deux fois ; avec d'autres valeurs, le lot est refusé (409)."
        ),
    )
    convention = serializers.CharField(
        max_length=20, help_text=gettext_lazy("Référence de la convention (ex. CONV-2025-001).")
    )
    beneficiary_siren = serializers.RegexField(
        r"^[0-9]{9}$",
        max_length=9,
        help_text=gettext_lazy("SIREN de l'organisation bénéficiaire (9 chiffres)."),
        error_messages={"invalid": gettext_lazy("SIREN invalide : 9 chiffres attendus.")},
    )
    service = serializers.CharField(
        max_length=40, help_text=gettext_lazy("Code du service (ex. ads).")
    )
    month = serializers.RegexField(
        r"^[0-9]{4}-[0-9]{2}$",
        required=False,
        help_text=gettext_lazy(
            "Mois du recours, AAAA-MM ; ou bien period_start et period_end couvrant ce mois."
        ),
        error_messages={"invalid": gettext_lazy("Mois invalide : attendu AAAA-MM (ex. 2026-03).")},
    )
    period_start = serializers.DateField(
        required=False,
        help_text=gettext_lazy("Premier jour du mois (à la place de month)."),
    )
    period_end = serializers.DateField(
        required=False,
        help_text=gettext_lazy("Dernier jour du même mois (à la place de month)."),
    )
    quantity = serializers.DecimalField(
        max_digits=12,
        decimal_places=3,
        help_text=gettext_lazy(
            "Quantité (chaîne décimale, trois décimales au plus), positive ou nulle : un "
            "ajustement négatif se saisit à l'écran avec son motif."
        ),
    )
    weight = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=20,
        help_text=gettext_lazy(
            "Code de la pondération de l'unité du service (ex. PC, DP, CU) ; vide : 1."
        ),
    )
    reference = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        max_length=REFERENCE_MAX_LENGTH,
        help_text=gettext_lazy(
            "Référence affichée dans l'état des recours ; par défaut, la référence externe."
        ),
    )

    def validate_quantity(self, quantity):
        if quantity < 0:
            raise serializers.ValidationError(
                _(
                    "Quantité négative : l'API n'enregistre que des recours ; un ajustement se "
                    "saisit à l'écran, avec son motif."
                )
            )
        return quantity

    def validate(self, attrs):
        """One month: ``month``, or ``period_start`` and ``period_end`` covering it exactly."""
        start, end = attrs.pop("period_start", None), attrs.pop("period_end", None)
        if "month" in attrs:
            if start or end:
                raise serializers.ValidationError(
                    {"month": [_("Indiquez soit month, soit period_start et period_end.")]}
                )
            attrs["month_field"] = "month"
            return attrs
        if start is None and end is None:
            raise serializers.ValidationError(
                {"month": [_("Indiquez le mois (AAAA-MM), ou period_start et period_end.")]}
            )
        last_day = calendar.monthrange(start.year, start.month)[1] if start else None
        if (
            start is None
            or end is None
            or start.day != 1
            or (end.year, end.month, end.day) != (start.year, start.month, last_day)
        ):
            raise serializers.ValidationError(
                {
                    "period_start": [
                        _(
                            "La période doit couvrir exactement un mois civil (du 1er au dernier "
                            "jour du mois) : indiquez plutôt « month » (AAAA-MM)."
                        )
                    ]
                }
            )
        attrs["month"] = f"{start.year:04d}-{start.month:02d}"
        attrs["month_field"] = "period_start"
        return attrs


class UsageBatchSerializer(serializers.Serializer):
    """A batch of usage records: all recorded, or none."""

    records = UsageBatchRecordSerializer(
        many=True,
        help_text=gettext_lazy(
            "Les recours à enregistrer, tous ou aucun (MUTUALIS_API_BULK_MAX_RECORDS au plus, "
            "10 000 par défaut)."
        ),
    )

    def read_records(self) -> tuple[list[tuple[int, dict]], dict[str, list[str]]]:
        """Each record read on its own, so that every invalid one is listed, not only the
        first: the (index, values) of the well-formed records, and the errors of the others
        (``{"records.3.quantity": [...]}``). A body that is no batch at all is refused."""
        data = self.initial_data
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list):
            raise serializers.ValidationError(
                {"records": [_("Une liste de recours est attendue sous « records ».")]}
            )
        if not records:
            raise serializers.ValidationError(
                {"records": [_("Le lot ne compte aucun recours : rien à enregistrer.")]}
            )
        if len(records) > max_batch_records():
            raise serializers.ValidationError(
                {
                    "records": [
                        _(
                            "Le lot compte %(count)s recours : %(limit)s au plus par envoi. "
                            "Découpez-le ; rien n'a été enregistré."
                        )
                        % {"count": len(records), "limit": max_batch_records()}
                    ]
                }
            )
        valid, errors = [], {}
        for index, item in enumerate(records):
            record = UsageBatchRecordSerializer(data=item)
            if record.is_valid():
                valid.append((index, record.validated_data))
            else:
                errors.update(flatten(record.errors, f"records.{index}."))
        return valid, errors


class BatchRecordStatus(models.TextChoices):
    CREATED = "created", gettext_lazy("Enregistré par cet envoi")
    ALREADY_PRESENT = "already_present", gettext_lazy("Déjà enregistré (mêmes valeurs)")


class UsageBatchRecordResultSerializer(serializers.Serializer):
    index = serializers.IntegerField(
        help_text=gettext_lazy("Rang du recours dans le lot (0 : le premier).")
    )
    external_reference = serializers.CharField()
    id = serializers.IntegerField(help_text=gettext_lazy("Identifiant du recours dans Mutualis."))
    status = serializers.ChoiceField(choices=BatchRecordStatus.choices)
    units = serializers.DecimalField(
        max_digits=14,
        decimal_places=3,
        help_text=gettext_lazy("Unités pondérées (quantité × pondération), facturées."),
    )


class UsageBatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text=gettext_lazy("Recours enregistrés par cet envoi."))
    already_present = serializers.IntegerField(
        help_text=gettext_lazy("Recours déjà enregistrés avec les mêmes valeurs (renvoyés).")
    )
    records = UsageBatchRecordResultSerializer(many=True)


class CostLineInputSerializer(serializers.Serializer):
    label = serializers.CharField(allow_blank=True)
    category = serializers.CharField(allow_blank=True)
    account = serializers.CharField(allow_blank=True)
    accounts_amount = serializers.CharField(help_text="Montant exact, ex. « 36500.00 ».")
    budget_adjustment = serializers.CharField(
        required=False, allow_null=True, help_text="0 par défaut."
    )
    eligible = serializers.BooleanField(required=False, default=True)
    justification = serializers.CharField(required=False, allow_blank=True)


class CostBaseInputSerializer(serializers.Serializer):
    """A cost base as its form takes it (checked by the form itself: every error at once);
    its lines replace the former ones."""

    version = serializers.IntegerField(required=False)
    service = serializers.IntegerField()
    year = serializers.IntegerField()
    source = serializers.CharField()
    source_year = serializers.IntegerField()
    reference_units = serializers.CharField()
    reference_basis = serializers.CharField(required=False, allow_blank=True)
    reference_year = serializers.IntegerField(required=False, allow_null=True)
    forecast_cost = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    actual_cost = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    notes = serializers.CharField(required=False, allow_blank=True)
    lines = CostLineInputSerializer(many=True)


# --- the year's reimbursements, as costing.exports.year_as_dict writes them (the schema only) ---


class PartyOutSerializer(serializers.Serializer):
    siren = serializers.CharField()
    name = serializers.CharField()


class ReimbursementLineSerializer(serializers.Serializer):
    convention = serializers.CharField()
    payer = PartyOutSerializer()
    payee = PartyOutSerializer()
    service = serializers.CharField()
    service_name = serializers.CharField()
    period_start = serializers.DateField()
    period_end = serializers.DateField()
    basis = serializers.CharField()
    units = serializers.CharField()
    unit_cost = serializers.CharField(allow_null=True)
    unit_cost_provisional = serializers.BooleanField()
    amount = serializers.CharField(help_text="Montant exact, au centime.")
    usage_count = serializers.IntegerField()
    key_weight = serializers.CharField(allow_null=True)
    key_total = serializers.CharField(allow_null=True)
    shared_cost = serializers.CharField(allow_null=True)


class PlannedInstalmentOutSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    due_date = serializers.DateField()
    amount = serializers.CharField()


class CalledInstalmentOutSerializer(PlannedInstalmentOutSerializer):
    titre_number = serializers.CharField()
    status = serializers.CharField()


class SettlementOutSerializer(serializers.Serializer):
    convention = serializers.CharField()
    payer = PartyOutSerializer()
    payee = PartyOutSerializer()
    settlement_mode = serializers.CharField()
    forecast = serializers.CharField()
    ac_deduction = serializers.CharField()
    instalments_planned = PlannedInstalmentOutSerializer(many=True)
    instalments_called = CalledInstalmentOutSerializer(many=True)
    instalments_total = serializers.CharField()
    actual = serializers.CharField()
    balance = serializers.CharField()
    direction = serializers.CharField(help_text="TO_COLLECT, TO_REFUND ou SETTLED.")
    channel = serializers.CharField()


class PositionOutSerializer(serializers.Serializer):
    organisation = PartyOutSerializer()
    receivable = serializers.CharField()
    payable = serializers.CharField()
    net = serializers.CharField()
    settled = serializers.CharField()
    remaining = serializers.CharField()


class FindingOutSerializer(serializers.Serializer):
    convention = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class TotalsOutSerializer(serializers.Serializer):
    lines = serializers.IntegerField()
    amount = serializers.CharField()
    by_payee = serializers.DictField(child=serializers.CharField(), help_text="SIREN → montant.")
    by_payer = serializers.DictField(child=serializers.CharField(), help_text="SIREN → montant.")


class ReimbursementsSerializer(serializers.Serializer):
    """The year's reimbursements (``exports.year_part_as_dict``): documents the API's answer,
    a page of its lines and of its settlements."""

    count = serializers.IntegerField(help_text="Nombre de lignes de l'année (toutes pages).")
    settlements_count = serializers.IntegerField(
        help_text="Nombre de règlements de l'année (toutes pages)."
    )
    next = serializers.URLField(allow_null=True, help_text="Page suivante (lignes et règlements).")
    previous = serializers.URLField(
        allow_null=True, help_text="Page précédente (lignes et règlements)."
    )
    schema = serializers.CharField()
    year = serializers.IntegerField()
    currency = serializers.CharField()
    lines = ReimbursementLineSerializer(many=True)
    borne_by_payee = ReimbursementLineSerializer(many=True)
    settlements = SettlementOutSerializer(many=True)
    positions = PositionOutSerializer(many=True)
    findings = FindingOutSerializer(many=True)
    totals = TotalsOutSerializer()
