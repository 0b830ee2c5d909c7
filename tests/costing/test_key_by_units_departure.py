"""A service commun shared by the units each member uses: a member that leaves by avenant is
imputed on its attribution de compensation the forecast of the months it was a member only
(docs/costing.md §4.1: the forecast follows the same parties as the actual shares)."""

from datetime import date
from decimal import Decimal as D

import pytest
import time_machine

from conventions.models import Amendment, ConventionService, UsageForecast
from conventions.services import amendments
from costing import services
from costing.models import UsageRecord
from tests.costing.conftest import bill, cost_base
from tests.costing.test_avenant_changes import avenant_terms, complete_and_sign

pytestmark = pytest.mark.django_db


def test_a_member_leaving_on_1_july_is_forecast_the_first_half_year_only(service_commun, territory):
    t = territory
    convention = bill(service_commun.convention)
    ConventionService.objects.filter(pk=service_commun.line.pk).update(
        allocation_key="UNITS", population_vintage=None
    )
    for commune in (t.commune_a, t.commune_b):
        UsageForecast.objects.create(
            terms=service_commun.terms,
            service=service_commun.line,
            beneficiary=commune,
            year=2026,
            units=D("100"),
        )
    service = service_commun.line.service
    cost_base(service)  # 36 500 €: 18 100 € from January to June, 18 400 € after
    for commune, month in ((t.commune_a, 3), (t.commune_a, 9), (t.commune_b, 3)):
        UsageRecord.objects.create(
            convention=convention,
            beneficiary=commune,
            service=service,
            unit_type=service.unit_type,
            period_start=date(2026, month, 1),
            period_end=date(2026, month, 28),
            quantity=D("10"),
            units=D("10"),
            source="IMPORT",
        )
    leaving = convention.parties.get(organisation=t.commune_b)
    with time_machine.travel(date(2026, 11, 28)):
        avenant = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Sortie de B", effective_from=date(2026, 7, 1)),
            terms=avenant_terms(),
            leaving=[leaving],
        )
    complete_and_sign(avenant, [t.epci, t.commune_a, t.commune_b])

    result = services.compute_reimbursements(2026).result
    forecast = {s.payer.name: s.forecast for s in result.settlements}
    assert forecast["Commune B"] == D("9050.00")  # half of January to June
    assert forecast["Commune A"] == D("9050.00") + D("18400.00")
