"""Usage can be corrected (issue 8): an imported quantity is edited with its reason and history,
a justified adjustment may be negative (never the month's total), the import takes a motif and
a « remplacer » mode; none of it touches a year whose statement is issued until that statement
is put under correction."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from costing import services, statements
from costing.models import UsageRecord, UsageSource
from costing.resources import import_usage_file
from tests.costing.conftest import issue_after_review

pytestmark = pytest.mark.django_db

HEADER = "convention;beneficiaire;service;mois;quantite;ponderation;reference;motif"


def csv_of(billed, *rows):
    """Rows as (beneficiary, month, quantity, reference, motif), for the billed convention."""
    lines = [
        f"{billed.convention.reference};{beneficiary.siren};{billed.service.code};{month};"
        f"{quantity};;{reference};{motif}"
        for beneficiary, month, quantity, reference, motif in rows
    ]
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def units_of(commune, month):
    return sum(
        UsageRecord.objects.filter(
            beneficiary=commune, period_start=date(2026, month, 1)
        ).values_list("units", flat=True),
        Decimal(0),
    )


def page_text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


# --- the import ---------------------------------------------------------------------------------


def test_a_negative_row_with_its_motif_is_imported_as_an_adjustment(billed):
    a = billed.territory.commune_a
    report = import_usage_file(
        csv_of(billed, (a, "2026-03", "-5", "REM-1", "Remarque de la commune : doublon")),
        "r.csv",
        commit=True,
    )
    assert report.ok, report.errors
    record = UsageRecord.objects.get(reference="REM-1")
    assert (record.source, record.units, record.reason) == (
        UsageSource.ADJUSTMENT,
        Decimal("-5.000"),
        "Remarque de la commune : doublon",
    )
    assert units_of(a, 3) == Decimal("15")


def test_an_adjustment_may_not_make_the_month_negative(billed):
    a = billed.territory.commune_a
    report = import_usage_file(
        csv_of(billed, (a, "2026-03", "-25", "REM-2", "Trop retiré")), "r.csv", commit=True
    )
    assert [(e.line, e.column) for e in report.errors] == [(2, "quantite")]
    assert report.errors[0].message == (
        "Les unités de Commune A pour « "
        + billed.service.name
        + " » en 03/2026 deviendraient négatives (-5) : un ajustement ne retire que ce qui a "
        "été enregistré."
    )
    assert units_of(a, 3) == Decimal("20")


def test_replace_mode_replaces_the_imported_records_of_the_files_months_only(billed):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    content = csv_of(billed, (a, "2026-03", "18", "NEW-1", ""), (a, "2026-03", "1", "NEW-2", ""))
    preview = import_usage_file(content, "r.csv", commit=False, replace=True)
    assert (preview.ok, preview.replaced) == (True, 1)
    assert units_of(a, 3) == Decimal("20")  # a dry run changes nothing
    report = import_usage_file(content, "r.csv", commit=True, replace=True)
    assert (report.imported, report.replaced) == (True, 1)
    assert units_of(a, 3) == Decimal("19")
    assert (units_of(a, 4), units_of(b, 3)) == (Decimal("17"), Decimal("12.5"))  # untouched


def test_replace_mode_is_all_or_nothing(billed):
    a = billed.territory.commune_a
    content = csv_of(billed, (a, "2026-03", "18", "NEW-1", ""), (a, "2026-13", "1", "BAD", ""))
    report = import_usage_file(content, "r.csv", commit=True, replace=True)
    assert not report.imported
    assert units_of(a, 3) == Decimal("20")
    assert UsageRecord.objects.filter(beneficiary=a, period_start__month=3).count() == 1


def test_an_issued_year_is_locked_until_its_statement_is_put_under_correction(billed):
    a = billed.territory.commune_a
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == a)
    issued = issue_after_review(draft)
    content = csv_of(billed, (a, "2026-03", "-2", "REM-3", "Doublon signalé"))
    report = import_usage_file(content, "r.csv", commit=True)
    assert [(e.column, e.message) for e in report.errors] == [
        (
            "mois",
            "L'état n° EA-2026-0001 émis couvre les recours 2026 de Commune A : mettez-le "
            "d'abord en correction, puis modifiez les recours et émettez la correction.",
        )
    ]
    statements.statement_correct(issued, reason="Doublon signalé par la commune.")
    assert import_usage_file(content, "r.csv", commit=True).imported
    assert units_of(a, 3) == Decimal("18")


# --- the edit page, the adjustment, the état des recours ----------------------------------------


def test_finance_corrects_an_imported_quantity_with_its_reason_and_history(
    client, personas, billed
):
    record = UsageRecord.objects.get(beneficiary=billed.territory.commune_a, period_start__month=4)
    url = reverse("costing:usage-edit", args=[record.pk])
    client.force_login(personas.finance)
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"quantity": "7", "reference": "D-17", "reason": "Remarque : 10 actes en double."}
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert (record.quantity, record.units, record.reference, record.source) == (
        Decimal("7"),
        Decimal("7"),
        "D-17",
        UsageSource.IMPORT,
    )
    latest = record.history.latest()
    assert latest.history_change_reason == "Remarque : 10 actes en double."
    assert latest.history_user == personas.finance
    history = page_text(client.get(url))
    assert "Remarque : 10 actes en double." in history


def test_only_finance_and_managers_edit_usage(client, personas, billed):
    record = UsageRecord.objects.filter(beneficiary=billed.territory.commune_a).first()
    for persona in ("reader_a", "reader_b", "outsider"):
        client.force_login(getattr(personas, persona))
        assert client.get(reverse("costing:usage-edit", args=[record.pk])).status_code == 403
        assert (
            client.get(
                reverse("costing:usage-state", args=[billed.convention.reference, 2026])
            ).status_code
            == 403
        )
    client.force_login(personas.manager)
    assert client.get(reverse("costing:usage-edit", args=[record.pk])).status_code == 200


def test_a_negative_quantity_on_an_imported_record_is_refused(client, personas, billed):
    record = UsageRecord.objects.filter(beneficiary=billed.territory.commune_a).first()
    client.force_login(personas.finance)
    response = client.post(
        reverse("costing:usage-edit", args=[record.pk]), {"quantity": "-1", "reason": "x"}
    )
    assert "Seul un ajustement peut être négatif" in page_text(response)
    record.refresh_from_db()
    assert record.quantity == Decimal("20")


def test_the_remark_is_acted_on_through_a_correction_that_shows_the_difference(
    client, personas, billed
):
    a = billed.territory.commune_a
    issued = issue_after_review(
        next(s for s in statements.statements_prepare(2026) if s.payer == a)
    )
    record = UsageRecord.objects.get(beneficiary=a, period_start__month=4)
    url = reverse("costing:usage-edit", args=[record.pk])
    client.force_login(personas.finance)
    locked = client.post(url, {"quantity": "7", "reason": "Doublon."})
    assert "mettez-le d'abord en correction" in page_text(locked)
    record.refresh_from_db()
    assert record.quantity == Decimal("17")
    correction = statements.statement_correct(issued, reason="Dix actes d'avril en double.")
    assert client.post(url, {"quantity": "7", "reason": "Doublon."}).status_code == 302
    correction = issue_after_review(correction)
    assert correction.total == Decimal("6542.37")
    assert correction.snapshot["correction"]["difference_total"] == "-2423.10"
    # The correction issued, the year is locked again.
    assert "mettez-le d'abord en correction" in page_text(
        client.post(url, {"quantity": "8", "reason": "Encore."})
    )


def test_an_adjustment_is_added_from_the_usage_state_with_its_reason(client, personas, billed):
    a = billed.territory.commune_a
    url = reverse("costing:usage-state", args=[billed.convention.reference, 2026])
    client.force_login(personas.finance)
    page = page_text(client.get(url))
    assert "Ajouter un ajustement" in page
    assert page.count("Modifier") >= 3  # one link per record
    data = {"beneficiary": a.pk, "service": billed.service.pk, "month": 3, "quantity": "-4"}
    missing_reason = client.post(url, data)
    assert "Ce champ est obligatoire" in page_text(missing_reason)
    too_much = client.post(url, {**data, "quantity": "-21", "reason": "Doublon"})
    assert "deviendraient négatives (-1)" in page_text(too_much)
    assert client.post(url, {**data, "reason": "Quatre actes en double"}).status_code == 302
    adjustment = UsageRecord.objects.get(source=UsageSource.ADJUSTMENT)
    assert (adjustment.units, adjustment.reason, adjustment.recorded_by) == (
        Decimal("-4"),
        "Quatre actes en double",
        personas.finance,
    )
    assert units_of(a, 3) == Decimal("16")
    assert "Quatre actes en double" in page_text(client.get(url))


def test_an_adjustment_of_an_issued_year_is_refused(billed):
    a = billed.territory.commune_a
    issue_after_review(next(s for s in statements.statements_prepare(2026) if s.payer == a))
    with pytest.raises(services.UsageRefused, match="mettez-le d'abord en correction"):
        services.usage_adjust(
            convention=billed.convention,
            beneficiary=a,
            service=billed.service,
            month_start=date(2026, 3, 1),
            quantity=Decimal("-1"),
            reason="Doublon",
        )


def test_the_grid_of_an_issued_year_is_locked_until_its_statement_is_put_under_correction(
    billed,
):
    territory = billed.territory
    issue_after_review(
        next(s for s in statements.statements_prepare(2026) if s.payer == territory.commune_a)
    )
    grid = {(territory.commune_a.pk, 5): Decimal("4")}
    with pytest.raises(services.UsageRefused) as refused:
        services.usage_grid_save(
            convention=billed.convention, service=billed.service, year=2026, values=grid
        )
    assert "mettez-le d'abord en correction" in refused.value.reasons[0]
    assert not UsageRecord.objects.filter(source=UsageSource.GRID).exists()
    # Commune B's statement is not issued: its cells still save.
    assert (
        services.usage_grid_save(
            convention=billed.convention,
            service=billed.service,
            year=2026,
            values={(territory.commune_b.pk, 5): Decimal("4")},
        )
        == 1
    )


def test_a_long_correction_motif_is_kept_whole_in_the_history(billed, personas):
    """Before: a motif over 100 characters was a 500 on PostgreSQL (the history's reason was a
    varchar(100)); found by the fuzzing."""
    record = UsageRecord.objects.filter(beneficiary=billed.territory.commune_a).first()
    motif = "Recompte des dossiers après la remarque de la commune du 12 mars. " * 6

    services.usage_record_edit(
        record,
        quantity=Decimal("18"),
        weight=None,
        reference=record.reference,
        reason=motif,
        user=personas.finance,
    )

    assert record.history.latest("history_date").history_change_reason == motif.strip()


def test_the_usage_state_reads_its_locks_in_as_many_queries_for_2_payers_as_for_6(
    billed, django_assert_num_queries
):
    """Before: one query per payer to find its issued statement (a service commun of 112
    communes: 120 queries for one page)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conventions.models import Party, PartyRole
    from tests.factories import OrganisationFactory, UsageRecordFactory

    issued = issue_after_review(
        next(s for s in statements.statements_prepare(2026) if s.payer.name == "Commune A")
    )
    with CaptureQueriesContext(connection) as few:
        records, locks = services.usage_state(convention=billed.convention, year=2026)
    assert issued.number in locks[billed.territory.commune_a.pk]
    assert locks[billed.territory.commune_b.pk] is None
    for i in range(4):
        commune = OrganisationFactory(name=f"Commune ajoutée {i}")
        Party.objects.create(
            convention=billed.convention, organisation=commune, role=PartyRole.BENEFICIARY
        )
        UsageRecordFactory(
            convention=billed.convention, beneficiary=commune, service=billed.service
        )
    with django_assert_num_queries(len(few.captured_queries)):
        records, locks = services.usage_state(convention=billed.convention, year=2026)
    assert len(locks) == 6
    assert issued.number in locks[billed.territory.commune_a.pk]


def test_the_usage_state_shows_its_records_page_by_page(client, personas, billed, monkeypatch):
    """A service commun's year is thousands of records: the page shows them page by page, the
    lock notices of the whole year above them."""
    from costing import views

    monkeypatch.setattr(views, "USAGE_STATE_PER_PAGE", 2)
    records = UsageRecord.objects.filter(convention=billed.convention).count()
    assert records > 2
    client.force_login(personas.finance)
    url = reverse("costing:usage-state", args=[billed.convention.reference, 2026])
    first = page_text(client.get(url))
    assert first.count("Modifier") == 2
    pages = -(-records // 2)
    assert f"Page 1 sur {pages}" in first
    last = page_text(client.get(url, {"page": pages}))
    assert last.count("Modifier") == records - 2 * (pages - 1)
