"""Accessibility kept (RGAA, WCAG 2.1 A/AA): axe-core finds no serious or critical violation on
the pages each role works with, error pages included, in a real Chromium. Costing's world
(a billed convention, its drafts) gives every page something to show."""

import re

import pytest
from django.test import RequestFactory
from django.views.defaults import server_error

from conventions.models import Convention
from costing import statements
from costing.models import Statement
from tests.conftest import axe_violations, browser_log_in, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def sweep(page, live_server, paths) -> list[str]:
    """Every path's serious and critical violations, all pages visited before failing."""
    found = []
    for path in paths:
        page.goto(live_server.url + path)
        found += [f"{path}: {violation}" for violation in axe_violations(page)]
    return found


def test_every_page_of_the_managers_and_finance_work_has_no_serious_axe_violation(
    live_server, page, billed, personas, flushable_statements
):
    statements.statements_prepare(2026, Convention.objects.all())
    draft = Statement.objects.filter(payer=billed.territory.commune_a).get()
    reference = billed.convention.reference
    found = []
    browser_log_in(page, live_server, "gestionnaire")
    found += sweep(
        page,
        live_server,
        [
            "/",
            "/conventions/",
            "/conventions/nouvelle/",
            f"/conventions/{reference}/",
            f"/conventions/{reference}/modifier/",
            f"/conventions/{reference}/avenants/nouveau/",
        ],
    )
    page.get_by_role("button", name="Se déconnecter").click()
    browser_log_in(page, live_server, "finances")
    found += sweep(
        page,
        live_server,
        [
            "/couts/tableau-de-bord/2026/",
            "/couts/remboursements/2026/",
            "/couts/etats/2026/",
            f"/couts/etat/{draft.pk}/",
            "/couts/bases/2026/",
            "/couts/bases/nouvelle/",
            "/couts/recours/2026/",
            "/couts/recours/import/",
            f"/couts/recours/{reference}/2026/",
            f"/couts/recours/{reference}/{billed.service.code}/2026/",
            f"/couts/simulation/{reference}/",
            "/couts/acomptes/2026/",
        ],
    )
    screenshot(page, "axe-finance-last")
    assert not found, "\n".join(found)


def test_a_commune_readers_pages_and_the_error_pages_have_no_serious_axe_violation(
    live_server, page, billed, personas, flushable_statements
):
    statements.statements_prepare(2026, Convention.objects.all())
    draft = Statement.objects.filter(payer=billed.territory.commune_a).get()
    other = Statement.objects.filter(payer=billed.territory.commune_b).get()
    browser_log_in(page, live_server, "lecteur.a")
    found = sweep(
        page,
        live_server,
        ["/", "/conventions/", f"/conventions/{billed.convention.reference}/",
         f"/couts/etat/{draft.pk}/"],
    )  # fmt: skip
    # Another commune's statement: the French 404 page, in the site's layout.
    response = page.goto(f"{live_server.url}/couts/etat/{other.pk}/")
    assert response.status == 404
    assert page.locator("html").get_attribute("lang") == "fr"
    found += [f"404: {violation}" for violation in axe_violations(page)]
    screenshot(page, "axe-404")
    # A page its role may not open: the French 403 page.
    response = page.goto(f"{live_server.url}/couts/bases/nouvelle/")
    assert response.status == 403
    found += [f"403: {violation}" for violation in axe_violations(page)]
    page.get_by_role("button", name="Se déconnecter").click()
    # The déclaration d'accessibilité, public, from the login page's footer.
    page.get_by_role("link", name="Accessibilité : non conforme").click()
    page.wait_for_url(live_server.url + "/accessibilite/")
    found += [f"déclaration: {violation}" for violation in axe_violations(page)]
    screenshot(page, "accessibility-statement")
    # The 500 page as Django's handler renders it, shown at the site's address (its styles
    # load from there): no request can make the application fail on purpose.
    html = server_error(RequestFactory().get("/")).content.decode()
    page.goto(live_server.url + "/connexion/")
    page.set_content(html)
    assert re.search("erreur", page.get_by_role("heading", level=1).inner_text(), re.I)
    found += [f"500: {violation}" for violation in axe_violations(page)]
    screenshot(page, "axe-500")
    assert not found, "\n".join(found)


def test_at_390_pixels_the_menu_collapses_and_no_main_page_scrolls_sideways(
    live_server, browser, billed, personas, flushable_statements
):
    statements.statements_prepare(2026, Convention.objects.all())
    draft = Statement.objects.filter(payer=billed.territory.commune_a).get()
    reference = billed.convention.reference
    context = browser.new_context(locale="fr-FR", viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        browser_log_in(page, live_server, "finances")
        # The menu is folded behind one button, opened and closed with the keyboard.
        menu = page.get_by_role("button", name="Menu")
        link = page.get_by_role("navigation", name="Navigation principale").get_by_role(
            "link", name="Conventions"
        )
        assert menu.get_attribute("aria-expanded") == "false"
        assert not link.is_visible()
        menu.focus()
        page.keyboard.press("Enter")
        link.wait_for(state="visible")
        page.locator("#menu-principal.show:not(.collapsing)").wait_for()
        assert menu.get_attribute("aria-expanded") == "true"
        screenshot(page, "mobile-menu-open")
        sideways = []
        for path in [
            "/",
            "/conventions/",
            f"/conventions/{reference}/",
            "/couts/tableau-de-bord/2026/",
            "/couts/remboursements/2026/",
            "/couts/etats/2026/",
            f"/couts/etat/{draft.pk}/",
            f"/couts/recours/{reference}/2026/",
        ]:
            page.goto(live_server.url + path)
            page.wait_for_load_state("load")
            wide = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if wide > 0:
                sideways.append(f"{path}: {wide} px")
        screenshot(page, "mobile-usage-state")
        assert not sideways, sideways
    finally:
        context.close()
