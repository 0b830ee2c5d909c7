"""The year computation from the database: periods, dates and states that move money."""

from datetime import date
from decimal import Decimal

import pytest

from conventions.models import Amendment, Convention, SettlementMode, Termination, Terms
from costing import services, statements
from costing.models import UsageRecord
from tests.costing.conftest import issue_after_review, record_planned_instalments

pytestmark = pytest.mark.django_db


def lines_of(convention, year=2026):
    return [
        x
        for x in services.compute_reimbursements(year).result.lines
        if x.convention == convention.reference
    ]


def test_a_draft_avenant_does_not_split_the_periods(billed):
    terms = Terms.objects.get(convention=billed.convention, amendment__isnull=True)
    amendment = Amendment.objects.create(
        convention=billed.convention, number=1, object="Projet", effective_from=date(2026, 7, 1)
    )
    Terms.objects.create(
        convention=billed.convention,
        amendment=amendment,
        effective_from=date(2026, 7, 1),
        settlement_mode=SettlementMode.TITRE,
        periodicity_months=3,
        unit_cost_method=terms.unit_cost_method,
    )
    periods = {(x.period.start, x.period.end) for x in lines_of(billed.convention)}
    assert periods == {(date(2026, 1, 1), date(2026, 12, 31))}


def test_a_convention_starting_mid_month_counts_that_month(billed):
    Convention.objects.filter(pk=billed.convention.pk).update(start_date=date(2026, 3, 15))
    Terms.objects.filter(convention=billed.convention).update(effective_from=date(2026, 3, 15))
    amounts = {x.payer.name: x.amount for x in lines_of(billed.convention)}
    assert amounts == {"Commune A": Decimal("8965.47"), "Commune B": Decimal("3028.88")}


def test_a_convention_terminated_before_it_starts_owes_nothing(billed, territory):
    Termination.objects.create(
        convention=billed.convention,
        notified_on=date(2025, 10, 1),
        effective_on=date(2025, 12, 31),
        requested_by=territory.commune_a,
        reason="Abandon",
        agents_outcome="Aucun agent",
        notice_respected=True,
    )
    result = services.compute_reimbursements(2026).result
    assert not [x for x in result.lines if x.convention == billed.convention.reference]
    assert not [s for s in result.settlements if s.convention == billed.convention.reference]


def test_a_tacitly_renewed_convention_is_billed_after_its_end_date(billed):
    Terms.objects.filter(convention=billed.convention).update(
        end_date=date(2026, 6, 30), tacit_renewal=True
    )
    periods = {(x.period.start, x.period.end) for x in lines_of(billed.convention)}
    assert periods == {(date(2026, 1, 1), date(2026, 12, 31))}
    Terms.objects.filter(convention=billed.convention).update(tacit_renewal=False)
    periods = {(x.period.start, x.period.end) for x in lines_of(billed.convention)}
    assert periods == {(date(2026, 1, 1), date(2026, 6, 30))}


def test_a_stale_draft_is_brought_to_zero_and_cannot_be_issued(billed, territory):
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == territory.commune_b)
    UsageRecord.objects.filter(beneficiary=territory.commune_b).delete()
    terms = Terms.objects.get(convention=billed.convention, amendment__isnull=True)
    terms.forecasts.filter(beneficiary=territory.commune_b).update(units=0)
    statements.statements_prepare(2026)
    draft.refresh_from_db()
    assert (draft.total, draft.balance, draft.lines.count()) == (0, 0, 0)
    with pytest.raises(statements.StatementRefused, match="rien à émettre"):
        statements.statement_issue(draft)


def test_a_payer_who_used_nothing_gets_a_statement_of_its_refund(billed, territory):
    UsageRecord.objects.filter(beneficiary=territory.commune_b).delete()
    record_planned_instalments(2026, territory.commune_b)
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == territory.commune_b)
    issued = issue_after_review(draft)
    # 80 units forecast at 242,31 € called in instalments, nothing used: all of it is refunded.
    assert (issued.total, issued.instalments_called, issued.balance) == (
        Decimal("0.00"),
        Decimal("19384.80"),
        Decimal("-19384.80"),
    )
