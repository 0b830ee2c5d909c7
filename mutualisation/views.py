"""Pages of the territory: the home page with what the user has to do (« À faire »), then the
communes, populations and services."""

import json
from functools import cache
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from mutualisation.collation import french_sort_key
from mutualisation.models import EpciMembership, Organisation, PopulationRecord, Service
from mutualisation.rules import home_territories, scope_of

# The home page shows the two latest millésimes side by side.
VINTAGES_SHOWN = 2
COMMUNES_PER_PAGE = 50
SERVICES_PER_PAGE = 25


def epcis_with_member_counts(epcis):
    """The EPCIs, each with the number of its current member communes (one query)."""
    members = (
        EpciMembership.objects.current()
        .filter(epci=OuterRef("pk"))
        .order_by()
        .values("epci")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return epcis.annotate(
        member_count=Coalesce(Subquery(members, output_field=IntegerField()), Value(0))
    )


def pager(request, page, param: str, label: str) -> dict:
    """What ``_pagination.html`` shows for a page of a list: the links to the pages around,
    keeping the other parameters of the address (the page of another list, filters)."""

    def url(number):
        query = request.GET.copy()
        query[param] = number
        return f"?{query.urlencode()}"

    return {
        "page": page,
        "label": label,
        "previous": url(page.previous_page_number()) if page.has_previous() else None,
        "next": url(page.next_page_number()) if page.has_next() else None,
        "first": url(1) if page.number > 1 else None,
        "last": url(page.paginator.num_pages) if page.number < page.paginator.num_pages else None,
    }


@login_required
def home(request):
    scope = scope_of(request.user)
    if not scope.has_any_role:
        return render(request, "mutualisation/no_role.html", status=403)

    vintages = list(
        PopulationRecord.objects.order_by("-vintage")
        .values_list("vintage", flat=True)
        .distinct()[:VINTAGES_SHOWN]
    )
    epcis = home_territories(request.user)
    communes = Organisation.objects.communes().filter(
        pk__in=EpciMembership.objects.filter(epci__in=epcis).values("member_id")
    )
    # French alphabetical order (mutualisation.collation) over the names only; the page's
    # communes alone are loaded with their populations.
    ordered_ids = [
        pk
        for pk, _name in sorted(
            communes.values_list("pk", "name"), key=lambda row: french_sort_key(row[1])
        )
    ]
    communes_page = Paginator(ordered_ids, COMMUNES_PER_PAGE).get_page(request.GET.get("page"))
    by_pk = communes.filter(pk__in=list(communes_page)).prefetch_related("population_records")
    loaded = {commune.pk: commune for commune in by_pk}
    rows = []
    for pk in communes_page:
        commune = loaded[pk]
        by_vintage = {record.vintage: record for record in commune.population_records.all()}
        rows.append({"commune": commune, "populations": [by_vintage.get(v) for v in vintages]})
    totals = PopulationRecord.objects.totals_by_vintage(organisations=communes, vintages=vintages)
    services_page = Paginator(
        Service.objects.filter(territory__in=epcis)
        .select_related("provider", "unit_type")
        .order_by("name", "pk"),
        SERVICES_PER_PAGE,
    ).get_page(request.GET.get("services_page"))
    context = {
        "epcis": epcis_with_member_counts(epcis),
        "vintages": vintages,
        "rows": rows,
        "communes_page": communes_page,
        "communes_pager": pager(request, communes_page, "page", _("Pagination des communes")),
        "totals": [totals.get(v) for v in vintages],
        "services": services_page,
        "services_pager": pager(
            request, services_page, "services_page", _("Pagination des services")
        ),
    }
    return render(request, "mutualisation/home.html", context)


@cache
def axe_version() -> str:
    """The axe-core version the browser tests run (package.json, pinned)."""
    package = Path(settings.BASE_DIR) / "package.json"
    return json.loads(package.read_text(encoding="utf-8"))["devDependencies"]["axe-core"]


@require_GET
def accessibility(request):
    """The déclaration d'accessibilité (RGAA): public, linked from every page's footer."""
    return render(
        request,
        "mutualisation/accessibility.html",
        {"axe_version": axe_version(), "contact": settings.MUTUALIS_ACCESSIBILITY_CONTACT},
    )
