"""What every sortable, paged list shares (django-tables2)."""

from django.db.models import Case, IntegerField, Value, When
from django_tables2 import RequestConfig


def aria_sort(bound_column):
    """``aria-sort`` of a header: the column the table is sorted by says which way; the others
    say nothing (None leaves the attribute out)."""
    if not bound_column.is_ordered:
        return None
    return "descending" if bound_column.order_by_alias.is_descending else "ascending"


# The attributes of a sortable table, and of a header that sets its own (its alignment).
TABLE_ATTRS = {"class": "table table-sm table-striped align-middle", "th": {"aria-sort": aria_sort}}


def header(**attrs) -> dict:
    return {"aria-sort": aria_sort, **attrs}


def configure(request, table, *, per_page: int):
    """Sort ``table`` as the address asks and cut it into pages of ``per_page`` rows. A sort
    naming no column of the table (« 1.5 », « a.b ») is ignored: django-tables2 warns on it
    today and will fail on it."""
    field = table.prefixed_order_by_field
    sortable = {column.name for column in table.columns if column.orderable}
    asked = [part for value in request.GET.getlist(field) for part in value.split(",")]
    if any(part.removeprefix("-") not in sortable for part in asked):
        request.GET = request.GET.copy()
        request.GET.pop(field)
    RequestConfig(request, paginate={"per_page": per_page}).configure(table)
    return table


def lifecycle_order(queryset, is_descending, statuses, *then):
    """``queryset`` ordered by its ``status`` in the order of ``statuses`` (a life's steps:
    brouillon before en vigueur), not by the internal codes; then by ``then``."""
    rank = Case(
        *(When(status=status, then=Value(i)) for i, status in enumerate(statuses)),
        output_field=IntegerField(),
    )
    order = ("-" if is_descending else "") + "status_rank"
    return queryset.annotate(status_rank=rank).order_by(order, *then), True
