from django.contrib import admin
from django.db import models
from simple_history.admin import SimpleHistoryAdmin

from conventions.models import (
    AgentAssignment,
    Amendment,
    Attachment,
    Convention,
    ConventionService,
    Deliberation,
    ImpactSheet,
    Party,
    ReferenceCounter,
    Scheme,
    SchemeAction,
    SchemeOpinion,
    StaffBodyOpinion,
    Termination,
    Terms,
    UsageForecast,
)
from mutualisation.admin import LabelledTabularInline


class PartyInline(LabelledTabularInline):
    model = Party
    extra = 0
    autocomplete_fields = ["organisation"]


class ConventionServiceInline(LabelledTabularInline):
    model = ConventionService
    extra = 0


class TermsInline(admin.StackedInline):
    model = Terms
    extra = 0
    show_change_link = True


@admin.register(Convention)
class ConventionAdmin(SimpleHistoryAdmin):
    list_display = [
        "reference",
        "title",
        "territory",
        "kind",
        "status",
        "start_date",
        "signature_date",
    ]
    list_filter = [
        ("territory", admin.RelatedOnlyFieldListFilter),
        "kind",
        "status",
        "start_date",
    ]
    list_select_related = ["territory"]
    autocomplete_fields = ["territory", "managing_organisation"]
    search_fields = ["reference", "title", "object", "parties__organisation__name"]
    readonly_fields = [
        "reference",
        "status",
        "signature_date",
        "version",
        "created_at",
        "created_by",
    ]
    date_hierarchy = "start_date"
    inlines = [PartyInline, ConventionServiceInline, TermsInline]


@admin.register(Terms)
class TermsAdmin(SimpleHistoryAdmin):
    list_display = [
        "convention",
        "amendment",
        "effective_from",
        "settlement_mode",
        "periodicity_months",
        "end_date",
    ]
    list_filter = ["settlement_mode"]
    search_fields = ["convention__reference", "convention__title"]
    list_select_related = ["convention", "amendment"]


@admin.register(UsageForecast)
class UsageForecastAdmin(SimpleHistoryAdmin):
    list_display = ["terms", "service", "beneficiary", "year", "units", "fixed_share_percent"]
    list_filter = ["year"]
    search_fields = ["terms__convention__reference", "beneficiary__name"]
    list_select_related = ["terms__convention", "service__service", "beneficiary"]


@admin.register(Deliberation)
class DeliberationAdmin(SimpleHistoryAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["number", "organisation", "assembly", "date", "vote", "convention", "amendment"]
    list_filter = ["vote", "date"]
    search_fields = ["number", "object", "organisation__name", "convention__reference"]
    list_select_related = ["organisation", "convention", "amendment"]


@admin.register(StaffBodyOpinion)
class StaffBodyOpinionAdmin(SimpleHistoryAdmin):
    list_display = ["convention", "organisation", "body", "date", "opinion"]
    list_filter = ["body", "opinion"]
    search_fields = ["convention__reference", "organisation__name"]


@admin.register(Amendment)
class AmendmentAdmin(SimpleHistoryAdmin):
    list_display = ["convention", "number", "effective_from", "status", "signature_date"]
    list_filter = ["status"]
    search_fields = ["convention__reference", "object"]
    readonly_fields = ["number", "status", "signature_date"]


@admin.register(ImpactSheet)
class ImpactSheetAdmin(SimpleHistoryAdmin):
    list_display = ["convention", "established_on"]
    search_fields = ["convention__reference"]


@admin.register(AgentAssignment)
class AgentAssignmentAdmin(SimpleHistoryAdmin):
    list_display = ["agent_ref", "convention", "employer", "regime", "share_percent"]
    list_filter = ["regime"]
    search_fields = ["agent_ref", "convention__reference"]


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    list_display = ["title", "convention", "size", "uploaded_at", "uploaded_by"]
    search_fields = ["title", "convention__reference", "sha256"]
    readonly_fields = ["size", "sha256", "uploaded_at", "uploaded_by"]


@admin.register(Termination)
class TerminationAdmin(SimpleHistoryAdmin):
    list_display = ["convention", "notified_on", "effective_on", "notice_respected"]
    search_fields = ["convention__reference", "reason"]
    readonly_fields = ["notice_respected"]


@admin.register(ReferenceCounter)
class ReferenceCounterAdmin(admin.ModelAdmin):
    list_display = ["prefix", "year", "last_number"]


class SchemeOpinionInline(LabelledTabularInline):
    model = SchemeOpinion
    extra = 0
    autocomplete_fields = ["commune"]


@admin.register(Scheme)
class SchemeAdmin(SimpleHistoryAdmin):
    list_display = ["title", "territory", "first_year", "last_year", "status", "adopted_on"]
    list_filter = [("territory", admin.RelatedOnlyFieldListFilter), "status"]
    list_select_related = ["territory"]
    autocomplete_fields = ["territory"]
    search_fields = ["title", "territory__name"]
    readonly_fields = ["status", "submitted_on", "adopted_on", "deliberation_number"]
    inlines = [SchemeOpinionInline]


@admin.register(SchemeAction)
class SchemeActionAdmin(SimpleHistoryAdmin):
    list_display = ["title", "scheme", "service", "horizon", "target_year", "status"]
    list_filter = ["horizon", "status"]
    list_select_related = ["scheme", "service"]
    search_fields = ["title", "scheme__title", "service__name"]
    autocomplete_fields = ["scheme", "service", "communes", "conventions"]
