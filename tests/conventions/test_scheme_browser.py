"""The schéma de mutualisation in a real Chromium: the manager reads it by horizon and is told
which councils' opinions are still awaited when recording the approval too early; Aubière's
reader reads the actions concerning Aubière only. Every page passes axe."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from conventions.models import ActionStatus, Horizon, Opinion, SchemeOpinion
from conventions.services import scheme as schemes
from mutualisation.models import Organisation
from tests.conftest import assert_accessible, browser_log_in, screenshot, seed_territory
from tests.factories import SchemeActionFactory, SchemeFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "demo-mutualis-2026"


def consulted_scheme():
    epci = Organisation.objects.get(name="Clermont Auvergne Métropole")
    aubiere = Organisation.objects.get(name="Aubière")
    clermont = Organisation.objects.get(name="Clermont-Ferrand")
    plan = SchemeFactory(
        territory=epci,
        title="Schéma de mutualisation 2026-2032",
        summary="Les fonctions support d'abord, les services techniques ensuite.",
    )
    for title, communes, horizon, year, status in (
        ("Instruction du droit des sols", [aubiere, clermont], Horizon.SHORT, 2027, "DONE"),
        ("Archives mutualisées", [clermont], Horizon.MEDIUM, 2029, "PREPARING"),
        ("Centre technique commun", [aubiere], Horizon.LONG, 2031, "ABANDONED"),
    ):
        action = SchemeActionFactory(
            scheme=plan,
            title=title,
            horizon=horizon,
            target_year=year,
            status=ActionStatus(status),
            expected_fte_change=Decimal("-1.50"),
            expected_cost_change=Decimal("-42000.00"),
            progress_note="Point d'étape présenté au débat d'orientation budgétaire.",
        )
        action.communes.set(communes)
    sent = timezone.localdate() - timedelta(days=20)
    plan = schemes.scheme_submit(plan, on=sent)
    SchemeOpinion.objects.create(
        scheme=plan, commune=aubiere, date=sent + timedelta(days=7), opinion=Opinion.FAVOURABLE
    )
    return plan


def test_the_scheme_is_read_by_horizon_and_its_early_approval_lists_the_awaited_councils(
    live_server, page
):
    seed_territory()
    plan = consulted_scheme()
    browser_log_in(page, live_server, "gestionnaire", PASSWORD)
    page.goto(live_server.url + "/conventions/schema/")
    assert_accessible(page, "liste des schémas")
    page.get_by_role("link", name="Schéma de mutualisation 2026-2032").click()
    page.wait_for_url(live_server.url + plan.get_absolute_url())
    for horizon in ("Court terme", "Moyen terme", "Long terme"):
        assert page.get_by_role("heading", name=horizon).is_visible()
    # two actions count (the abandoned one is left out): -3 ETP, -84 000 € a year
    assert "-84\u00a0000,00\u00a0€ par an" in page.locator("#contenu").inner_text()
    assert_accessible(page, "schéma (gestionnaire)")
    screenshot(page, "scheme-detail")

    page.get_by_label("N° de la délibération").fill("2026-12-042")
    page.get_by_role("button", name="Enregistrer l'approbation").click()
    refusal = page.locator("#refus")
    assert "Avis attendu des conseils municipaux de :" in refusal.inner_text()
    assert "Clermont-Ferrand" in refusal.inner_text()
    assert "Aubière" not in refusal.inner_text()
    # the number typed is still there, to send again once the opinions are in
    assert page.get_by_label("N° de la délibération").input_value() == "2026-12-042"
    assert_accessible(page, "approbation refusée")
    screenshot(page, "scheme-adoption-refused")

    page.get_by_role("button", name="Se déconnecter").click()
    browser_log_in(page, live_server, "lecteur.aubiere", PASSWORD)
    page.goto(live_server.url + plan.get_absolute_url())
    shown = page.locator("#contenu").inner_text()
    assert "Instruction du droit des sols" in shown
    assert "Archives mutualisées" not in shown
    assert "Clermont-Ferrand" not in shown
    assert_accessible(page, "schéma (lecteur d'Aubière)")
    screenshot(page, "scheme-detail-reader")
