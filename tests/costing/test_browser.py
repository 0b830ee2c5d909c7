"""Finance issues a statement and exports the year in a real Chromium; the commune downloads
exactly the bytes that were issued."""

import hashlib
import re

import pytest

from costing.forms import UsageGridForm
from costing.models import Statement, StatementStatus
from tests.conftest import assert_accessible, browser_log_in, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_finance_issues_a_statement_and_the_commune_downloads_it(
    live_server, page, billed, personas, flushable_statements
):
    browser_log_in(page, live_server, "finances")
    page.get_by_role("link", name="Remboursements").click()
    page.goto(live_server.url + "/couts/etats/2026/")
    page.get_by_role("button", name="Calculer les projets").click()
    assert "2 projets d'état calculés" in page.get_by_role("status").first.inner_text()
    with page.expect_navigation():
        page.get_by_role("row", name=re.compile("Commune A")).get_by_role("link").click()
    draft_url = page.url
    screenshot(page, "statement-draft")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Émettre").click()
    # The commune may still remark: refused, and the page says why.
    assert (
        "La commune peut formuler des remarques jusqu'au"
        in page.get_by_role("alert").first.inner_text()
    )

    page.get_by_role("button", name="Se déconnecter").click()
    browser_log_in(page, live_server, "lecteur.a")
    page.goto(draft_url)
    page.get_by_role("button", name="Approuver le projet").click()
    assert "Projet approuvé" in page.get_by_role("status").first.inner_text()
    screenshot(page, "statement-approved")
    page.get_by_role("button", name="Se déconnecter").click()
    browser_log_in(page, live_server, "finances")
    page.goto(draft_url)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Émettre").click()
    assert "État émis sous le numéro EA-2026-0001" in page.get_by_role("status").first.inner_text()
    screenshot(page, "statement-issued")

    page.goto(live_server.url + "/couts/etats/2026/")
    page.get_by_role("button", name="Exporter tous les états (ZIP)").click()
    page.get_by_role("link", name="Télécharger l'archive ZIP").wait_for(timeout=60_000)
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    screenshot(page, "statement-batch")

    issued = Statement.objects.get(number="EA-2026-0001")
    page.get_by_role("button", name="Se déconnecter").click()
    browser_log_in(page, live_server, "lecteur.a")
    response = page.request.get(live_server.url + f"/couts/etat/{issued.pk}/pdf/")
    assert response.ok
    assert hashlib.sha256(response.body()).hexdigest() == issued.pdf_sha256
    other = Statement.objects.get(year=2026, status=StatementStatus.DRAFT, payer__name="Commune B")
    assert page.goto(live_server.url + f"/couts/etat/{other.pk}/").status == 404


def test_the_usage_grid_says_why_a_cell_is_refused_and_totals_the_year(
    live_server, page, billed, personas
):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    browser_log_in(page, live_server, "finances")
    page.goto(
        live_server.url
        + f"/couts/recours/{billed.convention.reference}/{billed.service.code}/2026/"
    )
    total = page.locator("#total-general")
    assert total.inner_text() == "49,5"  # 20 + 17 imported for A, 12,5 for B
    page.get_by_label("Commune A — mai 2026").fill("3,5")
    page.get_by_label("Commune B — juin 2026").fill("-2")
    page.get_by_role("button", name="Enregistrer la grille").click()

    summary = page.get_by_role("alert")
    assert "1 case refusée" in summary.inner_text()
    assert summary.evaluate("element => element === document.activeElement")
    refused = page.get_by_label("Commune B — juin 2026")
    assert refused.get_attribute("aria-invalid") == "true"
    reason = page.locator(f"#{refused.get_attribute('aria-describedby')}")
    assert reason.is_visible()
    assert reason.inner_text().startswith("Quantité négative : saisissez 0 ou plus")
    assert page.get_by_label("Commune A — mai 2026").input_value() == "3,5"
    screenshot(page, "usage-grid-refused")
    assert_accessible(page, "grille des recours refusée")

    summary.get_by_role("link").click()
    assert refused.evaluate("element => element === document.activeElement")
    refused.fill("")
    page.get_by_role("button", name="Enregistrer la grille").click()
    assert "1 case enregistrée." in page.get_by_role("status").first.inner_text()
    assert page.get_by_label("Commune A — mai 2026").input_value() == "3,5"
    assert page.locator(f"#total-ligne-{a.pk}").inner_text() == "40,5"
    assert page.locator(f"#total-ligne-{b.pk}").inner_text() == "12,5"
    assert total.inner_text() == "53"
    screenshot(page, "usage-grid-saved")
    assert_accessible(page, "grille des recours")
    assert UsageGridForm.key(a.pk, 5) in page.content()
