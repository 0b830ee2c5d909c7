from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from costing.models import (
    AccountMapping,
    BatchJob,
    CostBase,
    CostLine,
    Instalment,
    Statement,
    StatementLine,
    StatementRemark,
    UnitCost,
    UsageImport,
    UsageRecord,
)
from mutualisation.admin import LabelledTabularInline


class CostLineInline(LabelledTabularInline):
    model = CostLine
    extra = 0


class DeferredListColumns:
    """An admin whose rows hold columns it does not list (a stored PDF, a computation's trace,
    a batch's plan: tens of kilobytes a row, 100 rows a page): ``list_deferred`` are read only
    when a row's own page shows them."""

    list_deferred: tuple[str, ...] = ()

    def get_queryset(self, request):
        return super().get_queryset(request).defer(*self.list_deferred)


@admin.register(CostBase)
class CostBaseAdmin(SimpleHistoryAdmin):
    list_display = [
        "service",
        "year",
        "source",
        "source_year",
        "reference_units",
        "reference_basis",
    ]
    list_filter = ["year", "source", "reference_basis"]
    search_fields = ["service__name", "service__code"]
    inlines = [CostLineInline]


@admin.register(UnitCost)
class UnitCostAdmin(DeferredListColumns, SimpleHistoryAdmin):
    """A notified unit cost is frozen (database triggers too): shown read-only, never deleted;
    a correction is a new version, made from the cost base page."""

    list_display = [
        "service",
        "year",
        "version",
        "amount",
        "is_provisional",
        "notified_on",
        "notification_deadline",
    ]

    list_deferred = ("trace",)

    list_filter = ["year", "is_provisional"]
    search_fields = ["service__name", "service__code"]
    readonly_fields = ["trace", "computed_at", "version", "supersedes", "correction_reason"]

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_notified:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_notified:
            return False
        return super().has_delete_permission(request, obj)


@admin.register(UsageRecord)
class UsageRecordAdmin(SimpleHistoryAdmin):
    """Read only: usage is entered, imported, corrected and adjusted through the application
    (costing.services, costing.resources), which keeps the weighted units in step, records a
    reason and refuses a year whose état annuel is issued and not under correction."""

    list_display = [
        "convention",
        "beneficiary",
        "service",
        "period_start",
        "quantity",
        "units",
        "source",
        "reference",
    ]
    list_filter = ["source", "service", "period_start"]
    search_fields = [
        "convention__reference",
        "beneficiary__name",
        "reference",
        "external_reference",
    ]
    list_select_related = ["convention", "beneficiary", "service"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Instalment)
class InstalmentAdmin(SimpleHistoryAdmin):
    """Acomptes are called, titled and paid through the application (costing/instalments.py,
    which refuses what the law or the statements forbid): the admin reads them."""

    list_display = [
        "convention", "payer", "year", "rank", "due_date", "amount", "status", "titre_number",
    ]  # fmt: skip
    list_filter = ["year", "status"]
    search_fields = ["convention__reference", "payer__name", "titre_number"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccountMapping)
class AccountMappingAdmin(SimpleHistoryAdmin):
    list_display = ["nomenclature", "flow", "direction", "side", "account", "label", "is_current"]
    list_filter = ["nomenclature", "flow", "direction", "side", "is_current"]
    search_fields = ["account", "label"]


class StatementLineInline(LabelledTabularInline):
    model = StatementLine
    extra = 0
    can_delete = False
    readonly_fields = [f.name for f in StatementLine._meta.fields]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Statement)
class StatementAdmin(DeferredListColumns, admin.ModelAdmin):
    """Statements are produced by the application; an issued one is read-only here as in the
    database (triggers)."""

    list_display = [
        "__str__",
        "year",
        "convention",
        "payer",
        "payee",
        "status",
        "total",
        "issued_at",
    ]

    list_deferred = ("pdf", "snapshot")

    list_filter = ["year", "status"]
    search_fields = ["number", "convention__reference", "payer__name", "payee__name"]
    list_select_related = ["convention", "payer", "payee"]
    readonly_fields = [f.name for f in Statement._meta.fields if f.name != "id"]
    inlines = [StatementLineInline]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return obj is None or not obj.is_issued

    def has_delete_permission(self, request, obj=None):
        return obj is not None and not obj.is_issued


@admin.register(StatementRemark)
class StatementRemarkAdmin(SimpleHistoryAdmin):
    """Read only: the commune writes its remark, finance answers it on the statement's page
    (statements.remark_add, statements.remark_answer), never here."""

    list_display = ["statement", "author", "created_at", "resolved_at"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["text", "answer", "statement__number"]
    readonly_fields = [
        "statement",
        "author",
        "text",
        "created_at",
        "answer",
        "answered_at",
        "answered_by",
        "resolved_at",
        "resolved_by",
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting an open remark would lift the block on issuing without any answer.
        return False


@admin.register(BatchJob)
class BatchJobAdmin(DeferredListColumns, admin.ModelAdmin):
    list_display = [
        "__str__",
        "year",
        "action",
        "status",
        "done",
        "total",
        "created_by",
        "created_at",
    ]

    list_deferred = ("plan", "chunks_done")

    list_filter = ["status", "action", "year"]
    readonly_fields = [
        "year",
        "action",
        "status",
        "total",
        "done",
        "error",
        "created_by",
        "created_at",
        "finished_at",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(UsageImport)
class UsageImportAdmin(DeferredListColumns, admin.ModelAdmin):
    """Usage files dropped for import: read-only (their records cite them)."""

    list_display = ["filename", "status", "rows", "replace", "created_by", "created_at"]

    list_deferred = ("errors", "preview")

    list_filter = ["status", "replace"]
    search_fields = ["filename", "sha256", "fingerprint"]
    readonly_fields = [
        "file",
        "filename",
        "sha256",
        "fingerprint",
        "replace",
        "status",
        "rows",
        "done",
        "replaced",
        "error_count",
        "created_by",
        "created_at",
        "imported_at",
    ]
    exclude = ["errors", "preview"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
