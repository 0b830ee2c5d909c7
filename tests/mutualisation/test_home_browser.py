"""Each role's home in a real Chromium: « À faire » first, readable and accessible (issue 12)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conventions.models import Status
from costing.models import StatementRemark, UnitCost
from mutualisation.models import Organisation
from tests.conftest import assert_accessible, browser_log_in, screenshot, seed_territory
from tests.factories import ServiceFactory
from tests.mutualisation.test_home_todo import convention_with, draft_statement

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PASSWORD = "demo-mutualis-2026"


def test_the_finance_and_reader_homes_open_on_what_to_do_and_are_accessible(live_server, page):
    seed_territory()
    epci = Organisation.objects.get(name="Clermont Auvergne Métropole")
    aubiere = Organisation.objects.get(name="Aubière")
    clermont = Organisation.objects.get(name="Clermont-Ferrand")
    territory = type("Territory", (), {"epci": epci})
    today = timezone.localdate()
    waiting = convention_with(territory, aubiere, status=Status.CONSULTATION)
    convention_with(territory, clermont, status=Status.SIGNED)
    convention_with(
        territory, clermont, status=Status.IN_FORCE, end_date=today + timedelta(days=40)
    )
    in_force = convention_with(territory, aubiere, status=Status.IN_FORCE)
    statement = draft_statement(in_force, aubiere, review_until=today + timedelta(days=20))
    reader = aubiere.user_memberships.get().user
    StatementRemark.objects.create(
        statement=statement, author=reader, text="Le nombre de jours de mars est à vérifier."
    )
    UnitCost.objects.create(
        service=ServiceFactory(provider=epci, name="Instruction des autorisations d'urbanisme"),
        year=today.year,
        amount=100,
        notification_deadline=today,
    )

    for username, name in (
        ("gestionnaire", "home-manager"),
        ("finances", "home-finance"),
        ("lecteur.aubiere", "home-reader"),
    ):
        browser_log_in(page, live_server, username, PASSWORD)
        todo = page.get_by_role("region", name="À faire")
        assert todo.get_by_role("heading", level=2, name="À faire").is_visible()
        screenshot(page, name)
        if username == "gestionnaire":
            assert todo.get_by_role("link", name=waiting.reference, exact=False).count() == 1
        else:
            assert_accessible(page, name)
        if username == "lecteur.aubiere":
            todo.get_by_role("link", name=in_force.reference, exact=False).first.click()
            page.wait_for_url(f"**/etat/{statement.pk}/")
        page.goto(live_server.url + "/")
        page.get_by_role("button", name="Se déconnecter").click()
        page.wait_for_url(live_server.url + "/connexion/")
