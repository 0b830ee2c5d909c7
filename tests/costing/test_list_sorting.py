"""The lists of statements, cost bases and acomptes sort by any of their columns (in French
order for names, in lifecycle order for states) and show one page at a time."""

import html
import re
from datetime import date

import pytest
from django.urls import reverse

from costing import statements
from tests.costing.conftest import cost_base, issue_after_review

pytestmark = pytest.mark.django_db


def column_texts(page: str, index: int) -> list[str]:
    """The text of column ``index`` of each row of the page's first table body (its first line:
    a service's name, not its provider under it)."""
    body = page.split("<tbody", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S) for row in rows]
    return [
        html.unescape(re.sub(r"<[^>]+>", "", row[index].split("<br>")[0])).strip()
        for row in cells
        if len(row) > index
    ]


@pytest.fixture
def listed(billed, personas, territory):
    territory.commune_a.name = "Cournon-d'Auvergne"
    territory.commune_a.save()
    territory.commune_b.name = "Cébazat"
    territory.commune_b.save()
    drafts = {s.payer.name: s for s in statements.statements_prepare(2026)}
    issue_after_review(drafts["Cournon-d'Auvergne"])
    return drafts


def statement_list(client, **query):
    return client.get(reverse("costing:statements", args=[2026]), query).content.decode()


def test_statements_sort_by_debtor_in_french_order_both_ways(client, personas, listed):
    client.force_login(personas.finance)
    assert column_texts(statement_list(client, sort="payer"), 2) == [
        "Cébazat",
        "Cournon-d'Auvergne",
    ]
    assert column_texts(statement_list(client, sort="-payer"), 2) == [
        "Cournon-d'Auvergne",
        "Cébazat",
    ]


def test_statements_sort_by_state_in_lifecycle_order_and_by_total(client, personas, listed):
    client.force_login(personas.finance)
    assert column_texts(statement_list(client, sort="state"), 6) == ["Projet", "Émis"]
    assert column_texts(statement_list(client, sort="-state"), 6) == ["Émis", "Projet"]
    totals = {s.payer.name: s.total for s in listed.values()}
    ascending = sorted(totals, key=totals.get)
    assert column_texts(statement_list(client, sort="total"), 2) == ascending
    assert column_texts(statement_list(client, sort="-total"), 2) == ascending[::-1]


def test_the_statement_headers_are_sort_links_and_a_bad_sort_is_ignored(client, personas, listed):
    client.force_login(personas.finance)
    html = statement_list(client)
    for column in ("number", "convention", "payer", "payee", "total", "balance", "state"):
        assert f"sort={column}" in html
    assert column_texts(statement_list(client, sort="1.5"), 2)  # answered, sort ignored


def test_statements_are_paged_with_the_sort_kept(client, personas, listed, monkeypatch):
    from costing import views

    monkeypatch.setattr(views, "STATEMENTS_PER_PAGE", 1)
    client.force_login(personas.finance)
    first = statement_list(client, sort="payer")
    assert column_texts(first, 2) == ["Cébazat"]
    assert "page=2" in first
    assert "sort=payer" in re.search(r'href="([^"]*page=2[^"]*)"', first)[1]
    assert column_texts(statement_list(client, sort="payer", page=2), 2) == ["Cournon-d'Auvergne"]


def test_cost_bases_sort_by_service_and_are_paged(client, personas, billed, monkeypatch):
    from costing import views
    from tests.factories import ServiceFactory

    other = ServiceFactory(territory=billed.service.territory, name="Archives")
    billed.service.name = "Voirie"
    billed.service.save()
    for service in (billed.service, other):
        cost_base(service)
    client.force_login(personas.finance)
    url = reverse("costing:cost-bases", args=[2026])
    page = client.get(url, {"sort": "service"}).content.decode()
    assert column_texts(page, 0) == ["Archives", "Voirie"]
    page = client.get(url, {"sort": "-service"}).content.decode()
    assert column_texts(page, 0) == ["Voirie", "Archives"]
    monkeypatch.setattr(views, "COST_BASES_PER_PAGE", 1)
    page = client.get(url, {"sort": "service"}).content.decode()
    assert column_texts(page, 0) == ["Archives"]
    assert "page=2" in page


def test_the_sorted_column_says_so_to_screen_readers_and_only_it(client, personas, listed):
    client.force_login(personas.finance)
    headers = re.findall(r"<th[^>]*>", statement_list(client, sort="-total"))
    assert [h for h in headers if "aria-sort" in h] == [
        next(h for h in headers if 'aria-sort="descending"' in h)
    ]
    assert "text-end" in next(h for h in headers if "aria-sort" in h)  # the Total column
    headers = re.findall(r"<th[^>]*>", statement_list(client, sort="payer"))
    assert sum('aria-sort="ascending"' in h for h in headers) == 1


def test_the_convention_list_marks_its_sorted_column_too(client, personas):
    client.force_login(personas.manager)
    page = client.get(reverse("conventions:list"), {"sort": "reference"}).content.decode()
    assert sum('aria-sort="ascending"' in h for h in re.findall(r"<th[^>]*>", page)) == 1


def instalment_page(client, **query):
    return client.get(reverse("costing:instalments", args=[2026]), query).content.decode()


def test_called_acomptes_sort_by_debtor_and_amount_and_are_paged(
    client, personas, billed, territory, monkeypatch
):
    from costing import instalments, views

    territory.commune_a.name = "Cournon-d'Auvergne"
    territory.commune_a.save()
    territory.commune_b.name = "Cébazat"
    territory.commune_b.save()
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))  # rank 1 of each
    client.force_login(personas.finance)
    assert column_texts(instalment_page(client, sort="payer"), 1) == [
        "Cébazat",
        "Cournon-d'Auvergne",
    ]
    assert column_texts(instalment_page(client, sort="-payer"), 1) == [
        "Cournon-d'Auvergne",
        "Cébazat",
    ]
    # Cébazat's acompte (4 846,20 €) is the smaller one.
    assert column_texts(instalment_page(client, sort="-amount"), 1) == [
        "Cournon-d'Auvergne",
        "Cébazat",
    ]
    monkeypatch.setattr(views, "INSTALMENTS_PER_PAGE", 1)
    first = instalment_page(client, sort="payer")
    assert column_texts(first, 1) == ["Cébazat"]
    assert "page=2" in first
    # The acompte's actions stay in its row, with the form's CSRF token.
    assert "Enregistrer" in first
    assert first.count('name="csrfmiddlewaretoken"') >= 2


def test_planned_acomptes_are_paged_too(client, personas, billed, monkeypatch):
    from costing import views

    monkeypatch.setattr(views, "INSTALMENTS_PER_PAGE", 3)
    client.force_login(personas.finance)
    page = instalment_page(client)
    planned = page.split('id="titre-prevus"', 1)[1]
    assert len(column_texts(planned, 2)) == 3  # of the 8 planned (4 ranks × 2 communes)
    assert "prevus-page=2" in planned


def test_the_list_gives_each_drafts_review_deadline_and_sorts_on_it(client, personas, listed):
    client.force_login(personas.finance)
    page = statement_list(client, sort="review")
    draft = listed["Cébazat"]
    assert column_texts(page, 7) == [f"{draft.review_until:%d/%m/%Y}", "—"]  # issued: closed
    assert "sort=-review" in page


def test_each_scrolling_table_is_a_region_named_after_its_caption(client, personas, listed):
    client.force_login(personas.finance)
    page = statement_list(client)
    assert 'role="region" aria-label="États de l&#x27;exercice"' in page
