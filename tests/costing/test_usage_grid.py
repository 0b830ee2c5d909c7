"""The usage grid as a finance officer uses it: each refused cell says why next to itself and in
a summary at the top linking to it, nothing typed is lost, quantities read as French numbers
without useless zeros, and each row, month and the year carry their totals."""

import re
from decimal import Decimal
from html import unescape
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from costing.forms import UsageGridForm
from costing.models import UsageRecord, UsageSource
from tests.conftest import log_in

pytestmark = pytest.mark.django_db


class Elements(HTMLParser):
    """Every element's attributes by id, and each element's text (for the few ids asked)."""

    def __init__(self, html):
        super().__init__()
        self.by_id: dict[str, dict] = {}
        self.texts: dict[str, str] = {}
        self.open: list[tuple[str, str | None]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        attributes["tag"] = tag
        if "id" in attributes:
            self.by_id[attributes["id"]] = attributes
            self.texts.setdefault(attributes["id"], "")
        if tag not in ("input", "br", "meta", "link", "img", "hr"):
            self.open.append((tag, attributes.get("id")))

    def handle_endtag(self, tag):
        while self.open:
            opened, _id = self.open.pop()
            if opened == tag:
                break

    def handle_data(self, data):
        for _tag, element_id in self.open:
            if element_id is not None:
                self.texts[element_id] += data


def grid_url(billed):
    return reverse(
        "costing:usage-grid", args=[billed.convention.reference, billed.service.code, 2026]
    )


@pytest.fixture
def finance(client, personas):
    assert log_in(client, "finances")
    return client


def cell_id(commune, month):
    return f"id_{UsageGridForm.key(commune.pk, month)}"


def test_a_refused_cell_carries_its_french_reason_linked_to_its_input(billed, finance):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    response = finance.post(
        grid_url(billed),
        {
            UsageGridForm.key(a.pk, 4): "-2",
            UsageGridForm.key(b.pk, 7): "trois",
            UsageGridForm.key(b.pk, 8): "1,23456",
            UsageGridForm.key(a.pk, 5): "4,5",
        },
    )
    assert response.status_code == 200
    page = Elements(response.content.decode())
    for commune, month, reason in (
        (a, 4, "Quantité négative : saisissez 0 ou plus"),
        (b, 7, "Saisissez un nombre (ex. : 3,5)."),
        (b, 8, "3 décimales au plus."),
    ):
        cell = page.by_id[cell_id(commune, month)]
        assert cell["aria-invalid"] == "true"
        described = cell["aria-describedby"].split()
        assert any(reason in unescape(page.texts[i]) for i in described), (commune, month)
    valid = page.by_id[cell_id(a, 5)]
    assert "aria-invalid" not in valid
    assert "aria-describedby" not in valid


def test_the_error_summary_lists_each_refused_cell_with_a_link_to_it(billed, finance):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    response = finance.post(
        grid_url(billed),
        {UsageGridForm.key(a.pk, 4): "-2", UsageGridForm.key(b.pk, 7): "trois"},
    )
    html = response.content.decode()
    page = Elements(html)
    summary = page.by_id["erreurs-grille"]
    assert summary["role"] == "alert"
    assert summary["tabindex"] == "-1"
    text = unescape(page.texts["erreurs-grille"])
    assert "2 cases refusées" in text
    assert "Commune A — avril 2026 : Quantité négative : saisissez 0 ou plus." in text
    assert "Commune B — juillet 2026 : Saisissez un nombre (ex. : 3,5)." in text
    links = re.findall(r'href="#(id_q_\d+_\d+)"', html)
    assert links == [cell_id(a, 4), cell_id(b, 7)]
    assert html.index('id="erreurs-grille"') < html.index("<table")


def test_a_refused_grid_keeps_everything_typed_and_writes_nothing(billed, finance):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    before = list(UsageRecord.objects.order_by("pk").values())
    response = finance.post(
        grid_url(billed),
        {
            UsageGridForm.key(a.pk, 4): "-2",
            UsageGridForm.key(a.pk, 5): "4,5",
            UsageGridForm.key(b.pk, 7): "trois",
        },
    )
    page = Elements(response.content.decode())
    assert page.by_id[cell_id(a, 4)]["value"] == "-2"
    assert page.by_id[cell_id(a, 5)]["value"] == "4,5"
    assert page.by_id[cell_id(b, 7)]["value"] == "trois"
    assert list(UsageRecord.objects.order_by("pk").values()) == before


def test_a_grid_without_error_shows_no_summary(billed, finance):
    html = finance.get(grid_url(billed)).content.decode()
    assert 'id="erreurs-grille"' not in html
    assert "aria-invalid" not in html


@pytest.mark.parametrize("persona", ["lecteur.a", "exterieur"])
def test_a_commune_reader_and_an_outsider_cannot_open_the_grid(billed, client, personas, persona):
    assert log_in(client, persona)
    assert client.get(grid_url(billed)).status_code in (403, 404)
    assert client.post(grid_url(billed), {}).status_code in (403, 404)
    assert not UsageRecord.objects.filter(source=UsageSource.GRID).exists()


def grid_record(billed, commune, month, quantity):
    from datetime import date

    return UsageRecord.objects.create(
        convention=billed.convention,
        beneficiary=commune,
        service=billed.service,
        unit_type=billed.service.unit_type,
        period_start=date(2026, month, 1),
        period_end=date(2026, month, 28),
        quantity=Decimal(quantity),
        units=Decimal(quantity),
        source=UsageSource.GRID,
    )


def test_the_grid_totals_each_row_each_month_and_the_year_in_french(billed, finance):
    """billed: A imported 20 in March and 17 in April, B 12.5 in March; the grid adds A 3.5 in
    March and B 1 234.25 in May. The totals count both, as the statement will."""
    a, b = billed.territory.commune_a, billed.territory.commune_b
    grid_record(billed, a, 3, "3.500")
    grid_record(billed, b, 5, "1234.250")
    page = Elements(finance.get(grid_url(billed)).content.decode())

    def total(element_id):
        return unescape(page.texts[element_id]).strip()

    assert total(f"total-ligne-{a.pk}") == "40,5"
    assert total(f"total-ligne-{b.pk}") == "1\xa0246,75"
    assert total("total-mois-3") == "36"
    assert total("total-mois-4") == "17"
    assert total("total-mois-5") == "1\xa0234,25"
    assert total("total-mois-6") == "0"
    assert total("total-general") == "1\xa0287,25"
    assert page.by_id["total-general"]["tag"] == "td"


def test_the_totals_add_the_weighted_units_the_statement_bills_not_the_quantities(billed, finance):
    """A grid record weighted afterwards (usage_edit: 2 acts of weight 1.5 = 3 units) is
    billed 3 units: the totals say 3, while its cell still shows the 2 acts entered."""
    a = billed.territory.commune_a
    record = grid_record(billed, a, 6, "2.000")
    UsageRecord.objects.filter(pk=record.pk).update(units=Decimal("3.000"))
    page = Elements(finance.get(grid_url(billed)).content.decode())
    assert unescape(page.texts["total-mois-6"]).strip() == "3"
    assert unescape(page.texts[f"total-ligne-{a.pk}"]).strip() == "40"


def test_the_totals_stay_those_recorded_when_a_grid_is_refused(billed, finance):
    a = billed.territory.commune_a
    response = finance.post(
        grid_url(billed),
        {UsageGridForm.key(a.pk, 3): "-1", UsageGridForm.key(a.pk, 4): "100"},
    )
    page = Elements(response.content.decode())
    assert unescape(page.texts[f"total-ligne-{a.pk}"]).strip() == "37"
    assert unescape(page.texts["total-general"]).strip() == "49,5"


def test_stored_quantities_show_in_french_without_useless_zeros(billed, finance):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    grid_record(billed, a, 1, "3.500")
    grid_record(billed, a, 2, "12.000")
    grid_record(billed, b, 1, "1234.250")
    grid_record(billed, b, 2, "0.125")
    page = Elements(finance.get(grid_url(billed)).content.decode())
    assert page.by_id[cell_id(a, 1)]["value"] == "3,5"
    assert page.by_id[cell_id(a, 2)]["value"] == "12"
    assert page.by_id[cell_id(b, 1)]["value"] == "1\xa0234,25"
    assert page.by_id[cell_id(b, 2)]["value"] == "0,125"
    assert page.by_id[cell_id(a, 3)]["value"] == ""


def test_a_grid_posted_back_as_shown_changes_nothing_and_keeps_thousandths(billed, finance):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    grid_record(billed, a, 1, "3.500")
    grid_record(billed, b, 1, "1234.250")
    html = finance.get(grid_url(billed)).content.decode()
    page = Elements(html)
    shown = {
        element_id[3:]: attributes.get("value", "")
        for element_id, attributes in page.by_id.items()
        if element_id.startswith("id_q_")
    }
    loaded = unescape(re.search(r'name="loaded" value="([^"]*)"', html).group(1))
    response = finance.post(grid_url(billed), {**shown, "loaded": loaded}, follow=True)
    assert "0 case enregistrée." in response.content.decode()
    response = finance.post(
        grid_url(billed),
        {**shown, UsageGridForm.key(b.pk, 1): "1 234,257", "loaded": loaded},
        follow=True,
    )
    assert "1 case enregistrée." in response.content.decode()
    record = UsageRecord.objects.get(source=UsageSource.GRID, beneficiary=b)
    assert record.quantity == Decimal("1234.257")
    assert UsageRecord.objects.get(source=UsageSource.GRID, beneficiary=a).quantity == Decimal(
        "3.5"
    )


def test_an_organisation_numbered_above_999_keeps_a_plain_number_in_its_row_id(billed, finance):
    """Ids are never localised: « total-ligne-1 252 » (a no-break space) matched nothing once a
    database numbered its organisations past 999."""
    from conventions.models import Party, PartyRole
    from tests.factories import EpciMembershipFactory, OrganisationFactory

    commune = OrganisationFactory(pk=43210, name="Commune numérotée")
    EpciMembershipFactory(member=commune, epci=billed.territory.epci)
    Party.objects.create(
        convention=billed.convention, organisation=commune, role=PartyRole.BENEFICIARY
    )
    page = Elements(finance.get(grid_url(billed)).content.decode())
    assert "total-ligne-43210" in page.texts
