"""The statement page with a commune's remarks, finance's answers and their status, in a real
Chromium: finance answers through the page, the commune reads the answer; both pages stay
accessible (axe) and are kept as screenshots (var/screenshots/remarques-*.png)."""

import pytest

from costing import statements
from tests.conftest import assert_accessible, browser_log_in, screenshot

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_finance_answers_a_remark_on_the_page_and_the_commune_reads_answer_and_status(
    live_server, page, billed, personas, flushable_statements
):
    draft = {s.payer.name: s for s in statements.statements_prepare(2026)}["Commune A"]
    first = statements.remark_add(
        draft, author=personas.reader_a, text="Le recours de mars est compté deux fois."
    )
    statements.remark_answer(
        first,
        user=personas.finance,
        answer="Doublon supprimé de l'état des recours : le projet est recalculé.",
        resolved=True,
    )
    statements.remark_add(
        draft, author=personas.reader_a, text="Le coût unitaire de 2026 nous a-t-il été notifié ?"
    )
    url = f"{live_server.url}/couts/etat/{draft.pk}/"

    browser_log_in(page, live_server, "finances")
    page.goto(url)
    open_remark = page.locator("li", has_text="nous a-t-il été notifié")
    open_remark.get_by_label("Réponse à la commune").fill(
        "Oui, le 30/03/2026 : le courrier est joint à la délibération."
    )
    open_remark.get_by_role("button", name="Enregistrer la réponse").click()
    page.wait_for_url(url)
    assert "Réponse enregistrée ; la remarque reste ouverte." in page.content()
    assert "n'est pas traitée" in page.inner_text("main")
    screenshot(page, "remarques-finances")
    assert_accessible(page, "remarques, finances")
    page.get_by_role("button", name="Se déconnecter").click()

    browser_log_in(page, live_server, "lecteur.a")
    page.goto(url)
    text = page.inner_text("main")
    assert "Doublon supprimé de l'état des recours" in text
    assert "Oui, le 30/03/2026" in text
    assert "Traitée" in text
    assert "Ouverte" in text
    assert page.get_by_label("Réponse à la commune").count() == 0
    screenshot(page, "remarques-commune")
    assert_accessible(page, "remarques, commune")
