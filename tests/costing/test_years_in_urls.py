"""A year outside what Mutualis handles is a 404 page, never a 500 (before: /couts/
remboursements/0/, the dashboard, the usage grid and preparing statements for year 10000 crashed)."""

import pytest

pytestmark = pytest.mark.django_db

PAGES = [
    "/couts/remboursements/{year}/",
    "/couts/bases/{year}/",
    "/couts/tableau-de-bord/{year}/",
    "/couts/etats/{year}/",
    "/couts/acomptes/{year}/",
    "/couts/exports/{year}/lignes.csv",
]


@pytest.mark.parametrize("year", [0, 1, 999, 10000, 99999])
@pytest.mark.parametrize("page", PAGES)
def test_an_impossible_year_is_not_found(client, personas, page, year):
    client.force_login(personas.finance)
    assert client.get(page.format(year=year)).status_code == 404


@pytest.mark.parametrize("year", [0, 10000])
def test_preparing_the_statements_of_an_impossible_year_is_not_found(client, personas, year):
    client.force_login(personas.finance)
    assert client.post(f"/couts/etats/{year}/preparer/").status_code == 404


def test_a_plausible_year_still_answers(client, personas):
    client.force_login(personas.finance)
    assert client.get("/couts/remboursements/2026/").status_code == 200
