"""Journey 5 (issue 12): two people edit the same record at once, each in their own browser.
The first save wins; the second is refused with the conflict message, keeps what was typed,
and the database keeps the first save (optimistic locking on ``version``): first on a
convention, then on a cost base."""

import pytest

from conventions.models import Convention
from costing.models import CostBase
from tests.conftest import assert_accessible, browser_log_in, follow, screenshot
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


def nav(page, name):
    return page.get_by_role("navigation").get_by_role("link", name=name, exact=True)


def save(page):
    return page.get_by_role("button", name="Enregistrer", exact=True)


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
            follow(page, nav(page, "Conventions"), "liste des conventions")
            reference = page.get_by_role("link", name=convention.reference, exact=True)
            follow(page, reference, "convention")
            follow(page, page.get_by_role("link", name="Modifier", exact=True), "modification")
            assert page.url == live_server.url + f"/conventions/{convention.reference}/modifier/"
            assert page.get_by_label("Intitulé").input_value() == convention.title

        first.get_by_label("Intitulé").fill("MAD descendante SI — première version")
        follow(first, save(first), "convention enregistrée")
        assert first.url == live_server.url + f"/conventions/{convention.reference}/"
        assert "Convention enregistrée." in first.get_by_role("status").first.inner_text()
        assert (
            first.get_by_role("heading", level=1)
            .inner_text()
            .startswith("MAD descendante SI — première version")
        )

        typed_title = "MAD descendante SI — seconde version"
        typed_object = "Objet retapé par la seconde personne, à ne pas perdre."
        second.get_by_label("Intitulé").fill(typed_title)
        second.locator("#id_object").fill(typed_object)
        follow(second, save(second), "conflit sur la convention")
        assert second.url == live_server.url + f"/conventions/{convention.reference}/modifier/"
        message = second.get_by_role("alert").inner_text()
        assert "Cette convention a été modifiée par gestionnaire" in message
        assert "Rien n'a été enregistré ; vos saisies sont conservées ci-dessous." in message
        assert second.get_by_label("Intitulé").input_value() == typed_title
        assert second.locator("#id_object").input_value() == typed_object
        screenshot(second, "journey5-convention-conflict")
        kept = Convention.objects.get(pk=convention.pk)
        assert kept.title == "MAD descendante SI — première version"
        assert kept.object == convention.object

        # As the message says: look at the latest version in another tab, then save again.
        other_tab = second.context.new_page()
        other_tab.goto(live_server.url + f"/conventions/{convention.reference}/")
        # What changed meanwhile, and who changed it, in the convention's history.
        assert "intitulé : MAD descendante SI → MAD descendante SI — première version" in (
            other_tab.inner_text("main")
        )
        assert (
            other_tab.get_by_role("heading", level=1)
            .inner_text()
            .startswith("MAD descendante SI — première version")
        )
        assert_accessible(other_tab, "la convention vue dans un autre onglet")
        other_tab.close()
        follow(second, save(second), "convention enregistrée à nouveau")
        assert "Convention enregistrée." in second.inner_text("main")
        assert second.url == live_server.url + f"/conventions/{convention.reference}/"
        saved = Convention.objects.get(pk=convention.pk)
        assert (saved.title, saved.object) == (typed_title, typed_object)

        # The same with a cost base: two finance officers open its edit form.
        for page in (first, second):
            follow(page, page.get_by_role("button", name="Se déconnecter"), "déconnexion")
            browser_log_in(page, live_server, "finances")
            follow(page, nav(page, "Remboursements"), "remboursements")
            follow(page, page.get_by_role("link", name="Coûts unitaires"), "coûts unitaires")
            follow(page, page.get_by_role("link", name="2026", exact=True), "bases de 2026")
            service = page.get_by_role("link", name=base.service.name, exact=True)
            follow(page, service, "base de coûts")
            follow(page, page.get_by_role("link", name="Modifier la base"), "modification")
            assert page.url == live_server.url + f"/couts/base/{base.pk}/modifier/"

        first.get_by_label("Observations").fill("Actualisée au budget primitif voté.")
        follow(first, save(first), "base de coûts enregistrée")
        assert first.url == live_server.url + f"/couts/base/{base.pk}/"
        assert "Base de coûts enregistrée." in first.get_by_role("status").first.inner_text()

        typed_notes = "Remarque de la seconde personne, à ne pas perdre."
        second.get_by_label("Observations").fill(typed_notes)
        follow(second, save(second), "conflit sur la base de coûts")
        message = second.get_by_role("alert").inner_text()
        assert "Cette base de coûts a été modifiée par finances" in message
        assert "Rien n'a été enregistré ; vos saisies sont conservées ci-dessous." in message
        assert second.get_by_label("Observations").input_value() == typed_notes
        screenshot(second, "journey5-cost-base-conflict")
        assert CostBase.objects.get(pk=base.pk).notes == "Actualisée au budget primitif voté."

        follow(second, save(second), "base de coûts enregistrée à nouveau")
        assert "Base de coûts enregistrée." in second.inner_text("main")
        assert second.url == live_server.url + f"/couts/base/{base.pk}/"
        assert CostBase.objects.get(pk=base.pk).notes == typed_notes
    finally:
        first.context.close()
        second.context.close()
