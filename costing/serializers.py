"""Costs, usage and statements as the REST API shows them (costing/api.py). Amounts are exact
decimal strings."""

from rest_framework import serializers

from costing.models import CostBase, CostLine, Statement, StatementLine, UnitCost, UsageRecord
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
