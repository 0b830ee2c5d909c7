"""The état annuel as a document a comptable public and a préfecture accept: its legal basis,
the convention and its deliberations, the list of the recours (in an annex when long), the
amount « arrêté » in words, the ordonnateur's « Certifié exact », the mentions of a titre de
recettes (comptable assignataire, voies et délais de recours), the AC imputation, the acomptes,
a correction's difference, and never « provisoire » once issued. Everything printed comes from
the snapshot frozen at issue."""

import io
import re
from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.template.loader import render_to_string
from django.utils import timezone
from pypdf import PdfReader

from costing import instalments, statements
from costing.models import Instalment, UsageRecord, UsageSource
from mutualisation.models import Organisation
from mutualisation.templatetags.french import euros_in_words, long_date
from tests.conftest import run_seed_demo
from tests.costing.conftest import PARIS, bill, cost_base, issue_after_review

pytestmark = pytest.mark.django_db

COURT = "tribunal administratif de Clermont-Ferrand"
ACCOUNTANT = "Service de gestion comptable de Clermont-Ferrand"


def pdf_pages(content: bytes) -> list[str]:
    """Each page's text, whitespace collapsed. A line may break after the hyphen of a compound
    word (« trente-/sept »): the extracted « trente- sept » is joined back."""
    return [
        re.sub(r"(?<=\w)- (?=\w)", "-", re.sub(r"\s+", " ", p.extract_text()))
        for p in PdfReader(io.BytesIO(content)).pages
    ]


def pdf_text(content: bytes) -> str:
    return " ".join(pdf_pages(content))


def draft_of(payer_name, year=2026):
    return next(s for s in statements.statements_prepare(year) if s.payer.name == payer_name)


def describe_creditor(epci, **overrides):
    values = {
        "representative_title": "La Présidente",
        "representative_name": "Jeanne Martin",
        "representative_gender": "F",
        "seat": "Clermont-Ferrand",
        "administrative_court": COURT,
        "public_accountant": ACCOUNTANT,
        **overrides,
    }
    Organisation.objects.filter(pk=epci.pk).update(**values)


@pytest.fixture
def creditor(billed):
    describe_creditor(billed.territory.epci)
    return billed


def test_an_issued_mad_states_its_legal_basis_convention_and_deliberations(creditor):
    issued = issue_after_review(draft_of("Commune A"))
    text = pdf_text(bytes(issued.pdf))
    assert "article D. 5211-16" in text
    assert "L. 5211-4-1" in text
    assert "L. 5211-4-2" not in text
    reference = creditor.convention.reference
    assert f"Convention n° {reference}" in text
    assert "signée le 20 décembre 2025" in text
    # The deliberations approving the convention: organisation, number, date.
    for index, name in enumerate(("Métropole de test", "Commune A", "Commune B"), start=1):
        assert f"{name} — délibération n° {reference}-C-{index} du 10 décembre 2025" in text
    assert issued.snapshot["convention"]["signature_date"] == "2025-12-20"
    assert len(issued.snapshot["convention"]["deliberations"]) == 3


def test_the_recours_are_listed_under_their_line_with_reference_and_units(creditor):
    UsageRecord.objects.filter(beneficiary__name="Commune A", period_start__month=3).update(
        reference="DOS-2026-017"
    )
    issued = issue_after_review(draft_of("Commune A"))
    [line] = issued.snapshot["lines"]
    assert [(r["period_start"], r["reference"], r["units"]) for r in line["recours"]] == [
        ("2026-03-01", "DOS-2026-017", "20.000"),
        ("2026-04-01", "", "17.000"),
    ]
    text = pdf_text(bytes(issued.pdf))
    assert "Liste des recours au service" in text
    assert "01/03/2026 – 28/03/2026 DOS-2026-017 — 20 20" in text
    assert "Annexe : détail des recours" not in text
    # The forecast of the convention and the unit cost's notification.
    assert "Prévision : 120 unités" in text
    assert "notifié le 30/03/2026" in text


def test_more_than_25_recours_go_to_an_annex_at_the_end(creditor):
    for day in range(1, 31):
        UsageRecord.objects.create(
            convention=creditor.convention,
            beneficiary=creditor.territory.commune_a,
            service=creditor.service,
            unit_type=creditor.service.unit_type,
            period_start=date(2026, 6, day),
            period_end=date(2026, 6, day),
            quantity=Decimal("1"),
            units=Decimal("1"),
            reference=f"INT-{day:03d}",
            source=UsageSource.MANUAL,
        )
    issued = issue_after_review(draft_of("Commune A"))
    pages = pdf_pages(bytes(issued.pdf))
    text = " ".join(pages)
    assert "32 recours (détail en annexe)" in text
    assert "Liste des recours au service" not in text
    annex_start = next(i for i, page in enumerate(pages) if "Annexe : détail des recours" in page)
    certified = next(i for i, page in enumerate(pages) if "Certifié exact" in page)
    assert annex_start > certified  # the annex comes at the end, on its own page
    annex = " ".join(pages[annex_start:])
    assert all(f"INT-{day:03d}" in annex for day in range(1, 31))
    assert "INT-001" not in " ".join(pages[:annex_start])


def test_the_statement_is_arrested_in_words_and_certified_by_the_ordonnateur(creditor):
    issued = issue_after_review(draft_of("Commune A"))
    text = pdf_text(bytes(issued.pdf))
    assert (
        "Arrêté le présent état à la somme de 8 965,47 € (huit mille neuf cent soixante-cinq "
        "euros et quarante-sept centimes)" in text
    )
    other = issue_after_review(draft_of("Commune B"))
    assert f"({euros_in_words(other.total)})" in pdf_text(bytes(other.pdf))
    assert other.total == Decimal("3028.88")
    assert "Certifié exact" in text
    assert "La Présidente, Jeanne Martin" in text
    issued_on = timezone.localtime(issued.issued_at).date()
    assert f"Fait à Clermont-Ferrand, le {long_date(issued_on)}" in text
    assert "Fait à Clermont-Ferrand, le 31 janvier 2027" in text
    # Frozen: a later change of the ordonnateur never changes an issued statement.
    describe_creditor(creditor.territory.epci, representative_name="Paul Durand")
    issued.refresh_from_db()
    rendered = pdf_text(statements.render_statement_pdf(issued))
    assert "Jeanne Martin" in rendered
    assert "Paul Durand" not in rendered


def test_a_draft_says_it_is_a_draft_and_is_not_certified(creditor):
    text = pdf_text(statements.render_statement_pdf(draft_of("Commune A")))
    assert "PROJET" in text
    assert "Projet : l'état sera arrêté et certifié exact à son émission" in text
    assert "Certifié exact par" not in text
    assert "Fait à Clermont-Ferrand, le" not in text


def test_a_titre_carries_the_comptable_and_the_voies_et_delais_de_recours(creditor):
    issued = issue_after_review(draft_of("Commune A"))
    assert issued.balance_channel == "TITRE"
    text = pdf_text(bytes(issued.pdf))
    assert f"Comptable public assignataire : {ACCOUNTANT}" in text
    assert "L. 1617-5" in text
    assert "dans un délai de deux mois" in text
    assert COURT in text


def test_without_a_known_court_the_titre_names_the_competent_jurisdiction(billed):
    describe_creditor(billed.territory.epci, administrative_court="")
    text = pdf_text(bytes(issue_after_review(draft_of("Commune A")).pdf))
    assert "L. 1617-5" in text
    assert "devant la juridiction compétente" in text


def test_a_refund_carries_no_titre_mentions(creditor):
    instalments.instalments_call(2026, up_to=date(2026, 12, 31))  # 4 × 7 269,30 € called
    issued = issue_after_review(draft_of("Commune A"))
    assert issued.balance_channel == "MANDAT"
    text = pdf_text(bytes(issued.pdf))
    assert "L. 1617-5" not in text
    assert "Solde à rembourser au débiteur 20 111,73 €" in text  # the words give the sign
    assert "Sens du solde à rembourser au débiteur" in text


def test_the_acomptes_are_listed_with_their_call_dates_and_titre_numbers(creditor):
    with time_machine.travel(datetime(2026, 4, 2, 10, 0, tzinfo=PARIS)):
        instalments.instalments_call(2026, up_to=date(2026, 4, 30))
    instalments.instalment_record_titre(
        Instalment.objects.get(payer__name="Commune A", rank=1), "T-2026-0042"
    )
    issued = issue_after_review(draft_of("Commune A"))
    text = pdf_text(bytes(issued.pdf))
    assert "1 01/01/2026 02/04/2026 T-2026-0042 Titre émis 7 269,30 €" in text
    assert "2 01/04/2026 02/04/2026 — Appelé 7 269,30 €" in text


@pytest.mark.parametrize("unit_cost_kwargs", [{"is_provisional": True}])
def test_an_issued_statement_never_says_provisoire(creditor, unit_cost_kwargs):
    draft = draft_of("Commune A")
    assert "provisoire" in pdf_text(statements.render_statement_pdf(draft))
    issued = issue_after_review(draft)
    text = pdf_text(bytes(issued.pdf))
    assert "provisoire" not in text.lower()
    assert "242,31 €" in text
    assert "version 1, notifié le 30/03/2026" in text


def test_a_correction_shows_the_statement_it_cancels_and_the_difference(creditor):
    issued = issue_after_review(draft_of("Commune A"))
    correction = statements.statement_correct(issued, reason="Recours d'avril compté deux fois.")
    record = UsageRecord.objects.get(beneficiary__name="Commune A", period_start__month=4)
    record.quantity = record.units = Decimal("7")
    record.save()
    correction = issue_after_review(correction)
    text = pdf_text(bytes(correction.pdf))
    assert "annule et remplace l'état n° EA-2026-0001" in text
    assert "Différence -2 423,10 € -2 423,10 €" in text
    assert (
        "Arrêté le présent état à la somme de 6 542,37 € (six mille cinq cent quarante-deux "
        "euros et trente-sept centimes)" in text
    )


def test_a_service_commun_on_the_ac_states_its_basis_and_the_ac_imputation(
    service_commun, territory
):
    describe_creditor(territory.epci)
    bill(service_commun.convention)  # AC only
    cost_base(service_commun.line.service, actual="40150.00")
    draft = draft_of("Commune A")
    text = pdf_text(statements.render_statement_pdf(draft))
    assert "L. 5211-4-2" in text
    assert "D. 5211-16" not in text
    assert "par imputation sur l'attribution de compensation" in text
    assert "Montant imputé sur l'attribution de compensation − 21 900,00 €" in text
    assert "Sens du solde à payer par le débiteur, sur l'attribution de compensation" in text
    assert "L. 1617-5" not in text  # no titre


def test_a_snapshot_without_the_new_keys_still_renders(creditor):
    draft = draft_of("Commune A")
    old = {
        key: value
        for key, value in draft.snapshot.items()
        if key not in ("legal_mentions", "signature")
    }
    old["convention"] = {
        k: v
        for k, v in old["convention"].items()
        if k not in ("kind_code", "signature_date", "deliberations")
    }
    old["lines"] = [
        {
            k: v
            for k, v in line.items()
            if k not in ("recours", "forecast_units", "unit_cost_version")
        }
        for line in old["lines"]
    ]
    for side in ("payer", "payee"):
        old[side] = {
            k: v
            for k, v in old[side].items()
            if k not in ("seat", "administrative_court", "public_accountant")
        }
    old["version"] = 1
    draft.snapshot = old
    text = pdf_text(statements.render_statement_pdf(draft))
    assert "8 965,47 €" in text
    assert "article D. 5211-16" in text
    assert "Arrêté le présent état à la somme de 8 965,47 €" in text


@pytest.mark.django_db
def test_the_signature_is_never_left_alone_on_a_page_away_from_the_totals():
    """On every issued statement of the demo year, the page that carries the ordonnateur's
    certification also carries the amount it certifies and the accounting imputation (a
    review found Blanzat's and Durtol's signature alone on page 3)."""
    run_seed_demo()
    for draft in statements.statements_prepare(2025):
        issued = issue_after_review(draft)
        pages = pdf_pages(bytes(issued.pdf))
        signed = [page for page in pages if "Certifié exact par l'ordonnateur" in page]
        assert len(signed) == 1, issued.number
        assert "Arrêté le présent état à la somme de" in signed[0], issued.number
        assert "Imputation comptable" in signed[0], issued.number
        assert not any(mark in page for page in pages for mark in ("{#", "#}", "{%"))


@pytest.mark.parametrize(
    ("basis", "sentence"),
    [
        (["L. 5111-1"], "Fondement : article L. 5111-1 et la convention n° C-1."),
        (
            ["L. 5111-1", "L. 5211-4-3"],
            "Fondement : articles L. 5111-1, L. 5211-4-3 et la convention n° C-1.",
        ),
    ],
)
def test_the_basis_of_another_convention_says_article_for_one_and_articles_for_more(
    basis, sentence
):
    snapshot = {"convention": {"legal_basis": basis, "reference": "C-1"}}
    html = render_to_string(
        "costing/statement/legal_basis.html", {"s": snapshot, "kind_code": "OTHER"}
    )
    assert sentence in html
