"""Figures on the convention's page and in its PDF read as a person writes them: 42,5 units
(not « 42,500 »), « Population (millésime 2023) » (not the form's « (millésime nommé) »)."""

from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse

from conventions.models import UsageForecast
from conventions.services import documents
from tests.conventions.test_convention_document import text_of

pytestmark = pytest.mark.django_db


def test_forecast_units_drop_their_trailing_zeros_on_the_page_and_in_the_pdf(
    client, personas, mad_descendante
):
    UsageForecast.objects.filter(beneficiary__name="Commune A").update(units=Decimal("42.5"))
    client.force_login(personas.manager)
    page = unescape(
        client.get(
            reverse("conventions:detail", args=[mad_descendante.convention.reference])
        ).content.decode()
    )
    assert "42,5<" in page
    assert "42,500" not in page
    pdf = text_of(documents.render_convention(mad_descendante.convention))
    assert "42,5" in pdf
    assert "42,500" not in pdf


def test_a_population_key_names_its_vintage_once(client, personas, service_commun):
    client.force_login(personas.manager)
    page = unescape(
        client.get(
            reverse("conventions:detail", args=[service_commun.convention.reference])
        ).content.decode()
    )
    assert "Population (millésime 2023)" in page
    assert "millésime nommé" not in page
    pdf = text_of(documents.render_convention(service_commun.convention))
    assert "millésime nommé" not in pdf
