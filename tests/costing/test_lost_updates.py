"""Lost updates (issue 10, point 11): a cost-base form or a usage grid opened earlier never
silently overwrites a later save, and an empty cell never deletes someone else's entry; the
second save answers 409 with the input kept, as the convention form does."""

from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from conventions.models import Convention, Status
from costing import services
from costing.models import CostBase, UsageRecord, UsageSource
from tests.costing.conftest import cost_base

pytestmark = pytest.mark.django_db


def base_data(base, form, **changes):
    data = {
        "version": form["version"].value(),
        "service": base.service_id,
        "year": base.year,
        "source": base.source,
        "source_year": base.source_year,
        "reference_units": "1",
        "reference_basis": base.reference_basis,
        "notes": "",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "1",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
    }
    line = base.lines.get()
    data |= {
        "lines-0-id": line.pk,
        "lines-0-cost_base": base.pk,
        "lines-0-label": line.label,
        "lines-0-category": line.category,
        "lines-0-account": line.account,
        "lines-0-accounts_amount": str(line.accounts_amount).replace(".", ","),
        "lines-0-budget_adjustment": str(line.budget_adjustment).replace(".", ","),
    }
    return data | changes


def test_a_cost_base_form_opened_earlier_is_refused_with_its_input_kept(personas, mad_descendante):
    base = cost_base(mad_descendante.service)
    first, second = Client(), Client()
    first.force_login(personas.finance)
    second.force_login(personas.finance)
    url = reverse("costing:cost-base-edit", args=[base.pk])
    form_first = first.get(url).context["form"]
    form_second = second.get(url).context["form"]
    assert first.post(url, base_data(base, form_first, notes="Première")).status_code == 302
    response = second.post(url, base_data(base, form_second, notes="Seconde"))
    assert response.status_code == 409
    body = response.content.decode()
    assert "a été modifiée par" in body
    assert "Rien n&#x27;a été enregistré" in body or "Rien n'a été enregistré" in body
    assert "Seconde" in body  # the input is kept
    assert CostBase.objects.get(pk=base.pk).notes == "Première"
    # Saved again knowingly, as the message invites: the form shown carries the version read.
    again = second.post(url, base_data(base, response.context["form"], notes="Seconde"))
    assert again.status_code == 302
    assert CostBase.objects.get(pk=base.pk).notes == "Seconde"


@pytest.fixture
def grid(mad_descendante, territory):
    Convention.objects.filter(pk=mad_descendante.convention.pk).update(status=Status.IN_FORCE)
    url = reverse(
        "costing:usage-grid",
        args=[mad_descendante.convention.reference, mad_descendante.service.code, 2026],
    )
    return url, territory


def cell(response, beneficiary, month):
    return response.context["form"].key(beneficiary.pk, month)


def test_an_empty_cell_of_a_grid_opened_earlier_never_deletes_a_later_entry(personas, grid):
    url, territory = grid
    first, second = Client(), Client()
    first.force_login(personas.manager)
    second.force_login(personas.manager)
    page_first = first.get(url)
    page_second = second.get(url)
    march_a = cell(page_first, territory.commune_a, 3)
    april_b = cell(page_first, territory.commune_b, 4)
    loaded = page_first.context["loaded"]
    assert (
        second.post(url, {march_a: "7", "loaded": page_second.context["loaded"]}).status_code == 302
    )
    # The first tab still shows March empty and only fills April.
    response = first.post(url, {april_b: "3", march_a: "", "loaded": loaded})
    assert response.status_code == 302
    values = {
        (r.beneficiary_id, r.period_start.month): r.quantity
        for r in UsageRecord.objects.filter(source=UsageSource.GRID)
    }
    assert values == {
        (territory.commune_a.pk, 3): Decimal("7"),
        (territory.commune_b.pk, 4): Decimal("3"),
    }


def test_changing_a_cell_someone_changed_meanwhile_is_a_conflict(personas, grid):
    url, territory = grid
    first, second = Client(), Client()
    first.force_login(personas.manager)
    second.force_login(personas.manager)
    page_first = first.get(url)
    page_second = second.get(url)
    march_a = cell(page_first, territory.commune_a, 3)
    second.post(url, {march_a: "7", "loaded": page_second.context["loaded"]})
    response = first.post(url, {march_a: "9", "loaded": page_first.context["loaded"]})
    assert response.status_code == 409
    body = response.content.decode()
    assert "modifiées par quelqu&#x27;un d&#x27;autre" in body or "modifiées par quelqu'un" in body
    assert str(territory.commune_a) in body
    assert UsageRecord.objects.get(source=UsageSource.GRID).quantity == Decimal("7")
    # Saving again, knowingly, replaces the value.
    again = first.post(url, {march_a: "9", "loaded": response.context["loaded"]})
    assert again.status_code == 302
    assert UsageRecord.objects.get(source=UsageSource.GRID).quantity == Decimal("9")


def test_an_entry_saved_while_the_grid_page_is_built_survives_the_next_save(
    personas, grid, mad_descendante
):
    """The grid shown and its « loaded » snapshot come from one reading. They used to be read
    twice: an entry saved by someone else in between was missing from the grid but present in
    the snapshot, so the next save of that page deleted it (found by `make load`)."""
    url, territory = grid
    march_b = (territory.commune_b.pk, 3)
    saved = []

    def someone_saves_meanwhile(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if "costing_usagerecord" in sql and not saved:
            saved.append(march_b)
            services.usage_grid_save(
                convention=mad_descendante.convention,
                service=mad_descendante.service,
                year=2026,
                values={march_b: Decimal("7")},
                loaded={},
            )
        return result

    client = Client()
    client.force_login(personas.manager)
    with connection.execute_wrapper(someone_saves_meanwhile):
        page = client.get(url)
    assert saved == [march_b]
    form = page.context["form"]
    # Sent back as a browser does: every cell as shown, and January of commune A filled in.
    data = {name: form[name].value() or "" for name in form.fields}
    data[form.key(territory.commune_a.pk, 1)] = "4"
    data["loaded"] = page.context["loaded"]
    assert client.post(url, data).status_code == 302
    grid_entries = UsageRecord.objects.filter(source=UsageSource.GRID)
    assert {(r.beneficiary_id, r.period_start.month): r.quantity for r in grid_entries} == {
        march_b: Decimal("7"),
        (territory.commune_a.pk, 1): Decimal("4"),
    }
