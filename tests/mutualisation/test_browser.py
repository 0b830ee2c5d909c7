"""The foundation as a person uses it, in a real Chromium: log in with the keyboard, read the
territory, log out."""

import pytest

from tests.conftest import screenshot, seed_territory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_demo_user_logs_in_with_the_keyboard_and_reads_the_territory(live_server, page):
    seed_territory()
    page.goto(live_server.url + "/")
    assert page.url.startswith(live_server.url + "/connexion/?next=/")
    assert page.locator("html").get_attribute("lang") == "fr"
    screenshot(page, "login")

    page.get_by_label("Identifiant").fill("lecteur.aubiere")
    page.get_by_label("Mot de passe").fill("demo-mutualis-2026")
    page.get_by_label("Mot de passe").press("Enter")
    page.wait_for_url(live_server.url + "/")

    assert page.get_by_role("heading", level=1).inner_text() == "Clermont Auvergne Métropole"
    communes = page.get_by_role("table").first.locator("tbody tr")
    assert communes.count() == 21
    # Latest millésime first: 2023, then 2022.
    assert page.locator("[data-total-municipal]").first.inner_text() == "295\xa0488"
    assert page.locator("[data-total-municipal]").nth(1).inner_text() == "296\xa0677"
    screenshot(page, "home")

    # From the top of the page, the first Tab reaches the skip link, visible when focused,
    # and following it puts the focus on the main content.
    page.keyboard.press("Tab")
    skip_link = page.get_by_role("link", name="Aller au contenu")
    assert skip_link.evaluate("el => el === document.activeElement")
    assert skip_link.is_visible()
    screenshot(page, "home-skip-link")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "contenu"

    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url(live_server.url + "/connexion/")


def test_wrong_password_is_explained_and_keeps_the_username(live_server, page):
    seed_territory()
    page.goto(live_server.url + "/connexion/")
    page.get_by_label("Identifiant").fill("finances")
    page.get_by_label("Mot de passe").fill("mauvais")
    page.get_by_role("button", name="Se connecter").click()
    assert page.get_by_role("alert").inner_text().startswith("Saisissez un nom d’utilisateur")
    assert page.get_by_label("Identifiant").input_value() == "finances"
    screenshot(page, "login-error")
