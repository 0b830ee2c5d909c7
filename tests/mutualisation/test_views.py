import re

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
    # 12 for the page, 3 for the session's sliding expiry (saved on every request).
    with django_assert_max_num_queries(15):
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
