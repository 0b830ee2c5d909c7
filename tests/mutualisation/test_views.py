import re
from html import unescape

import pytest
from django.urls import reverse

from tests.conftest import log_in, seed_territory

pytestmark = pytest.mark.django_db

NNBSP = "\xa0"  # the thousands separator of Django's French format (no-break space)


@pytest.fixture
def demo(db):
    seed_territory()


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next=/"


def test_login_page_is_french_and_labelled(client):
    response = client.get(reverse("login"))
    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="fr">' in html
    assert 'href="#contenu"' in html
    assert re.search(r'<label[^>]+for="id_username"', html)
    assert re.search(r'<label[^>]+for="id_password"', html)


def test_demo_user_logs_in_with_the_published_password(client, demo):
    response = client.post(
        reverse("login"), {"username": "finances", "password": "demo-mutualis-2026"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("home")
    assert response.context["user"].username == "finances"


def test_wrong_password_gets_a_french_error(client, demo):
    response = client.post(reverse("login"), {"username": "finances", "password": "faux"})
    assert response.status_code == 200
    assert "Saisissez un nom d’utilisateur et un mot de passe valides" in response.content.decode()


def test_home_lists_the_21_communes_and_the_2023_total(client, demo):
    log_in(client, "lecteur.aubiere", "demo-mutualis-2026")
    response = client.get(reverse("home"))
    html = response.content.decode()
    assert response.status_code == 200
    names = [row["commune"].name for row in response.context["rows"]]
    assert len(names) == 21
    assert names[:6] == ["Aubière", "Aulnat", "Beaumont", "Blanzat", "Cébazat", "Ceyrat"]
    assert "Population municipale 2023" in html
    assert "Clermont Auvergne Métropole" in html
    assert "Saint-Genès-Champanelle" in html
    assert f"146{NNBSP}351" in html
    assert f"295{NNBSP}488" in html
    assert f"296{NNBSP}677" in html
    assert "Entretien de la voirie d&#x27;intérêt métropolitain" in html


def test_home_page_query_count_does_not_grow_with_communes(
    client, demo, django_assert_max_num_queries
):
    log_in(client, "gestionnaire", "demo-mutualis-2026")
    # 13 for the page (the communes' names, then the page's communes with their populations;
    # the services counted for their pages), 3 for the session's sliding expiry (saved on every
    # request), 6 for the manager's « À faire » (mutualisation.todo; the blocks' own bound is
    # tests/mutualisation/test_home_todo.py).
    with django_assert_max_num_queries(22):
        client.get(reverse("home"))


def test_user_without_a_role_is_told_so(client, personas):
    client.force_login(personas.outsider)
    response = client.get(reverse("home"))
    assert response.status_code == 403
    assert "aucune organisation" in response.content.decode()


@pytest.mark.parametrize(("persona", "sees_admin"), [("manager", False), ("admin", True)])
def test_navigation_follows_the_role(client, personas, persona, sees_admin):
    client.force_login(getattr(personas, persona))
    html = client.get(reverse("home")).content.decode()
    assert ('href="/admin/"' in html) is sees_admin


def test_logout_is_a_post_and_returns_to_login(client, personas):
    client.force_login(personas.manager)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")


def test_home_shows_each_epci_its_own_member_count(client, personas, territory):
    """Two EPCIs: each paragraph counts that EPCI's current member communes, not all of them."""
    from datetime import date

    from tests.factories import EpciFactory, EpciMembershipFactory, OrganisationFactory

    other = EpciFactory(name="Communauté voisine")
    for _ in range(3):
        EpciMembershipFactory(member=OrganisationFactory(), epci=other)
    # A commune that left the first EPCI counts no more.
    EpciMembershipFactory(
        member=OrganisationFactory(),
        epci=territory.epci,
        valid_from=date(2010, 1, 1),
        valid_until=date(2020, 12, 31),
    )
    # The platform's operator sees both territories; each territory's staff, their own.
    client.force_login(personas.manager)
    assert "Communauté voisine" not in client.get(reverse("home")).content.decode()
    client.force_login(personas.admin)
    html = client.get(reverse("home")).content.decode()
    paragraphs = {
        name: re.search(re.escape(name) + r"</h1>\s*<p[^>]*>(.*?)</p>", html, re.S).group(1)
        for name in ("Métropole de test", "Communauté voisine")
    }
    assert "2 communes membres" in paragraphs["Métropole de test"]
    assert "3 communes membres" in paragraphs["Communauté voisine"]


def home_page(client, **params):
    response = client.get(reverse("home"), params)
    assert response.status_code == 200
    return response


@pytest.mark.parametrize("extra_communes", [60, 130])
def test_home_paginates_the_communes_and_totals_them_all(
    client, personas, territory, extra_communes
):
    from tests.factories import EpciMembershipFactory, OrganisationFactory, PopulationRecordFactory

    for index in range(extra_communes):
        commune = OrganisationFactory(name=f"Ville {index:03d}")
        EpciMembershipFactory(member=commune, epci=territory.epci)
        PopulationRecordFactory(organisation=commune)
    client.force_login(personas.manager)
    everyone = extra_communes + 2  # and communes A and B of the territory
    first = home_page(client)
    rows = first.context["rows"]
    assert 0 < len(rows) <= 50
    assert [row["commune"].name for row in rows][:2] == ["Commune A", "Commune B"]
    html = unescape(first.content.decode())
    assert f"Total ({everyone} communes)" in html
    assert f"{extra_communes}{NNBSP}000" in html  # the municipal total of every commune
    last_page = (everyone + len(rows) - 1) // len(rows)
    last = home_page(client, page=last_page)
    assert last.context["rows"][-1]["commune"].name == f"Ville {extra_communes - 1:03d}"
    assert 'aria-label="Pagination des communes"' in html
    # A page number beyond the last shows the last page, not an error.
    assert home_page(client, page=999).context["rows"] == last.context["rows"]


def test_home_paginates_the_services(client, personas, territory):
    from tests.factories import ServiceFactory

    for index in range(40):
        ServiceFactory(provider=territory.epci, name=f"Service {index:02d}")
    client.force_login(personas.manager)
    first = home_page(client)
    shown = list(first.context["services"])
    assert 0 < len(shown) < 40
    second = home_page(client, services_page=2)
    assert [s.name for s in second.context["services"]][0] == f"Service {len(shown):02d}"


def test_home_page_issues_as_many_queries_whatever_the_number_of_epcis_and_communes(
    client, personas
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import (
        EpciFactory,
        EpciMembershipFactory,
        OrganisationFactory,
        PopulationRecordFactory,
        ServiceFactory,
    )

    client.force_login(personas.manager)
    counts = []
    for _ in range(2):
        epci = EpciFactory()
        for _ in range(30):
            commune = OrganisationFactory()
            EpciMembershipFactory(member=commune, epci=epci)
            PopulationRecordFactory(organisation=commune)
            ServiceFactory(provider=epci)
        with CaptureQueriesContext(connection) as captured:
            home_page(client)
        counts.append(len(captured))
    assert counts[0] == counts[1], counts
