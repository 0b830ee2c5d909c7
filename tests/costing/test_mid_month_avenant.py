"""An avenant effective mid-month: a monthly usage record counts for a commune present on one
of the month's days, dated its first such day, for the commune joining as for the one leaving
(before, the joining commune's record of that month stopped the whole convention's
computation, while the leaving commune's month was billed)."""

from datetime import date
from decimal import Decimal as D

import pytest
import time_machine

from conventions.models import Amendment, Terms, UsageForecast
from conventions.services import amendments
from costing import services
from costing.models import UnitCost, UsageRecord
from tests.conventions.conftest import add_deliberations
from tests.costing.conftest import bill
from tests.factories import EpciMembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db


def test_the_joining_communes_record_of_the_joining_month_is_billed(mad_descendante, territory):
    t = territory
    joining = OrganisationFactory(name="Commune C")
    EpciMembershipFactory(member=joining, epci=t.epci, valid_from=date(2020, 1, 1))
    convention = bill(mad_descendante.convention, mode="TITRE")
    service = mad_descendante.service
    UnitCost.objects.create(
        service=service,
        year=2026,
        amount=D("100.00"),
        notification_deadline=date(2026, 4, 30),
        notified_on=date(2026, 3, 30),
    )
    leaving = convention.parties.get(organisation=t.commune_b)
    with time_machine.travel(date(2026, 6, 15)):
        avenant = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(
                object="Entrée de C, sortie de B", effective_from=date(2026, 9, 15)
            ),
            terms=Terms(
                settlement_mode="TITRE",
                periodicity_months=12,
                instalment_count=0,
                unit_cost_method="x",
            ),
            joining=[joining],
            leaving=[leaving],
        )
        UsageForecast.objects.create(
            terms=avenant.terms,
            service=mad_descendante.line,
            beneficiary=joining,
            year=2026,
            units=D("10"),
        )
        add_deliberations(
            convention,
            [t.epci, t.commune_a, t.commune_b, joining],
            day=date(2026, 6, 1),
            amendment=avenant,
        )
        amendments.amendment_sign(avenant, signature_date=date(2026, 6, 10))
    for who, units in ((t.commune_b, "10"), (joining, "5")):
        UsageRecord.objects.create(
            convention=convention,
            beneficiary=who,
            service=service,
            unit_type=service.unit_type,
            period_start=date(2026, 9, 1),
            period_end=date(2026, 9, 30),
            quantity=D(units),
            units=D(units),
            source="IMPORT",
        )
    reimbursements = services.compute_reimbursements(2026)
    assert not [f for f in reimbursements.findings if f.code == "NOT_COMPUTED"]
    billed = {}
    for line in reimbursements.result.lines:
        billed[line.payer.name] = billed.get(line.payer.name, D(0)) + line.amount
    assert billed["Commune C"] == D("500.00")
    assert billed["Commune B"] == D("1000.00")
