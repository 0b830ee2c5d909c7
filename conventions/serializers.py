"""Conventions as the REST API shows them (conventions/api.py): what the screens show, as
data. No personal data beyond the assemblies' public acts (agents are left out)."""

from rest_framework import serializers

from conventions.models import (
    Amendment,
    Convention,
    ConventionService,
    Deliberation,
    Party,
    Terms,
)
from conventions.services.in_force import current_terms, direction_of


class PartySerializer(serializers.ModelSerializer):
    organisation_name = serializers.CharField(source="organisation.name", read_only=True)
    siren = serializers.CharField(source="organisation.siren", read_only=True)
    joined_by = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    left_by = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)

    class Meta:
        model = Party
        fields = ["organisation", "organisation_name", "siren", "role", "joined_by", "left_by"]


class ConventionServiceSerializer(serializers.ModelSerializer):
    code = serializers.CharField(source="service.code", read_only=True)
    name = serializers.CharField(source="service.name", read_only=True)
    added_by = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)
    removed_by = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)

    class Meta:
        model = ConventionService
        fields = [
            "service",
            "code",
            "name",
            "unit_type",
            "allocation_key",
            "population_vintage",
            "added_by",
            "removed_by",
        ]


class TermsSerializer(serializers.ModelSerializer):
    amendment = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)

    class Meta:
        model = Terms
        fields = [
            "amendment",
            "effective_from",
            "end_date",
            "tacit_renewal",
            "notice_months",
            "settlement_mode",
            "periodicity_months",
            "instalment_count",
            "unit_cost_method",
            "managing_share_mode",
            "managing_share_value",
        ]


class DeliberationSerializer(serializers.ModelSerializer):
    organisation_name = serializers.CharField(source="organisation.name", read_only=True)
    amendment = serializers.SlugRelatedField(slug_field="number", read_only=True, allow_null=True)

    class Meta:
        model = Deliberation
        fields = [
            "organisation",
            "organisation_name",
            "amendment",
            "assembly",
            "date",
            "number",
            "object",
            "vote",
            "votes_for",
            "votes_against",
            "abstentions",
            "link",
            "transmitted_on",
            "acknowledgement_number",
            "published_on",
        ]


class AmendmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Amendment
        fields = ["number", "object", "effective_from", "status", "signature_date"]


class ConventionListSerializer(serializers.ModelSerializer):
    territory_name = serializers.CharField(source="territory.name", read_only=True)
    url = serializers.HyperlinkedIdentityField(
        view_name="api:convention-detail", lookup_field="reference"
    )

    class Meta:
        model = Convention
        fields = [
            "url",
            "reference",
            "title",
            "kind",
            "status",
            "territory",
            "territory_name",
            "start_date",
            "signature_date",
        ]


class ConventionSerializer(ConventionListSerializer):
    direction = serializers.SerializerMethodField()
    parties = PartySerializer(many=True, read_only=True)
    services = ConventionServiceSerializer(many=True, read_only=True)
    terms_in_force = serializers.SerializerMethodField()
    deliberations = DeliberationSerializer(many=True, read_only=True)
    amendments = AmendmentSerializer(many=True, read_only=True)
    pdf = serializers.HyperlinkedIdentityField(
        view_name="api:convention-pdf", lookup_field="reference"
    )

    class Meta(ConventionListSerializer.Meta):
        fields = [
            *ConventionListSerializer.Meta.fields,
            "object",
            "direction",
            "managing_organisation",
            "transmitted_on",
            "acknowledgement_number",
            "notified_on",
            "version",
            "parties",
            "services",
            "terms_in_force",
            "deliberations",
            "amendments",
            "pdf",
        ]

    def get_direction(self, convention) -> str | None:
        return direction_of(convention.parties.all())

    def get_terms_in_force(self, convention) -> dict:
        return TermsSerializer(current_terms(convention)).data
