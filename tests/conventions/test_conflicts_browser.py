"""Journey 5 (issue 12): two people edit the same record at once, each in their own browser.
The first save wins; the second is refused with the conflict message, keeps what was typed,
and the database keeps the first save (optimistic locking on ``version``): first on a
convention, then on a cost base."""

import re

import pytest

from conventions.models import Convention
from costing.models import CostBase
from tests.conftest import assert_accessible, browser_log_in, screenshot
from tests.costing.conftest import cost_base

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def person(browser, live_server, username):
    """A page in a browser context of its own (its own cookies: its own session), logged in
    through the login page."""
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    browser_log_in(page, live_server, username)
    return page


def test_the_second_of_two_simultaneous_edits_is_refused_with_its_input_kept(
    live_server, browser, personas, mad_descendante
):
    convention = mad_descendante.convention
    base = cost_base(mad_descendante.service)
    first = person(browser, live_server, "gestionnaire")
    second = person(browser, live_server, "gestionnaire")
    try:
        # Both managers open the edit form of the same draft convention.
        for page in (first, second):
            page.get_by_role("link", name="Conventions", exact=True).first.click()
            page.get_by_role("link", name=convention.reference, exact=True).click()
            page.get_by_role("link", name="Modifier", exact=True).click()
            page.wait_for_url(re.compile(r"/modifier/$"))
            assert page.get_by_label("Intitulé").input_value() == convention.title
        assert_accessible(first, "modification de la convention")

        first.get_by_label("Intitulé").fill("MAD descendante SI — première version")
        first.get_by_role("button", name="Enregistrer", exact=True).click()
        first.wait_for_url(live_server.url + f"/conventions/{convention.reference}/")
        assert "Convention enregistrée." in first.get_by_role("status").first.inner_text()
        assert (
            first.get_by_role("heading", level=1)
            .inner_text()
            .startswith("MAD descendante SI — première version")
        )
        assert_accessible(first, "convention enregistrée")

        typed_title = "MAD descendante SI — seconde version"
        typed_object = "Objet retapé par la seconde personne, à ne pas perdre."
        second.get_by_label("Intitulé").fill(typed_title)
        second.locator("#id_object").fill(typed_object)
        second.get_by_role("button", name="Enregistrer", exact=True).click()
        alert = second.get_by_role("alert")
        alert.wait_for()
        message = alert.inner_text()
        assert "Cette convention a été modifiée par gestionnaire" in message
        assert "Rien n'a été enregistré ; vos saisies sont conservées ci-dessous." in message
        assert second.get_by_label("Intitulé").input_value() == typed_title
        assert second.locator("#id_object").input_value() == typed_object
        screenshot(second, "journey5-convention-conflict")
        assert_accessible(second, "conflit sur la convention")
        kept = Convention.objects.get(pk=convention.pk)
        assert kept.title == "MAD descendante SI — première version"
        assert kept.object == convention.object

        # As the message says: look at the latest version in another tab, then save again.
        other_tab = second.context.new_page()
        other_tab.goto(live_server.url + f"/conventions/{convention.reference}/")
        assert (
            other_tab.get_by_role("heading", level=1)
            .inner_text()
            .startswith("MAD descendante SI — première version")
        )
        assert_accessible(other_tab, "la convention vue dans un autre onglet")
        other_tab.close()
        with second.expect_navigation():
            second.get_by_role("button", name="Enregistrer", exact=True).click()
        assert "Convention enregistrée." in second.inner_text("main")
        assert second.url == live_server.url + f"/conventions/{convention.reference}/"
        saved = Convention.objects.get(pk=convention.pk)
        assert (saved.title, saved.object) == (typed_title, typed_object)

        # The same with a cost base: two finance officers open its edit form.
        for page in (first, second):
            page.get_by_role("button", name="Se déconnecter").click()
            browser_log_in(page, live_server, "finances")
            page.goto(live_server.url + "/couts/bases/2026/")
            assert_accessible(page, "bases de coûts")
            page.get_by_role("link", name=re.compile(re.escape(base.service.name))).first.click()
            page.get_by_role("link", name="Modifier la base").click()
            page.wait_for_url(re.compile(r"/modifier/$"))
        assert_accessible(first, "modification de la base de coûts")

        first.get_by_label("Observations").fill("Actualisée au budget primitif voté.")
        first.get_by_role("button", name="Enregistrer", exact=True).click()
        first.wait_for_url(live_server.url + f"/couts/base/{base.pk}/")
        assert "Base de coûts enregistrée." in first.get_by_role("status").first.inner_text()

        typed_notes = "Remarque de la seconde personne, à ne pas perdre."
        second.get_by_label("Observations").fill(typed_notes)
        second.get_by_role("button", name="Enregistrer", exact=True).click()
        alert = second.get_by_role("alert")
        alert.wait_for()
        message = alert.inner_text()
        assert "Cette base de coûts a été modifiée par finances" in message
        assert "Rien n'a été enregistré ; vos saisies sont conservées ci-dessous." in message
        assert second.get_by_label("Observations").input_value() == typed_notes
        screenshot(second, "journey5-cost-base-conflict")
        assert_accessible(second, "conflit sur la base de coûts")
        assert CostBase.objects.get(pk=base.pk).notes == "Actualisée au budget primitif voté."

        with second.expect_navigation():
            second.get_by_role("button", name="Enregistrer", exact=True).click()
        assert "Base de coûts enregistrée." in second.inner_text("main")
        assert second.url == live_server.url + f"/couts/base/{base.pk}/"
        assert CostBase.objects.get(pk=base.pk).notes == typed_notes
    finally:
        first.context.close()
        second.context.close()
