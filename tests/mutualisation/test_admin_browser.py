"""Journey 6 (issue 12): the administrator corrects a commune's legal population in the Django
admin, on the commune's page, and finds the change in the commune's history
(django-simple-history): who made it, and the old and new values."""

import re

import pytest

from mutualisation.models import PopulationRecord
from tests.conftest import assert_accessible, follow, screenshot, seed_territory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PASSWORD = "demo-mutualis-2026"


def test_the_administrator_corrects_a_population_and_reads_the_change_in_its_history(
    live_server, page
):
    seed_territory()
    record = PopulationRecord.objects.filter(organisation__name="Aubière").latest("vintage")
    before, after = record.municipal, record.municipal + 123

    page.goto(live_server.url + "/admin/")
    page.wait_for_url(re.compile(r"/admin/login/\?next=/admin/$"))
    assert page.locator("#site-name").inner_text() == "Mutualis — administration"
    assert_accessible(page, "connexion à l'administration")
    page.get_by_label(re.compile("Nom d.utilisateur")).fill("admin")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    follow(page, page.get_by_role("button", name="Connexion"), "accueil de l'administration")
    assert page.url == live_server.url + "/admin/"
    assert page.get_by_role("heading", name="Référentiels, conventions et coûts").is_visible()

    organisations = page.locator("#content-main").get_by_role("link", name="Organisations")
    follow(page, organisations, "liste des organisations")
    assert page.url == live_server.url + "/admin/mutualisation/organisation/"
    aubiere = page.locator("#result_list").get_by_role("link", name="Aubière", exact=True)
    follow(page, aubiere, "page de la commune")
    assert re.search(r"/admin/mutualisation/organisation/\d+/change/$", page.url)
    assert page.get_by_role("heading", name="Modification de organisation").is_visible()
    populations = page.locator("tr", has_text=f"Aubière, millésime {record.vintage}")
    municipal = populations.locator("input[name$='-municipal']")
    assert municipal.input_value() == str(before)
    municipal.fill(str(after))
    screenshot(page, "journey6-population-edited")
    follow(page, page.get_by_role("button", name="Enregistrer", exact=True), "commune modifiée")
    assert page.url == live_server.url + "/admin/mutualisation/organisation/"
    assert (
        "L’objet organisation «\xa0Aubière\xa0» a été modifié avec succès."
        in page.locator(".messagelist").inner_text()
    )
    record.refresh_from_db()
    assert record.municipal == after

    follow(page, aubiere, "page de la commune corrigée")
    assert populations.locator("input[name$='-municipal']").input_value() == str(after)
    follow(page, page.get_by_role("link", name="Historique"), "historique de la commune")
    assert re.search(r"/admin/mutualisation/organisation/\d+/history/$", page.url)
    assert page.get_by_role("heading", name="Historique des changements : Aubière").is_visible()
    # The correction made on the commune's page is in the commune's history: what, who, when.
    change = page.locator("tr", has_text=f"Aubière, millésime {record.vintage}").filter(
        has_text="Modifié"
    )
    assert change.count() == 1
    shown = change.inner_text()
    assert f"Population municipale : {before} → {after}" in re.sub(r"\s+", " ", shown)
    assert "admin" in shown
    assert re.search(r"\d{1,2} \w+ \d{4} \d{2}:\d{2}", shown)
    # French throughout: no untranslated column, no Python « None » for an empty reason.
    content = page.inner_text("#content")
    for english in ("Changes", "CHANGES", "None"):
        assert english not in content
    screenshot(page, "journey6-history")
