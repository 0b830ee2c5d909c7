"""Journey 4 (issue 12): a commune's reader, in the demo territory, sees its own conventions,
statements and cost bases and nothing of another commune's, leaves a remark on its draft
statement, and meets the French « page introuvable » on another commune's statement and
convention."""

import re

import pytest

from conventions.models import Convention
from costing import statements
from costing.models import CostBase, Statement, StatementRemark
from tests.conftest import (
    assert_accessible,
    browser_log_in,
    follow,
    run_seed_demo,
    screenshot,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PASSWORD = "demo-mutualis-2026"
# The demo conventions Aubière is a party to, and some it is not.
AUBIERE_CONVENTIONS = [
    "Mise à disposition du service systèmes d'information",
    "Service commun d'instruction des autorisations du droit des sols",
]
AUBIERE_SERVICES = [
    "Instruction des autorisations du droit des sols (ADS)",
    "Systèmes d'information",
]
OTHER_SERVICES = [
    "Entretien de la voirie d'intérêt métropolitain",
    "Maintenance du patrimoine bâti",
    "Gestion de la paie",
]
OTHER_CONVENTIONS = [
    "Mise à disposition du service d'entretien de la voirie métropolitaine",
    "Mise à disposition du service de la paie",
    "Service commun des archives",
]


def nav(page, name):
    return page.get_by_role("navigation").get_by_role("link", name=name, exact=True)


def test_a_commune_reader_sees_only_its_commune_and_remarks_on_its_draft(live_server, page):
    run_seed_demo()
    drafts = statements.statements_prepare(2025)
    own = next(s for s in drafts if s.payer.name == "Aubière")
    other = next(s for s in drafts if s.payer.name == "Aulnat")
    voirie = Convention.objects.get(title=OTHER_CONVENTIONS[0])
    # What the reader must not see exists: the lists below would hide nothing otherwise.
    assert Convention.objects.filter(title__in=OTHER_CONVENTIONS).count() == 3
    assert CostBase.objects.filter(year=2026, service__name__in=OTHER_SERVICES).count() == 3

    browser_log_in(page, live_server, "lecteur.aubiere", PASSWORD)
    assert_accessible(page, "accueil du lecteur")

    follow(page, nav(page, "Conventions"), "conventions du lecteur")
    assert page.url == live_server.url + "/conventions/"
    listing = page.inner_text("main")
    for title in AUBIERE_CONVENTIONS:
        assert title in listing
    for title in OTHER_CONVENTIONS:
        assert title not in listing
    screenshot(page, "journey4-conventions")

    follow(page, nav(page, "Remboursements"), "remboursements du lecteur")
    follow(page, page.get_by_role("link", name="États annuels"), "états de l'année en cours")
    follow(page, page.get_by_role("link", name="2025", exact=True), "états 2025 du lecteur")
    assert page.url == live_server.url + "/couts/etats/2025/"
    table = page.get_by_role("region", name="États de l'exercice").inner_text()
    assert "Aubière" in table
    for commune in ("Aulnat", "Blanzat", "Clermont-Ferrand"):
        assert commune not in table
    screenshot(page, "journey4-statements")

    follow(page, nav(page, "Remboursements"), "remboursements du lecteur")
    follow(page, page.get_by_role("link", name="Coûts unitaires"), "coûts de l'année en cours")
    follow(page, page.get_by_role("link", name="2026", exact=True), "bases de coûts 2026")
    assert page.url == live_server.url + "/couts/bases/2026/"
    bases = page.inner_text("main")
    for service in AUBIERE_SERVICES:
        assert service in bases
    for service in OTHER_SERVICES:
        assert service not in bases
    screenshot(page, "journey4-cost-bases")

    follow(page, nav(page, "Remboursements"), "remboursements du lecteur")
    follow(page, page.get_by_role("link", name="États annuels"), "états de l'année en cours")
    follow(page, page.get_by_role("link", name="2025", exact=True), "états 2025 du lecteur")
    draft_link = page.get_by_role("row", name=re.compile("Aubière")).get_by_role("link")
    follow(page, draft_link, "projet d'état du lecteur")
    assert page.url == live_server.url + f"/couts/etat/{own.pk}/"
    assert "CONV-2025-002 — Aubière → Clermont Auvergne Métropole" in page.inner_text("main")
    assert "Aucune remarque." in page.inner_text("main")
    remark = "Le nombre d'actes instruits en 2025 nous paraît supérieur à notre décompte."
    page.get_by_label("Votre remarque").fill(remark)
    with page.expect_navigation():
        page.get_by_role("button", name="Envoyer la remarque").click()
    assert "Remarque transmise aux services de" in page.get_by_role("status").first.inner_text()
    listed = page.locator("li", has_text=remark)
    assert listed.get_by_text("Ouverte", exact=True).is_visible()
    assert "Sacha Petit" in listed.inner_text()
    assert "Aucune remarque." not in page.inner_text("main")
    screenshot(page, "journey4-remark-open")
    assert_accessible(page, "remarque ouverte du lecteur")
    [saved] = StatementRemark.objects.filter(statement=own)
    assert (saved.text, saved.author.username, saved.is_resolved) == (
        remark,
        "lecteur.aubiere",
        False,
    )

    # Another commune's statement, and a convention Aubière is no party to, by their addresses.
    for path, name in (
        (f"/couts/etat/{other.pk}/", "journey4-404-statement"),
        (f"/conventions/{voirie.reference}/", "journey4-404-convention"),
    ):
        response = page.goto(live_server.url + path)
        assert response.status == 404
        assert page.title().startswith("Page introuvable")
        assert page.get_by_role("heading", level=1).inner_text() == "Page introuvable"
        assert "Cette page n'existe pas, ou elle ne vous est pas accessible." in page.inner_text(
            "main"
        )
        # In the site's layout: its navigation, the person still signed in, the way home.
        assert page.get_by_role("navigation").get_by_role("link", name="Conventions").is_visible()
        assert page.get_by_role("button", name="Se déconnecter").is_visible()
        assert page.get_by_role("link", name="Retour à l'accueil").is_visible()
        assert page.locator("html").get_attribute("lang") == "fr"
        for leaked in ("Aulnat", voirie.title, "Not Found"):
            assert leaked not in page.content()
        screenshot(page, name)
        assert_accessible(page, name)
    assert Statement.objects.get(pk=other.pk).remarks.count() == 0
