"""Defects a review of issue 8 reproduced (each test failed before its fix): keys that silently
exempt a member, approvals that outlive what was approved, unit costs billed before their
notification, the admin as a way around the usage lock, one keyed segment blanking a
convention."""

import csv
import io
from datetime import date
from decimal import Decimal as D

import pytest
import time_machine
from django.urls import reverse

from conventions.models import (
    Convention,
    ManagingShare,
    SettlementMode,
)
from costing import services, statements
from costing.demo import ensure_account_mapping
from costing.models import (
    Statement,
    UnitCost,
    UsageRecord,
)
from mutualisation.models import PopulationRecord
from tests.costing.conftest import (
    AFTER_YEAR_END,
    bill,
    cost_base,
    issue_after_review,
    record_planned_instalments,
)

pytestmark = pytest.mark.django_db


def export_rows(client, user, kind, year=2026):
    client.force_login(user)
    content = client.get(reverse("costing:export", args=[year, kind, "csv"])).content.decode()
    return list(csv.DictReader(io.StringIO(content)))


# --- 1. a member without a population record silently pays nothing --------------------------


def test_a_member_without_population_is_not_silently_exempted(service_commun, territory):
    """Commune B has no population of the key's vintage: today it pays 0 and Commune A pays
    the whole 36 500 €, with no finding at all."""
    convention = bill(service_commun.convention)
    cost_base(service_commun.line.service)
    PopulationRecord.objects.filter(organisation=territory.commune_b).delete()
    computed = services.compute_reimbursements(2026)
    billed = {
        line.payer.name: line.amount
        for line in computed.result.lines
        if line.convention == convention.reference
    }
    codes = [f.code for f in computed.findings if f.convention == convention.reference]
    # Either the convention is not computed (a finding says why), or B's missing weight is
    # reported; never Commune A billed B's part without a word.
    assert billed.get("Commune A") != D("36500.00") or any(
        "population" in f.message.lower()
        for f in computed.findings
        if f.convention == convention.reference
    ), (billed, codes)


# --- 2. the EPCI as a plain member (a commune manages the service): bears nothing, no finding --


def test_an_epci_member_of_a_population_keyed_service_is_not_silently_exempted(
    service_commun, territory
):
    convention = service_commun.convention
    Convention.objects.filter(pk=convention.pk).update(managing_organisation=territory.commune_a)
    convention = bill(convention, share=ManagingShare.NONE)
    cost_base(service_commun.line.service)
    computed = services.compute_reimbursements(2026)
    epci_lines = [
        line
        for line in computed.result.lines
        if line.convention == convention.reference and line.payer.is_epci
    ]
    findings = [f for f in computed.findings if f.convention == convention.reference]
    # Before: the EPCI (no population) pays 0 €, Commune B pays the whole cost, no finding.
    assert epci_lines or any("EPCI" in f.message for f in findings), [
        (line.payer.name, line.amount) for line in computed.result.lines
    ]


# --- 3. exports: AC-only balance as a titre, negative titres, corrections ---------------------


def test_an_ac_only_balance_is_never_exported_as_a_titre(
    client, personas, service_commun, territory
):
    convention = bill(service_commun.convention, mode=SettlementMode.AC_IMPUTATION)
    cost_base(service_commun.line.service, actual="40150.00")
    ensure_account_mapping()
    with time_machine.travel(AFTER_YEAR_END):
        for draft in statements.statements_prepare(2026):
            issue_after_review(draft)
    issued = Statement.objects.filter(convention=convention, number__isnull=False)
    assert {s.balance_channel for s in issued} == {"AC_N_PLUS_1"}
    titres = export_rows(client, personas.finance, "titres")
    # Before: two titres (2 190,00 € and 1 460,00 €) for balances carried into next year's AC.
    # Only the imputation on the AC is booked; the balance waits for next year's AC.
    assert {row["nature"] for row in titres} == {"IMPUTATION_AC"}


def test_a_refund_is_never_a_negative_titre(client, personas, billed):
    """Acomptes called on 120 and 80 forecast units, 37 and 12,5 units used: refunds."""
    record_planned_instalments(2026, billed.territory.commune_a)
    draft = next(
        s for s in statements.statements_prepare(2026) if s.payer == billed.territory.commune_a
    )
    issued = issue_after_review(draft)
    assert issued.balance < 0
    assert issued.balance_channel == "MANDAT"
    titres = export_rows(client, personas.finance, "titres")
    # Before: a titre row with montant "-20111.73".
    assert all(D(row["montant"]) >= 0 for row in titres), titres


def test_a_correction_exports_the_annulation_of_the_cancelled_titre(client, personas, billed):
    draft = next(
        s for s in statements.statements_prepare(2026) if s.payer == billed.territory.commune_a
    )
    issued = issue_after_review(draft)
    correction = statements.statement_correct(issued, reason="Recours de mars saisi deux fois.")
    UsageRecord.objects.filter(
        beneficiary=billed.territory.commune_a, period_start__month=3
    ).delete()
    issue_after_review(correction)
    titres = export_rows(client, personas.finance, "titres")
    # Before: only the new titre; nothing cites or reverses the cancelled EA-2026-0001.
    assert any(issued.number in " ".join(row.values()) for row in titres), titres


# --- 4. the debtor's approval survives a change of what it owes ---------------------------------


def test_an_approval_is_voided_when_the_balance_changes(billed, personas):
    commune_a = billed.territory.commune_a
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == commune_a)
    statements.statement_approve(draft, user=personas.reader_a)
    before = draft.balance
    # Finance records the acomptes afterwards: the total is the same, the balance is not.
    record_planned_instalments(2026, commune_a)
    statements.statements_prepare(2026)
    draft.refresh_from_db()
    assert draft.balance != before
    # Before: still approved, so it can be issued at once, inside the review window, with a
    # balance (a refund instead of a titre) the commune never saw.
    assert draft.approved_at is None
    assert statements.issue_refusals(draft, today=date(2027, 1, 16))


# --- 5. a corrected unit cost never notified is billed -------------------------------------------


def test_a_statement_is_not_issued_on_a_corrected_unit_cost_never_notified(billed):
    v1 = UnitCost.objects.get(service=billed.service, year=2026)
    UnitCost.objects.create(
        service=billed.service,
        year=2026,
        version=2,
        supersedes=v1,
        correction_reason="Erreur de saisie du compte 6411.",
        amount=D("260.00"),
        notification_deadline=date(2026, 4, 30),
    )
    draft = next(
        s for s in statements.statements_prepare(2026) if s.payer == billed.territory.commune_a
    )
    assert draft.total == D("9620.00")  # 37 × 260,00: the un-notified version is billed
    # Before: no refusal at all (only a *provisional* unit cost must be notified).
    assert statements.issue_refusals(draft, today=date(2027, 3, 1))


# --- 6. the usage lock is bypassed in the admin ------------------------------------------------


def test_the_admin_cannot_delete_a_usage_record_under_an_issued_statement(client, personas, billed):
    commune_a = billed.territory.commune_a
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == commune_a)
    issue_after_review(draft)
    record = UsageRecord.objects.filter(beneficiary=commune_a).first()
    assert services.usage_lock_reason(
        convention_id=record.convention_id, beneficiary_id=commune_a.pk, year=2026
    )
    client.force_login(personas.admin)
    client.post(reverse("admin:costing_usagerecord_delete", args=[record.pk]), {"post": "yes"})
    # Before: deleted, although the grid, the import and the edit all refuse it.
    assert UsageRecord.objects.filter(pk=record.pk).exists()


def test_the_admin_cannot_change_a_usage_record_under_an_issued_statement(client, personas, billed):
    commune_a = billed.territory.commune_a
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == commune_a)
    issue_after_review(draft)
    record = UsageRecord.objects.filter(beneficiary=commune_a).first()
    client.force_login(personas.admin)
    url = reverse("admin:costing_usagerecord_change", args=[record.pk])
    page = client.get(url)
    form = page.context["adminform"].form
    data = {
        name: ("" if value is None else value.pk if hasattr(value, "pk") else value)
        for name, value in form.initial.items()
        if name in form.fields
    }
    data["quantity"] = "999"
    client.post(url, data)
    record.refresh_from_db()
    assert record.quantity != D("999")


def test_an_admin_change_of_quantity_keeps_units_in_step(client, personas, billed):
    """Even on an unlocked year: the admin shows ``units`` read-only and never recomputes it,
    so the quantity shown (999) and the units billed (20) disagree."""
    record = UsageRecord.objects.filter(beneficiary=billed.territory.commune_a).first()
    client.force_login(personas.admin)
    url = reverse("admin:costing_usagerecord_change", args=[record.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: ("" if value is None else value.pk if hasattr(value, "pk") else value)
        for name, value in form.initial.items()
        if name in form.fields
    }
    data["quantity"] = "999"
    client.post(url, data)
    record.refresh_from_db()
    assert record.units == record.quantity, (record.quantity, record.units)


def test_a_unit_cost_cannot_be_notified_in_the_future(billed):
    unit_cost = UnitCost.objects.create(
        service=billed.service,
        year=2027,
        amount=D("250.00"),
        notification_deadline=date(2027, 4, 15),
    )
    with pytest.raises(services.UnitCostRefused, match="ne peut être dans le futur"):
        services.unit_cost_notify(unit_cost, date(2027, 6, 1))  # today: 15/01/2027
