"""Acomptes follow the payer's presence: a commune leaving by avenant on 1 April is called on
the forecast of the days it is a party, nothing due after it left (docs/costing.md §5)."""

from datetime import date
from decimal import Decimal as D

import pytest
import time_machine

from conventions.models import Amendment, Terms
from conventions.services import amendments
from costing import instalments, services
from costing.models import UnitCost
from tests.conventions.conftest import add_deliberations
from tests.costing.conftest import bill

pytestmark = pytest.mark.django_db


def test_a_commune_leaving_on_1_april_is_called_nothing_due_after(mad_descendante, territory):
    t = territory
    convention = bill(mad_descendante.convention, mode="TITRE")
    Terms.objects.filter(convention=convention).update(instalment_count=4)
    UnitCost.objects.create(
        service=mad_descendante.service,
        year=2026,
        amount=D("100.00"),
        notification_deadline=date(2026, 4, 30),
        notified_on=date(2026, 3, 30),
    )
    leaving = convention.parties.get(organisation=t.commune_b)
    with time_machine.travel(date(2026, 11, 28)):
        avenant = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Sortie de B", effective_from=date(2026, 4, 1)),
            terms=Terms(
                settlement_mode="TITRE",
                periodicity_months=12,
                instalment_count=4,
                unit_cost_method="x",
            ),
            leaving=[leaving],
        )
        add_deliberations(
            convention, [t.epci, t.commune_a, t.commune_b], day=date(2026, 3, 1), amendment=avenant
        )
        amendments.amendment_sign(avenant, signature_date=date(2026, 3, 15))
        settlements = {
            s.payer.name: s for s in services.compute_reimbursements(2026).result.settlements
        }
        called = instalments.instalments_call(2026, up_to=date(2026, 11, 1))
    b = settlements["Commune B"]
    assert b.forecast == D("1972.60")  # 80 units × 100 € × 90 / 365 days
    assert all(p.due_date < date(2026, 4, 1) for p in b.planned)
    called_b = [i for i in called if i.payer_id == t.commune_b.pk]
    assert sum(i.amount for i in called_b) == D("1972.60")
    assert all(i.due_date < date(2026, 4, 1) for i in called_b)
    assert settlements["Commune A"].forecast == D("12000.00")
