from django.contrib import admin
from import_export.admin import ImportExportModelAdmin
from simple_history.admin import SimpleHistoryAdmin

from costing.models import CostBase, CostLine, UnitCost, UsageRecord
from costing.resources import UsageRecordResource


class CostLineInline(admin.TabularInline):
    model = CostLine
    extra = 0


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
class UnitCostAdmin(SimpleHistoryAdmin):
    list_display = [
        "service",
        "year",
        "amount",
        "is_provisional",
        "notified_on",
        "notification_deadline",
    ]
    list_filter = ["year", "is_provisional"]
    search_fields = ["service__name", "service__code"]
    readonly_fields = ["trace", "computed_at"]


@admin.register(UsageRecord)
class UsageRecordAdmin(ImportExportModelAdmin, SimpleHistoryAdmin):
    resource_classes = [UsageRecordResource]
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
    search_fields = ["convention__reference", "beneficiary__name", "reference"]
    list_select_related = ["convention", "beneficiary", "service"]
    readonly_fields = ["units"]
