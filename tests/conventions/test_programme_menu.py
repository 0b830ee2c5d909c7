"""« Mutualisation » in the menu leads every role to the scheme, and from it to the adhesion
matrix, the staff made available and the annual report; the item stays current on each."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import log_in
from tests.costing.test_usage_menu import menu

pytestmark = pytest.mark.django_db


def current_item(html: str) -> list[str]:
    return re.findall(
        r'<a class="nav-link active"\s+href="[^"]+" aria-current="page">([^<]+)<', html
    )


@pytest.mark.parametrize("persona", ["gestionnaire", "finances", "lecteur.a"])
def test_the_menu_leads_each_role_to_the_programme_and_its_tables(client, personas, persona):
    assert log_in(client, persona)
    items = menu(client.get(reverse("home")).content.decode())
    assert items["Mutualisation"] == reverse("conventions:schemes")
    page = client.get(items["Mutualisation"]).content.decode()
    year = timezone.localdate().year
    for target in (
        reverse("conventions:adhesions", args=[year]),
        reverse("conventions:staff", args=[year]),
        reverse("costing:annual-report", args=[year]),
    ):
        assert f'href="{target}"' in page
        assert client.get(target).status_code == 200
        assert current_item(client.get(target).content.decode()) == ["Mutualisation"]


def test_an_outsider_has_no_programme_menu(client, personas):
    assert log_in(client, "exterieur")
    home = client.get(reverse("home"))
    if home.status_code == 200:
        assert "Mutualisation" not in menu(home.content.decode())
