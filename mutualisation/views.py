"""Pages of the territory: the home page with communes, populations and services."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from mutualisation.collation import french_sort_key
from mutualisation.models import EpciMembership, Organisation, PopulationRecord, Service
from mutualisation.rules import home_territories, scope_of

# The home page shows the two latest millésimes side by side.
VINTAGES_SHOWN = 2


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
    rows = []
    for commune in sorted(
        communes.prefetch_related("population_records"), key=lambda c: french_sort_key(c.name)
    ):
        by_vintage = {record.vintage: record for record in commune.population_records.all()}
        rows.append({"commune": commune, "populations": [by_vintage.get(v) for v in vintages]})
    totals = PopulationRecord.objects.totals_by_vintage(organisations=communes, vintages=vintages)
    context = {
        "epcis": epcis,
        "vintages": vintages,
        "rows": rows,
        "totals": [totals.get(v) for v in vintages],
        "membership_count": EpciMembership.objects.current().filter(epci__in=epcis).count(),
        "services": Service.objects.filter(territory__in=epcis)
        .select_related("provider", "unit_type")
        .order_by("name"),
    }
    return render(request, "mutualisation/home.html", context)
