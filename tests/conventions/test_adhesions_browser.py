"""Issue 14 in Chromium: the adhesion matrix and the staff made available, read by the
territory's manager and by a commune's reader, pass the accessibility check; the matrix's
communes' column stays in view when the table scrolls sideways."""

from datetime import date
from decimal import Decimal

import pytest

from conventions.models import AgentAssignment, AgentRegime, Status
from tests.conftest import assert_accessible, browser_log_in, follow, screenshot
from tests.conventions.test_adhesions import convention_of
from tests.factories import SchemeActionFactory, SchemeFactory, ServiceFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def adhesions(territory, personas):
    services = [
        ServiceFactory(provider=territory.epci, name=f"Service mutualisé n° {n}")
        for n in range(1, 9)
    ]
    made = convention_of(territory.epci, services[0], [territory.commune_a])
    convention_of(territory.epci, services[1], [territory.commune_b], status=Status.CONSULTATION)
    action = SchemeActionFactory(
        scheme=SchemeFactory(territory=territory.epci), service=services[2]
    )
    action.communes.set([territory.commune_a])
    AgentAssignment.objects.create(
        convention=made,
        agent_ref="AG-001",
        job_title="Technicien",
        employer=territory.epci,
        regime=AgentRegime.MAD_BY_LAW,
        share_percent=Decimal("50"),
        functional_authority="Le maire",
        hierarchical_authority="Le président",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 7, 1),
    )
    return made


def test_the_adhesion_matrix_and_the_staff_page_read_well(live_server, page, adhesions):
    browser_log_in(page, live_server, "gestionnaire")
    page.goto(live_server.url + "/conventions/adhesions/2026/")
    assert_accessible(page, "tableau des adhésions")
    matrix = page.get_by_role("region", name="Adhésions de 2 communes aux services en 2026")
    assert matrix.get_by_role("rowheader", name="Commune A").is_visible()
    assert matrix.get_by_role("columnheader", name="Service mutualisé n° 8").count() == 1
    cell = matrix.get_by_role("row", name="Commune A").get_by_role("cell").first
    assert cell.inner_text().split("\n")[0] == "Adhérente"
    screenshot(page, "issue14-adhesions")
    # Scrolled sideways, the communes' names stay where they were.
    page.set_viewport_size({"width": 700, "height": 900})
    header = matrix.get_by_role("rowheader", name="Commune A")
    left = header.bounding_box()["x"]
    matrix.evaluate("region => region.scrollBy(400, 0)")
    assert header.bounding_box()["x"] == left
    page.set_viewport_size({"width": 1280, "height": 900})
    follow(page, page.get_by_role("link", name=adhesions.reference), "convention")

    page.goto(live_server.url + "/conventions/agents/2026/")
    assert_accessible(page, "agents mis à disposition")
    assert "1 agent, 0,25 ETPT" in page.get_by_role("main").inner_text()
    screenshot(page, "issue14-agents")


def test_a_commune_reader_reads_their_own_row(live_server, page, adhesions):
    browser_log_in(page, live_server, "lecteur.b")
    page.goto(live_server.url + "/conventions/adhesions/2026/")
    assert_accessible(page, "tableau des adhésions (lecteur)")
    rows = page.get_by_role("rowheader")
    assert rows.all_inner_texts() == ["Commune B"]
