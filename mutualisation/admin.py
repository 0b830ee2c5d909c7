from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin
from simple_history.template_utils import HistoricalRecordContextHelper

from mutualisation.models import (
    DocumentAccess,
    EpciMembership,
    Membership,
    Organisation,
    PopulationRecord,
    Service,
    UnitType,
    UnitWeight,
)


def operators_only(request) -> bool:
    """The admin lists every territory's records and every account: it is the platform's
    operators' (superusers') tool. A territory's staff, even marked staff with model
    permissions, work in the application, scoped to their territory."""
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = operators_only


class LabelledTabularInline(admin.TabularInline):
    """A tabular inline whose fields have names: Django's heads the columns but labels no field,
    so a screen reader announces every field of the rows without a name (axe: critical). Each
    field, and the row's deletion box, is named after its column and, on a saved row, the row."""

    def get_formset(self, request, obj=None, **kwargs):
        formset_class = super().get_formset(request, obj, **kwargs)

        class LabelledFormSet(formset_class):
            def add_fields(self, form, index):
                super().add_fields(form, index)
                for field in form.fields.values():
                    widget = field.widget
                    while hasattr(widget, "widget"):  # RelatedFieldWidgetWrapper
                        widget = widget.widget
                    name = str(field.label).removesuffix(" ?")
                    if form.instance.pk:
                        name = f"{name} ({form.instance})"
                    widget.attrs.setdefault("aria-label", name)

        return LabelledFormSet


class PopulationRecordInline(LabelledTabularInline):
    model = PopulationRecord
    extra = 0
    fields = ["vintage", "in_force_year", "municipal", "total", "source"]


class EpciMembershipInline(LabelledTabularInline):
    model = EpciMembership
    fk_name = "member"
    extra = 0
    fields = ["epci", "valid_from", "valid_until"]


@admin.register(Organisation)
class OrganisationAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "kind",
        "siren",
        "insee_code",
        "epci_nature",
        "tax_regime",
        "budget_nomenclature",
    ]
    list_filter = ["kind", "epci_nature", "tax_regime", "budget_nomenclature"]
    search_fields = ["name", "siren", "insee_code"]
    fieldsets = [
        (None, {"fields": ["kind", "name", "siren", "insee_code", "address"]}),
        (
            _("EPCI et territoire"),
            {
                "fields": [
                    "epci_nature",
                    "tax_regime",
                    "reference_prefix",
                    "statement_prefix",
                    "statement_review_days",
                ]
            },
        ),
        (
            _("Budget et signature"),
            {
                "fields": [
                    "budget_nomenclature",
                    "representative_title",
                    "representative_name",
                    "representative_gender",
                    "seat",
                    "administrative_court",
                    "public_accountant",
                ]
            },
        ),
    ]
    inlines = [EpciMembershipInline, PopulationRecordInline]
    object_history_template = "admin/mutualisation/organisation/object_history.html"
    # The rows edited on the organisation's page (model, foreign key to the organisation).
    history_inlines = [(EpciMembership, "member"), (PopulationRecord, "organisation")]

    def history_view(self, request, object_id, extra_context=None):
        """The organisation's history, then that of the rows edited on its page: a population
        corrected on a commune's page is found in the commune's history, old and new values,
        who and when (the organisation's own entry for that save changes nothing)."""
        organisation_id = unquote(object_id)
        sections = (
            [
                (model._meta.verbose_name_plural, row_changes(model, key, organisation_id))
                for model, key in self.history_inlines
            ]
            if organisation_id.isdigit()
            else []
        )
        return super().history_view(
            request, object_id, {**(extra_context or {}), "inline_histories": sections}
        )


def row_changes(model, key: str, organisation_id) -> list:
    """The historical records of ``model`` rows of an organisation, newest first, each with
    ``delta_changes``: its changed fields' names with old and new values."""
    records = list(
        model.history.filter(**{f"{key}_id": organisation_id})
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )
    last = {}
    for record in records:
        previous = last.get(record.id)
        record.delta_changes = (
            HistoricalRecordContextHelper(model, record).context_for_delta_changes(
                record.diff_against(previous, foreign_keys_are_objs=True)
            )
            if previous is not None
            else []
        )
        last[record.id] = record
    return records[::-1]


@admin.register(EpciMembership)
class EpciMembershipAdmin(SimpleHistoryAdmin):
    list_display = ["member", "epci", "valid_from", "valid_until"]
    list_filter = ["epci"]
    search_fields = ["member__name", "member__insee_code", "epci__name"]
    autocomplete_fields = ["member", "epci"]
    date_hierarchy = "valid_from"


@admin.register(PopulationRecord)
class PopulationRecordAdmin(SimpleHistoryAdmin):
    list_display = ["organisation", "vintage", "in_force_year", "municipal", "total", "source"]
    list_filter = ["vintage", "in_force_year"]
    search_fields = ["organisation__name", "organisation__insee_code", "source"]
    autocomplete_fields = ["organisation"]
    list_select_related = ["organisation"]


class UnitWeightInline(LabelledTabularInline):
    model = UnitWeight
    extra = 0


@admin.register(UnitType)
class UnitTypeAdmin(SimpleHistoryAdmin):
    list_display = ["label", "code", "unit"]
    list_filter = ["unit"]
    search_fields = ["label", "code"]
    inlines = [UnitWeightInline]


@admin.register(UnitWeight)
class UnitWeightAdmin(SimpleHistoryAdmin):
    list_display = ["unit_type", "code", "label", "weight"]
    list_filter = ["unit_type"]
    search_fields = ["code", "label", "unit_type__label"]
    list_select_related = ["unit_type"]


@admin.register(Service)
class ServiceAdmin(SimpleHistoryAdmin):
    list_display = ["name", "code", "territory", "provider", "kind", "unit_type"]
    # Only the EPCIs that have services: a deployment may host many territories.
    list_filter = ["kind", ("territory", admin.RelatedOnlyFieldListFilter), "unit_type"]
    search_fields = ["name", "code", "provider__name", "territory__name"]
    autocomplete_fields = ["provider", "territory"]
    list_select_related = ["provider", "territory", "unit_type"]


@admin.register(Membership)
class MembershipAdmin(SimpleHistoryAdmin):
    list_display = ["user", "organisation", "role"]
    list_filter = ["role", "organisation__kind"]
    search_fields = ["user__username", "user__last_name", "organisation__name"]
    autocomplete_fields = ["user", "organisation"]
    list_select_related = ["user", "organisation"]


class MembershipInline(LabelledTabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["organisation"]
    verbose_name_plural = _("Rôles dans les organisations")


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class MutualisUserAdmin(UserAdmin):
    inlines = [MembershipInline]
    list_display = ["username", "first_name", "last_name", "email", "is_staff", "is_active"]


@admin.register(DocumentAccess)
class DocumentAccessAdmin(admin.ModelAdmin):
    """The download log: read only (recorded by the application, purged by its command)."""

    list_display = ["at", "username", "document", "path"]
    list_filter = ["at"]
    search_fields = ["username", "document", "path"]
    readonly_fields = ["at", "user", "username", "document", "path"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # An audit log an administrator could prune would prove nothing; only the retention
        # command deletes (MUTUALIS_AUDIT_RETENTION_DAYS).
        return False
