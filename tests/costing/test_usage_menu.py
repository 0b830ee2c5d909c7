"""A finance officer reaches the usage grids from the menu, without knowing an address: « Recours »
lists the year's conventions of their territory, each service linking to its grid."""

import re

import pytest
from django.urls import reverse

from tests.conftest import log_in
from tests.costing.conftest import more_billed_conventions

pytestmark = pytest.mark.django_db


def menu(html: str) -> dict[str, str]:
    navigation = html[html.index('aria-label="Navigation principale"') :]
    navigation = navigation[: navigation.index("</nav>")]
    return {
        label.strip(): href
        for href, label in re.findall(
            r'<a class="nav-link[^"]*"\s+href="([^"]+)"[^>]*>([^<]+)</a>', navigation
        )
    }


def grid_url(billed, year=2026):
    return reverse(
        "costing:usage-grid", args=[billed.convention.reference, billed.service.code, year]
    )


def test_the_menu_leads_a_finance_officer_to_the_grids_of_the_year(billed, client, personas):
    assert log_in(client, "finances")
    items = menu(client.get(reverse("home")).content.decode())
    # billed lives in January 2027.
    assert items["Recours"] == reverse("costing:usage-list", args=[2027])
    html = client.get(reverse("costing:usage-list", args=[2026])).content.decode()
    assert billed.convention.reference in html
    assert grid_url(billed) in html
    assert reverse("costing:usage-state", args=[billed.convention.reference, 2026]) in html
    assert reverse("costing:usage-import") in html


def test_the_recours_item_is_current_on_a_grid(billed, client, personas):
    assert log_in(client, "finances")
    html = client.get(grid_url(billed)).content.decode()
    current = re.findall(
        r'<a class="nav-link active"\s+href="[^"]+" aria-current="page">([^<]+)<', html
    )
    assert current == ["Recours"]


@pytest.mark.parametrize("persona", ["lecteur.a", "exterieur"])
def test_a_commune_reader_and_an_outsider_have_no_recours_menu_nor_page(
    billed, client, personas, persona
):
    assert log_in(client, persona)
    home = client.get(reverse("home"))
    if home.status_code == 200:
        assert "Recours" not in menu(home.content.decode())
    assert client.get(reverse("costing:usage-list", args=[2026])).status_code == 403


def test_the_recours_list_is_paginated(billed, client, personas):
    more_billed_conventions(billed, 25)
    assert log_in(client, "finances")
    first = client.get(reverse("costing:usage-list", args=[2026])).content.decode()
    second = client.get(reverse("costing:usage-list", args=[2026]) + "?page=2").content.decode()
    assert "Page 1 sur 2" in first
    assert "Page 2 sur 2" in second
    listed = set(re.findall(r"CONV-\d{4}-\d{3,}", first)) | set(
        re.findall(r"CONV-\d{4}-\d{3,}", second)
    )
    assert len(listed) == 26
