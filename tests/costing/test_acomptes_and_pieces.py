"""Acomptes are recorded (called, titre, encaissement) and the regularisation uses them; the
finance chain receives pieces that never go negative and that reverse exactly what a
correction cancels (issue 8, points 6, 7 and 10)."""

import csv
import io
import re
from datetime import date
from decimal import Decimal as D

import pytest
from django.urls import reverse
from pypdf import PdfReader

from costing import engine, instalments, statements
from costing.demo import ensure_account_mapping
from costing.models import Instalment, InstalmentStatus, Statement, UsageRecord
from tests.costing.conftest import bill, cost_base, issue_after_review

pytestmark = pytest.mark.django_db

# billed: MAD of the Métropole to communes A (120 units forecast) and B (80), 242,31 € a unit,
# 4 acomptes a year; A used 37 units (8 965,47 €), B 12,5 units (3 028,88 €). Today: 15/01/2027.


def draft_of(name):
    return next(s for s in statements.statements_prepare(2026) if s.payer.name == name)


def rows(client, kind, year=2026):
    content = client.get(reverse("costing:export", args=[year, kind, "csv"])).content.decode()
    return list(csv.DictReader(io.StringIO(content)))


def test_no_acompte_is_called_on_a_convention_signed_but_not_yet_enforceable(billed):
    """An acompte is a titre too: none on a convention not yet in force (not enforceable);
    once it is, the acomptes due are called."""
    from conventions.models import Convention, Status

    Convention.objects.filter(pk=billed.convention.pk).update(status=Status.SIGNED)
    assert instalments.instalments_call(2026, up_to=date(2026, 4, 30)) == []
    Convention.objects.filter(pk=billed.convention.pk).update(status=Status.IN_FORCE)
    assert len(instalments.instalments_call(2026, up_to=date(2026, 4, 30))) == 4


def test_due_acomptes_are_called_once_with_their_due_dates(billed):
    called = instalments.instalments_call(2026, up_to=date(2026, 4, 30))
    assert sorted((i.payer.name, i.rank, i.due_date, i.amount) for i in called) == [
        ("Commune A", 1, date(2026, 1, 1), D("7269.30")),
        ("Commune A", 2, date(2026, 4, 1), D("7269.30")),
        ("Commune B", 1, date(2026, 1, 1), D("4846.20")),
        ("Commune B", 2, date(2026, 4, 1), D("4846.20")),
    ]
    assert instalments.instalments_call(2026, up_to=date(2026, 4, 30)) == []  # idempotent
    assert Instalment.objects.count() == 4


def test_the_regularisation_uses_the_acomptes_actually_called(billed):
    instalments.instalments_call(2026, up_to=date(2026, 4, 30))  # 2 of the 4 planned
    cancelled = Instalment.objects.get(payer__name="Commune A", rank=2)
    instalments.instalment_cancel(cancelled, reason="Appelé deux fois.")
    assert cancelled.history.first().history_change_reason == "Appelé deux fois."
    draft = draft_of("Commune A")
    # 8 965,47 € used; one acompte of 7 269,30 € called (the cancelled one does not count).
    assert (draft.instalments_called, draft.balance, draft.balance_channel) == (
        D("7269.30"),
        D("1696.17"),
        engine.CHANNEL_TITRE,
    )
    b = draft_of("Commune B")
    # 3 028,88 € used, 9 692,40 € called: 6 663,52 € refunded by mandat, never a negative titre.
    assert (b.instalments_called, b.balance, b.balance_channel) == (
        D("9692.40"),
        D("-6663.52"),
        engine.CHANNEL_MANDAT,
    )


def test_an_acompte_records_its_titre_then_its_payment(billed):
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))
    acompte = Instalment.objects.get(payer__name="Commune A", rank=1)
    with pytest.raises(instalments.InstalmentRefused, match="numéro du titre"):
        instalments.instalment_record_payment(acompte, date(2026, 2, 10))
    acompte = instalments.instalment_record_titre(acompte, "T-2026-0042")
    acompte = instalments.instalment_record_payment(acompte, date(2026, 2, 10))
    assert (acompte.status, acompte.titre_number, acompte.paid_on) == (
        InstalmentStatus.PAID,
        "T-2026-0042",
        date(2026, 2, 10),
    )
    with pytest.raises(instalments.InstalmentRefused, match="encaissé ne s'annule pas"):
        instalments.instalment_cancel(acompte, reason="Erreur.")


def test_an_acompte_is_frozen_once_its_years_statement_is_issued(billed):
    instalments.instalments_call(2026, up_to=date(2026, 12, 31))
    issued = issue_after_review(draft_of("Commune A"))
    acompte = Instalment.objects.get(payer__name="Commune A", rank=3)
    with pytest.raises(instalments.InstalmentRefused) as refused:
        instalments.instalment_cancel(acompte, reason="Erreur.")
    assert refused.value.reasons == [
        f"L'état annuel n° {issued.number}, émis, a régularisé cet acompte : il ne se modifie plus."
    ]


def test_the_etat_annuel_lists_the_acomptes_with_their_dates_and_numbers(billed):
    instalments.instalments_call(2026, up_to=date(2026, 4, 30))
    instalments.instalment_record_titre(
        Instalment.objects.get(payer__name="Commune A", rank=1), "T-2026-0042"
    )
    issued = issue_after_review(draft_of("Commune A"))
    assert [
        (i["rank"], i["due_date"], i["titre_number"])
        for i in issued.snapshot["settlement"]["instalments"]
    ] == [
        (1, "2026-01-01", "T-2026-0042"),
        (2, "2026-04-01", ""),
    ]
    text = re.sub(
        r"\s+",
        " ",
        " ".join(p.extract_text() for p in PdfReader(io.BytesIO(bytes(issued.pdf))).pages),
    )
    # rank, due date, called on (today: 15/01/2027), titre number, status, amount
    assert "1 01/01/2026 15/01/2027 T-2026-0042 Titre émis 7 269,30 €" in text
    assert "2 01/04/2026 15/01/2027 — Appelé 7 269,30 €" in text


def test_acomptes_are_exported_for_the_titres(client, personas, billed):
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))
    instalments.instalment_record_titre(
        Instalment.objects.get(payer__name="Commune A", rank=1), "T-2026-0042"
    )
    client.force_login(personas.finance)
    exported = rows(client, "acomptes")
    assert [
        (r["debiteur"], r["rang"], r["echeance"], r["montant"], r["compte"], r["titre"])
        for r in exported
    ] == [
        ("Commune A", "1", "2026-01-01", "7269.30", "70875", "T-2026-0042"),
        ("Commune B", "1", "2026-01-01", "4846.20", "70875", ""),
    ]


def test_commune_readers_see_only_their_acomptes_and_cannot_act(client, personas, billed):
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))
    client.force_login(personas.reader_a)
    page = client.get(reverse("costing:instalments", args=[2026])).content.decode()
    assert "Commune A" in page
    assert "Commune B" not in page
    acompte = Instalment.objects.get(payer__name="Commune A", rank=1)
    response = client.post(reverse("costing:instalment-action", args=[acompte.pk, "annulation"]))
    assert response.status_code == 403
    assert (
        client.post(
            reverse("costing:instalments-call", args=[2026]), {"up_to": "2026-12-31"}
        ).status_code
        == 403
    )
    assert Instalment.objects.get(pk=acompte.pk).status == InstalmentStatus.CALLED


def test_finance_calls_and_records_acomptes_from_the_page(client, personas, billed):
    client.force_login(personas.finance)
    response = client.post(
        reverse("costing:instalments-call", args=[2026]), {"up_to": "2026-04-30"}, follow=True
    )
    assert "4 acomptes appelés." in response.content.decode()
    acompte = Instalment.objects.get(payer__name="Commune A", rank=1)
    client.post(reverse("costing:instalment-action", args=[acompte.pk, "titre"]), {"number": "T-1"})
    response = client.post(
        reverse("costing:instalment-action", args=[acompte.pk, "encaissement"]),
        {"paid_on": "2030-01-01"},
        follow=True,
    )
    assert "La date d&#x27;encaissement ne peut être dans le futur." in response.content.decode()
    assert Instalment.objects.get(pk=acompte.pk).status == InstalmentStatus.TITRE_ISSUED


# --- pieces for the finance chain ---------------------------------------------------------------


def test_a_correction_reverses_the_cancelled_titre_and_issues_the_new_one(client, personas, billed):
    """Before: the cancelled statement's row vanished from the titres export and only the new
    amount was emitted, so what the comptable had processed was never reversed."""
    first = issue_after_review(draft_of("Commune A"))
    correction = statements.statement_correct(first, reason="Recours d'avril compté deux fois.")
    record = UsageRecord.objects.get(beneficiary__name="Commune A", period_start__month=4)
    record.quantity = record.units = D("7")
    record.save()
    correction = issue_after_review(correction)
    client.force_login(personas.finance)
    titres = [
        (r["reference"], r["nature"], r["annule"], r["montant"], r["compte"])
        for r in rows(client, "titres")
        if r["debiteur"] == "Commune A"
    ]
    assert titres == [
        (first.number, "TITRE", "", "8965.47", "70875"),
        (correction.number, "REDUCTION_TITRE", first.number, "8965.47", "70875"),
        (correction.number, "TITRE", "", "6542.37", "70875"),
    ]
    mandats = [
        (r["reference"], r["nature"], r["annule"], r["montant"], r["compte"])
        for r in rows(client, "mandats")
        if r["emetteur_siren"] == billed.territory.commune_a.siren
    ]
    assert mandats == [
        (first.number, "MANDAT", "", "8965.47", "62876"),
        (correction.number, "ANNULATION_MANDAT", first.number, "8965.47", "62876"),
        (correction.number, "MANDAT", "", "6542.37", "62876"),
    ]


def test_a_refund_is_a_mandat_of_the_creditor_never_a_negative_titre(client, personas, billed):
    instalments.instalments_call(2026, up_to=date(2026, 12, 31))
    issue_after_review(draft_of("Commune B"))
    client.force_login(personas.finance)
    [titre] = [r for r in rows(client, "titres") if r["debiteur"] == "Commune B"]
    [mandat] = [
        r
        for r in rows(client, "mandats")
        if r["creancier"] == "Métropole de test"
        and r["emetteur_siren"] == billed.territory.commune_b.siren
    ]
    assert (titre["nature"], titre["montant"]) == ("MANDAT_REMBOURSEMENT", "16355.92")
    assert (mandat["nature"], mandat["montant"]) == ("TITRE_REMBOURSEMENT", "16355.92")
    assert all(not r["montant"].startswith("-") for r in rows(client, "titres"))


def test_titres_and_mandats_mirror_each_other_to_the_cent(client, personas, billed):
    instalments.instalments_call(2026, up_to=date(2026, 6, 30))
    for name in ("Commune A", "Commune B"):
        issue_after_review(draft_of(name))
    client.force_login(personas.finance)
    titres, mandats = rows(client, "titres"), rows(client, "mandats")
    assert [(t["reference"], t["annule"], t["montant"]) for t in titres] == [
        (m["reference"], m["annule"], m["montant"]) for m in mandats
    ]
    assert [statements.DEBTOR_MIRROR[t["nature"]] for t in titres] == [m["nature"] for m in mandats]
    assert Statement.objects.filter(status="ISSUED").count() == 2


@pytest.mark.parametrize(
    ("mode", "creditor", "debtor"),
    [
        (
            "MIXED",
            [("IMPUTATION_AC", "21900.00", "739211"), ("TITRE", "2190.00", "70875")],
            [("IMPUTATION_AC", "21900.00", "73211"), ("MANDAT", "2190.00", "62876")],
        ),
        # AC only: the balance is carried into next year's AC, never a titre.
        (
            "AC_IMPUTATION",
            [("IMPUTATION_AC", "21900.00", "739211")],
            [("IMPUTATION_AC", "21900.00", "73211")],
        ),
    ],
)
def test_what_is_imputed_on_the_ac_is_booked_on_the_ac_accounts(
    client, personas, service_commun, territory, after_year_end, mode, creditor, debtor
):
    bill(service_commun.convention, mode=mode)
    cost_base(service_commun.line.service, actual="40150.00")
    ensure_account_mapping()
    issue_after_review(
        next(s for s in statements.statements_prepare(2026) if s.payer == territory.commune_a)
    )
    client.force_login(personas.finance)
    assert [(r["nature"], r["montant"], r["compte"]) for r in rows(client, "titres")] == creditor
    assert [(r["nature"], r["montant"], r["compte"]) for r in rows(client, "mandats")] == debtor


def test_no_acompte_is_called_once_the_years_statement_is_issued(billed):
    issue_after_review(draft_of("Commune A"))
    called = instalments.instalments_call(2026, up_to=date(2026, 12, 31))
    assert {i.payer.name for i in called} == {"Commune B"}


def test_cancelling_an_acompte_needs_its_reason(client, personas, billed):
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))
    acompte = Instalment.objects.get(payer__name="Commune A", rank=1)
    client.force_login(personas.finance)
    response = client.post(
        reverse("costing:instalment-action", args=[acompte.pk, "annulation"]),
        {"reason": ""},
        follow=True,
    )
    assert "Motif de l&#x27;annulation : Ce champ est obligatoire." in response.content.decode()
    assert Instalment.objects.get(pk=acompte.pk).status == InstalmentStatus.CALLED


def test_the_exports_of_an_issued_statement_are_frozen_and_state_total_and_called(
    client, personas, billed
):
    """Before: renaming a commune changed the titres export of an already issued statement
    (its snapshot did not change), and total_exercice / deja_appele were missing."""
    instalments.instalments_call(2026, up_to=date(2026, 6, 30))
    issued = issue_after_review(draft_of("Commune A"))
    client.force_login(personas.finance)
    before_titres, before_mandats = rows(client, "titres"), rows(client, "mandats")
    commune = billed.territory.commune_a
    commune.name = "Commune A renommée"
    commune.save()
    assert rows(client, "titres") == before_titres
    assert rows(client, "mandats") == before_mandats
    titre = next(t for t in before_titres if t["reference"] == issued.number)
    assert titre["debiteur"] == "Commune A"
    assert titre["total_exercice"] == str(issued.total)
    assert titre["deja_appele"] == str(issued.instalments_called)
    assert D(titre["montant"]) == abs(issued.total - issued.instalments_called)
    assert D(titre["deja_appele"]) > 0


def test_the_acomptes_page_reads_the_stored_year_and_another_territorys_acomptes_not_at_all(
    client, personas, billed, monkeypatch
):
    """Before: every view of the acomptes page computed the whole year again (and read every
    territory's acomptes and issued statements); now it reads the year's stored results, as the
    dashboard does, computed again only when their inputs change."""
    from costing import services
    from tests.factories import EpciFactory

    computed = []
    compute = services.compute_reimbursements
    monkeypatch.setattr(
        services,
        "compute_reimbursements",
        lambda *args, **kwargs: computed.append(args) or compute(*args, **kwargs),
    )
    client.force_login(personas.finance)
    url = reverse("costing:instalments", args=[2026])
    first = client.get(url)
    pending = [(r["payer"], r["rank"], r["amount"]) for r in first.context["pending"].data]
    assert ("Commune A", 1, D("7269.30")) in pending
    assert len(pending) == 8  # 4 acomptes planned for each commune, none called
    computed.clear()
    again = client.get(url)
    assert computed == []  # read from the stored results
    assert [(r["payer"], r["rank"], r["amount"]) for r in again.context["pending"].data] == pending
    # An acompte called elsewhere, in another territory, changes nothing here.
    elsewhere = EpciFactory(name="Communauté du Val")
    other = type(billed.convention).objects.create(
        reference="VAL-2026-001", territory=elsewhere, start_date=date(2026, 1, 1)
    )
    Instalment.objects.create(
        convention=other, payer=elsewhere, payee=elsewhere, year=2026, rank=1,
        due_date=date(2026, 1, 1), amount=D("1.00"),
    )  # fmt: skip
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    unscoped = [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "costing_instalment"' in q["sql"]
        and "territory_id" not in q["sql"]
        and '"convention_id" IN' not in q["sql"]
    ]
    assert unscoped == []


def test_the_finance_exports_read_no_stored_pdf(client, personas, billed):
    """Before: the titres and mandats read every issued statement whole, its stored PDF and
    that of the statement it cancels included: thousands of PDFs for a territory's year."""
    import re as regex

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    issue_after_review(draft_of("Commune A"))
    client.force_login(personas.finance)
    for kind in ("titres", "mandats"):
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("costing:export", args=[2026, kind, "csv"]))
        assert response.status_code == 200
        read = [q["sql"] for q in captured.captured_queries if '"costing_statement"' in q["sql"]]
        assert read
        assert not [sql for sql in read if regex.search(r'\."pdf"', sql)], kind
