"""The simulation of a draft convention with the unit cost and the units the person types
(issue 12): recomputed on the server through the engine, Decimal only, nothing stored."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from conventions.models import UsageForecast
from costing.models import UnitCost

pytestmark = pytest.mark.django_db


def simulation(client, personas, convention, params=None):
    client.force_login(personas.manager)
    return client.get(reverse("costing:simulation", args=[convention.reference]), params or {})


def figures(response, column) -> dict:
    return {
        (row.year, row.organisation.name): getattr(row, column) for row in response.context["rows"]
    }


def test_a_draft_without_unit_cost_is_simulated_at_the_unit_cost_typed_in_french(
    client, personas, mad_descendante
):
    line = mad_descendante.line
    before = simulation(client, personas, mad_descendante.convention)
    assert not any(figures(before, "projected").values())  # nothing to show
    assert "Valeurs simulées" not in before.content.decode()

    response = simulation(
        client, personas, mad_descendante.convention, {f"cout_{line.pk}": "19,80", "simuler": "1"}
    )
    simulated = figures(response, "simulated")
    # 120 and 80 forecast units at the 19,80 € typed
    assert simulated == {
        (2026, "Commune A"): Decimal("2376.00"),
        (2026, "Commune B"): Decimal("1584.00"),
    }
    assert all(type(value) is Decimal for value in simulated.values())
    assert set(figures(response, "projected").values()) == {Decimal("0.00")}  # the project's own
    html = response.content.decode()
    assert "Valeurs simulées" in html
    assert "rien n’est enregistré" in html
    assert not UnitCost.objects.exists()


def test_the_units_typed_replace_the_forecast_for_the_simulation_only(
    client, personas, territory, mad_descendante
):
    line, commune_a = mad_descendante.line, territory.commune_a
    response = simulation(
        client,
        personas,
        mad_descendante.convention,
        {
            f"cout_{line.pk}": "10",
            f"unites_{line.pk}_{commune_a.pk}": "3,5",
            "simuler": "1",
        },
    )
    assert figures(response, "simulated") == {
        (2026, "Commune A"): Decimal("35.00"),
        (2026, "Commune B"): Decimal("800.00"),  # its forecast, not changed
    }
    assert UsageForecast.objects.get(beneficiary=commune_a).units == Decimal("120")


def test_the_form_starts_from_the_latest_unit_cost_and_the_forecast_units(
    client, personas, territory, mad_descendante
):
    service, line = mad_descendante.service, mad_descendante.line
    for year, amount in ((2024, "18.00"), (2025, "19.25")):
        UnitCost.objects.create(
            service=service,
            year=year,
            amount=Decimal(amount),
            notification_deadline=date(year, 4, 30),
        )
    response = simulation(client, personas, mad_descendante.convention)
    form = response.context["form"]
    assert form.initial[f"cout_{line.pk}"] == Decimal("19.25")
    assert form.initial[f"unites_{line.pk}_{territory.commune_a.pk}"] == Decimal("120")
    html = response.content.decode()
    assert 'value="19,25"' in html
    assert f'for="id_cout_{line.pk}">Coût unitaire (€)' in html
    # the defaults sent back as they are: the simulation equals the projection
    sent = {name: form[name].value() for name in form.fields} | {"simuler": "1"}
    again = simulation(client, personas, mad_descendante.convention, sent)
    assert (
        figures(again, "simulated")
        == figures(again, "projected")
        == {
            (2026, "Commune A"): Decimal("2310.00"),
            (2026, "Commune B"): Decimal("1540.00"),
        }
    )


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("abc", "Saisissez un montant en euros (ex. : 19,80)."),
        ("-3", "Montant négatif : saisissez 0 ou plus."),
        ("19,805", "2 décimales au plus (les centimes)."),
    ],
)
def test_a_bad_unit_cost_is_refused_in_french_and_kept_as_typed(
    client, personas, mad_descendante, typed, message
):
    line = mad_descendante.line
    response = simulation(
        client, personas, mad_descendante.convention, {f"cout_{line.pk}": typed, "simuler": "1"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert f'value="{typed}"' in html
    assert 'aria-invalid="true"' in html
    assert "Valeurs simulées" not in html  # nothing recomputed from a refused value
    assert all(row.simulated is None for row in response.context["rows"])


def test_units_typed_for_a_draft_without_any_forecast_are_simulated_over_three_years(
    client, personas, territory, mad_descendante
):
    line, commune_b = mad_descendante.line, territory.commune_b
    UsageForecast.objects.all().delete()
    empty = simulation(client, personas, mad_descendante.convention)
    assert empty.context["rows"] == []
    assert empty.context["form"] is not None  # still something to adjust
    response = simulation(
        client,
        personas,
        mad_descendante.convention,
        {f"cout_{line.pk}": "2", f"unites_{line.pk}_{commune_b.pk}": "1 000,5", "simuler": "1"},
    )
    simulated = figures(response, "simulated")
    assert simulated[(2026, "Commune B")] == Decimal("2001.00")
    assert [year for year, name in simulated if name == "Commune B"] == [2026, 2027, 2028]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_person_simulates_with_the_keyboard_and_sees_the_figures_marked_as_a_simulation(
    live_server, page, personas, territory, mad_descendante
):
    from tests.conftest import assert_accessible, browser_log_in, screenshot

    browser_log_in(page, live_server, "gestionnaire")
    url = live_server.url + reverse(
        "costing:simulation", args=[mad_descendante.convention.reference]
    )
    page.goto(url)
    screenshot(page, "simulation-0-draft-without-unit-cost")
    assert_accessible(page, "simulation")
    service = mad_descendante.service.name
    page.get_by_label(f"Coût unitaire — {service} (€)").fill("19,80")
    page.get_by_label(f"Commune A — {service} : unités par an").fill("3,5")
    page.get_by_role("button", name="Simuler").click()
    page.wait_for_selector("text=Valeurs simulées")
    assert page.get_by_label(f"Coût unitaire — {service} (€)").input_value() == "19,80"
    row = page.get_by_role("row", name=re.compile("Commune A"))
    assert "69,30" in row.inner_text()  # 3,5 × 19,80 €
    screenshot(page, "simulation-1-simulated")
    assert_accessible(page, "simulation simulée")

    page.get_by_label(f"Commune A — {service} : unités par an").fill("trois")
    page.get_by_role("button", name="Simuler").click()
    summary = page.locator("#erreurs")
    summary.wait_for()
    assert page.evaluate("document.activeElement.id") == "erreurs"
    assert "Saisissez un nombre d'unités (ex. : 3,5)." in summary.inner_text()
    assert page.get_by_label(f"Commune A — {service} : unités par an").input_value() == "trois"
    screenshot(page, "simulation-2-refused")
    assert_accessible(page, "simulation refusée")
