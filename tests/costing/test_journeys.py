"""Journey 3 (issue 12): a finance officer's year, end to end, in a real Chromium.

From the login page and through the pages only, the Métropole's finance officer computes the
systèmes d'information's unit cost for 2026 and records its notification (March 2026, before the
legal deadline); imports the year's usage, refused whole for one bad row, then accepted once
fixed; prepares the year's statements, which the communes' review window keeps from being issued;
once the window is over, issues them all and downloads the ZIP while the batch runs to
« Terminé »; downloads one statement's PDF; and finds on the dashboard the total of what was
issued. The ORM only seeds the starting data and checks the end state; the clock is moved forward
between the steps (time_machine), as the weeks go by between them in a real year.
"""

import csv
import io
import re
import subprocess
import zipfile
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

import pypdfium2
import pytest
import time_machine
from playwright.sync_api import expect

from conventions.demo import DEMO, build
from costing.demo import BASES_2025, GROWTH, ensure_account_mapping
from costing.models import (
    CostBase,
    CostLine,
    ReferenceBasis,
    SourceDocument,
    Statement,
    StatementStatus,
    UsageRecord,
)
from mutualisation.management.commands.seed_demo import DEMO_PASSWORD
from mutualisation.models import Service
from tests.conftest import SCREENSHOTS, assert_accessible, screenshot, seed_territory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PARIS = ZoneInfo("Europe/Paris")
YEAR = 2026
SERVICE = "systemes-information"
# The communes the Métropole provides its systèmes d'information to (demo convention), by INSEE
# code: the workstations counted in January and in July, each count standing for half the year.
COUNTS = {
    "63014": ("Aubière", "90", "92"),
    "63032": ("Beaumont", "82", "84"),
    "63063": ("Cébazat", "70", "71"),
}
# Mid-March: the unit cost is computed and notified before the legal deadline (L1612-2).
UNIT_COST_DAY = datetime(YEAR, 3, 16, 9, 0, tzinfo=PARIS)
# Once the year is over: the year's usage is imported and the drafts are prepared.
PREPARE_DAY = datetime(YEAR + 1, 1, 11, 9, 0, tzinfo=PARIS)
# The day after the communes' review window (15 days by default) closes.
ISSUE_DAY = datetime(YEAR + 1, 1, 27, 9, 0, tzinfo=PARIS)


def seed_year_start():
    """The demo territory, the systèmes d'information convention in force since 1 January 2026
    (its avenant, signed in June, lies in the future of the journey's first day), and the 2026
    cost base the finance officer computes the unit cost from."""
    seed_territory()
    ensure_account_mapping()  # seeded by a migration; a transactional test's flush removes it
    demo = next(d for d in DEMO if d.service == SERVICE)
    convention = build(replace(demo, amendment=None))
    service = Service.objects.get(code=SERVICE, territory=convention.territory)
    units, lines = BASES_2025[SERVICE]
    base = CostBase.objects.create(
        service=service,
        year=YEAR,
        source=SourceDocument.CA,
        source_year=YEAR - 1,
        reference_units=Decimal(units),
        reference_basis=ReferenceBasis.FORECAST,
    )
    for label, category, account, amount, adjustment, eligible in lines:
        CostLine.objects.create(
            cost_base=base,
            label=label,
            category=category,
            account=account,
            accounts_amount=(Decimal(amount) * GROWTH[YEAR]).quantize(Decimal("0.01")),
            budget_adjustment=Decimal(adjustment),
            eligible=eligible,
        )
    return convention, base


def expected_unit_cost(base) -> Decimal:
    """The D5211-16 rule, worked out here on the cost base's figures: eligible lines (accounts
    of N-1 adjusted by the budget) over the reference units, to the cent, half up."""
    eligible = sum(
        (
            line.accounts_amount + line.budget_adjustment
            for line in base.lines.filter(eligible=True)
        ),
        Decimal(0),
    )
    return (eligible / base.reference_units).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def french_euros(amount: Decimal) -> str:
    """« 215 649,98 € » (ordinary spaces: the pages' and the PDF's are normalised to match)."""
    whole, cents = f"{amount:.2f}".split(".")
    return f"{int(whole):,}".replace(",", " ") + f",{cents} €"


def spaced(text: str) -> str:
    """The text with its no-break and narrow no-break spaces as plain spaces, runs collapsed."""
    return re.sub(r"[ \u00a0\u202f]+", " ", text)


def usage_file(reference: str, *, broken: bool) -> dict:
    """The year's usage as the finance officer's spreadsheet exports it (CSV for French Excel);
    ``broken``: Cébazat's July count typed with its unit, as a person does."""
    rows = [
        ["convention", "beneficiaire", "service", "mois", "quantite", "ponderation", "reference"]
    ]
    for insee, (_name, january, _july) in COUNTS.items():
        rows.append([reference, insee, SERVICE, f"{YEAR}-01", january, "", f"SI-{insee}-01"])
    for insee, (_name, _january, july) in COUNTS.items():
        quantity = f"{july} postes" if broken and insee == "63063" else july
        rows.append([reference, insee, SERVICE, f"{YEAR}-07", quantity, "", f"SI-{insee}-07"])
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(rows)
    return {
        "name": f"recours-si-{YEAR}.csv",
        "mimeType": "text/csv",
        "buffer": ("\ufeff" + out.getvalue()).encode(),
    }


def log_in(page, live_server):
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/connexion/"))
    assert_accessible(page, "connexion")
    page.get_by_label("Identifiant").fill("finances")
    page.get_by_label("Mot de passe").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server.url + "/")
    assert_accessible(page, "accueil")


def open_reimbursements(page, year=YEAR):
    """« Remboursements » in the menu (this year's), then the year."""
    page.get_by_role("navigation", name="Navigation principale").get_by_role(
        "link", name="Remboursements"
    ).click()
    expect(page).to_have_url(re.compile(r"/remboursements/\d{4}/$"))  # this year's
    if not page.url.endswith(f"/remboursements/{year}/"):
        exercices = page.get_by_role("navigation", name="Exercices")
        exercices.get_by_role("link", name=str(year)).click()
        expect(page).to_have_url(re.compile(rf"/remboursements/{year}/$"))
    assert_accessible(page, f"remboursements {year}")


def message(page):
    """The message the page shows after an action (Django's messages, or the import's)."""
    return page.get_by_role("status").first


def pdf_text_and_first_page(content: bytes, png_name: str) -> str:
    """The PDF's text (pdftotext, layout kept) and page 1 rendered as PNG for a person to look
    at (pypdfium2)."""
    document = pypdfium2.PdfDocument(content)
    try:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        document[0].render(scale=1.5).to_pil().save(SCREENSHOTS / png_name)
    finally:
        document.close()
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=content, capture_output=True, check=True
    ).stdout.decode()
    return spaced(text)


def test_a_finance_officer_computes_imports_prepares_issues_downloads_and_checks_the_year(
    live_server, page, flushable_statements
):
    # --- March 2026: compute the unit cost from the cost base and record its notification ---
    with time_machine.travel(UNIT_COST_DAY):
        convention, base = seed_year_start()
        unit_cost = expected_unit_cost(base)
        log_in(page, live_server)
        open_reimbursements(page)
        page.get_by_role("link", name="Coûts unitaires").click()
        expect(page).to_have_url(re.compile(r"/bases/2026/$"))
        assert_accessible(page, "bases de coûts 2026")
        page.get_by_role("link", name="Systèmes d'information").click()
        expect(page.locator("main")).to_contain_text("Pas encore calculé.")
        assert_accessible(page, "base de coûts SI 2026")
        page.get_by_role("button", name="Calculer le coût unitaire").click()
        expect(message(page)).to_have_text(
            f"Coût unitaire 2026 calculé : {french_euros(unit_cost)}."
        )
        assert_accessible(page, "coût unitaire calculé")
        page.get_by_label("Notifié aux bénéficiaires le").fill(UNIT_COST_DAY.date().isoformat())
        page.get_by_role("button", name="Enregistrer la notification").click()
        expect(message(page)).to_have_text("Date de notification enregistrée.")
        card = page.locator("section", has_text="Coût unitaire").first
        expect(card).to_contain_text("notifié, figé")
        expect(card).to_contain_text(
            "Date limite de notification : 30/04/2026 — notifié le 16/03/2026"
        )
        expect(card).not_to_contain_text("en retard")
        expect(page.get_by_role("button", name="Enregistrer la notification")).to_have_count(0)
        screenshot(page, "journey3-1-unit-cost-notified")
        assert_accessible(page, "coût unitaire notifié")
        page.get_by_role("button", name="Se déconnecter").click()
        expect(page).to_have_url(re.compile(r"/connexion/"))

    # --- January 2027: import the year's usage, then prepare the drafts ---
    with time_machine.travel(PREPARE_DAY):
        log_in(page, live_server)
        open_reimbursements(page)
        page.get_by_role("link", name="Importer des recours").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Importer l'état des recours")
        assert_accessible(page, "import des recours")
        page.get_by_label("Fichier CSV ou XLSX").set_input_files(
            usage_file(convention.reference, broken=True)
        )
        page.get_by_role("button", name="Vérifier le fichier").click()
        refused = page.get_by_role("alert")
        expect(refused.get_by_role("heading")).to_have_text("1 erreur : rien n'a été importé.")
        expect(refused.get_by_role("row").nth(1).get_by_role("cell")).to_have_text(
            [
                "7",  # the header is line 1; Cébazat's July count is the sixth row below it
                "quantite",
                "Quantité invalide « 71 postes » : un nombre est attendu (chiffres, virgule "
                "décimale, 999 999 999 au plus).",
            ]
        )
        screenshot(page, "journey3-2-import-refused")
        assert_accessible(page, "import refusé")
        assert not UsageRecord.objects.exists()  # all or nothing: not even the five good rows

        page.get_by_role("link", name="Déposer un fichier corrigé").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Importer l'état des recours")
        assert_accessible(page, "import des recours (second dépôt)")
        page.get_by_label("Fichier CSV ou XLSX").set_input_files(
            usage_file(convention.reference, broken=False)
        )
        page.get_by_role("button", name="Vérifier le fichier").click()
        expect(message(page)).to_have_text("6 lignes vérifiées, sans erreur.")
        assert_accessible(page, "import vérifié")
        page.get_by_role("button", name="Importer 6 lignes").click()
        expect(page.locator("#progression")).to_contain_text(
            "6 lignes importées le 11/01/2027 à 09:00."
        )
        screenshot(page, "journey3-3-import-done")
        assert_accessible(page, "import réussi")
        assert UsageRecord.objects.filter(convention=convention).count() == 6

        open_reimbursements(page)
        page.get_by_role("link", name="États annuels").click()
        expect(page).to_have_url(re.compile(r"/etats/2026/$"))
        assert_accessible(page, "états 2026")
        page.get_by_role("button", name="Calculer les projets").click()
        expect(message(page)).to_have_text("3 projets d'état calculés.")
        screenshot(page, "journey3-4-drafts")
        assert_accessible(page, "projets calculés")
        page.get_by_role("row", name=re.compile("Aubière")).get_by_role("link").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Projet d'état annuel")
        review = (
            "La commune peut formuler des remarques jusqu'au 26/01/2027 : l'état ne peut être "
            "émis qu'après cette date, à moins que le débiteur n'approuve le projet."
        )
        expect(page.locator("main")).to_contain_text(review)  # said before any click
        assert_accessible(page, "projet d'Aubière")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Émettre").click()
        expect(page.get_by_role("alert")).to_have_text(review)
        screenshot(page, "journey3-5-review-window")
        assert_accessible(page, "émission refusée pendant la relecture")
        # The whole year at once, still within the window: the batch exports the drafts and
        # says, where it says « Terminé », that it issued none of them (and below, why).
        page.get_by_role("link", name="États 2026").click()
        expect(page).to_have_url(re.compile(r"/etats/2026/$"))
        assert_accessible(page, "états 2026 pendant la relecture")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Émettre tous les projets puis exporter (ZIP)").click()
        expect(page.locator("#progression [aria-live]")).to_have_text(
            "Terminé — 3 états sur 3, aucun émis par ce lot", timeout=60_000
        )
        skipped = page.locator("#progression").get_by_role("status")
        expect(skipped).to_contain_text("Projets non émis :")
        for name in ("Aubière", "Beaumont", "Cébazat"):
            expect(skipped).to_contain_text(f"{convention.reference} — {name} : {review}")
        screenshot(page, "journey3-5b-batch-during-review")
        assert_accessible(page, "lot pendant la relecture")
        assert not Statement.objects.filter(status=StatementStatus.ISSUED).exists()
        page.get_by_role("button", name="Se déconnecter").click()
        expect(page).to_have_url(re.compile(r"/connexion/"))

    # --- the day after the review window: issue the year, download, check the dashboard ---
    with time_machine.travel(ISSUE_DAY):
        log_in(page, live_server)
        open_reimbursements(page)
        page.get_by_role("link", name="États annuels").click()
        expect(page).to_have_url(re.compile(r"/etats/2026/$"))
        assert_accessible(page, "états 2026 après la relecture")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Émettre tous les projets puis exporter (ZIP)").click()
        progress = page.locator("#progression [aria-live]")
        expect(progress).to_have_text(
            "Terminé — 3 états sur 3, dont 3 émis par ce lot", timeout=60_000
        )
        expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
        expect(page.locator("#progression").get_by_role("status")).to_have_count(0)  # none left
        screenshot(page, "journey3-6-batch-done")
        assert_accessible(page, "lot terminé")
        with page.expect_download() as zip_download:
            page.get_by_role("link", name="Télécharger l'archive ZIP").click()
        archive = zipfile.ZipFile(zip_download.value.path())

        issued = list(
            Statement.objects.filter(year=YEAR, status=StatementStatus.ISSUED)
            .select_related("payer")
            .order_by("number")
        )
        assert [s.number for s in issued] == ["EA-2026-0001", "EA-2026-0002", "EA-2026-0003"]
        assert not Statement.objects.filter(status=StatementStatus.DRAFT).exists()
        assert sorted(archive.namelist()) == sorted(
            [f"{s.number}.pdf" for s in issued] + ["recapitulatif-2026.pdf", "lignes-2026.csv"]
        )
        for statement in issued:  # the very bytes issued
            assert archive.read(f"{statement.number}.pdf") == bytes(statement.pdf)
        assert archive.read("recapitulatif-2026.pdf").startswith(b"%PDF")
        lines = list(
            csv.DictReader(io.StringIO(archive.read("lignes-2026.csv").decode("utf-8-sig")))
        )
        by_commune = {s.payer.name: s for s in issued}
        assert sorted((line["numero_etat"], line["debiteur"]) for line in lines) == sorted(
            (s.number, s.payer.name) for s in issued
        )  # one line per statement: one service, one yearly period
        for _insee, (name, january, july) in COUNTS.items():
            units = Decimal(january) + Decimal(july)
            assert by_commune[name].total == (units * unit_cost).quantize(Decimal("0.01"))

        # One statement, from its page, as the commune will receive it.
        page.get_by_role("link", name="États 2026").click()
        expect(page).to_have_url(re.compile(r"/etats/2026/$"))
        assert_accessible(page, "états 2026 émis")
        aubiere = by_commune["Aubière"]
        page.get_by_role("row", name=re.compile("Aubière")).get_by_role(
            "link", name=aubiere.number
        ).click()
        expect(page.get_by_role("heading", level=1)).to_contain_text(aubiere.number)
        assert_accessible(page, "état émis d'Aubière")
        screenshot(page, "journey3-7-statement-issued")
        href = page.get_by_role("link", name="PDF", exact=True).get_attribute("href")
        response = page.request.get(live_server.url + href)
        assert response.ok
        assert response.headers["content-type"] == "application/pdf"
        assert response.body() == bytes(aubiere.pdf)
        text = pdf_text_and_first_page(response.body(), "journey3-8-statement-pdf.png")
        assert "Débiteur Aubière — SIREN 216300145" in text
        assert f"{aubiere.number}, émis le 27 janvier 2027" in text
        assert f"Total de l'exercice {french_euros(aubiere.total)}" in text
        assert french_euros(unit_cost) in text

        # The dashboard: its total is what the year's statements issued.
        open_reimbursements(page)
        page.get_by_role("link", name="Tableau de bord").click()
        expect(page).to_have_url(re.compile(r"/tableau-de-bord/2026/$"))
        assert_accessible(page, "tableau de bord 2026")
        issued_sum = sum((Decimal(line["montant"]) for line in lines), Decimal(0))
        assert issued_sum == sum((s.total for s in issued), Decimal(0))
        expect(page.locator("[data-dashboard-total]")).to_have_text(french_euros(issued_sum))
        screenshot(page, "journey3-9-dashboard")
