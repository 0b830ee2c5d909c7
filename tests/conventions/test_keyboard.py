"""A manager who uses no mouse: logs in, reaches the convention form, submits it incomplete, is
taken to the errors, follows one to its field and corrects it — keyboard only, focus always
visible, each error announced and tied to its field (RGAA 7, 10.7, 11.10)."""

import re
import time

import pytest

from conventions.models import Convention
from tests.conftest import assert_accessible, screenshot, seed_territory
from tests.factories import ServiceFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "demo-mutualis-2026"

ACTIVE = """() => {
  const el = document.activeElement;
  const label = el.labels && el.labels.length ? el.labels[0].innerText : "";
  return (el.getAttribute("aria-label") || label || el.innerText || el.value || "").trim();
}"""
FOCUS_VISIBLE = """() => {
  const style = getComputedStyle(document.activeElement);
  return style.outlineStyle !== "none" && style.outlineWidth !== "0px"
      || style.boxShadow !== "none";
}"""


def wait_for_focus(page, element_id, timeout=5.0):
    """Until the element of ``element_id`` has the focus (polled: the pages' CSP forbids the
    string evaluation wait_for_function relies on)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate("() => document.activeElement && document.activeElement.id") == element_id:
            return
        page.wait_for_timeout(50)
    pytest.fail(f"le focus n'est pas sur #{element_id}")


def tab_to(page, name, limit=80):
    """Press Tab until the focused element's name starts with ``name`` (no mouse)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(ACTIVE).startswith(name):
            assert page.evaluate(FOCUS_VISIBLE), f"focus invisible on « {name} »"
            return
    pytest.fail(f"« {name} » jamais atteint au clavier")


def test_a_manager_fills_the_convention_form_with_the_keyboard_only(live_server, page):
    seed_territory()
    ServiceFactory(provider=Convention._meta.get_field("territory").related_model.objects.get(
        name="Clermont Auvergne Métropole"), name="Archives numériques")  # fmt: skip
    clicks = []
    page.expose_function("recordClick", lambda: clicks.append(1))
    page.add_init_script("document.addEventListener('mousedown', () => window.recordClick(), true)")
    page.goto(live_server.url + "/connexion/")
    tab_to(page, "Identifiant")
    page.keyboard.type("gestionnaire")
    tab_to(page, "Mot de passe")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/")

    tab_to(page, "Conventions")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/conventions/")
    tab_to(page, "Nouvelle convention")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server.url + "/conventions/nouvelle/")

    # Submitted empty: the page comes back with the focus on the list of errors.
    tab_to(page, "Enregistrer")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    wait_for_focus(page, "erreurs")
    summary = page.locator("#erreurs")
    assert summary.get_attribute("role") == "alert"
    assert re.search("Intitulé : Ce champ est obligatoire", summary.inner_text())
    screenshot(page, "keyboard-errors")
    assert_accessible(page, "formulaire en erreur")

    # Each error leads to its field, which names the error as its description.
    tab_to(page, "Intitulé")
    page.keyboard.press("Enter")
    wait_for_focus(page, "id_title")
    title = page.locator("#id_title")
    assert title.get_attribute("aria-invalid") == "true"
    described = title.get_attribute("aria-describedby").split()
    descriptions = " ".join(page.locator(f"#{name}").inner_text() for name in described)
    assert "Ce champ est obligatoire" in descriptions
    page.keyboard.type("Archives numériques mutualisées")
    assert title.input_value() == "Archives numériques mutualisées"
    assert clicks == []  # not one mouse event
