"""Implausible dates (0001-01-01, 9999-12-31) are refused in French wherever a person types a
date, and a refused convention consumes no reference."""

from datetime import date

import pytest
from django.urls import reverse

from conventions.forms import DeliberationForm, OpinionForm
from conventions.models import Convention, ReferenceCounter

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("typed", ["0001-01-01", "9999-12-31", "1899-05-01"])
def test_a_new_convention_with_an_implausible_start_is_refused_and_takes_no_reference(
    client, personas, territory, typed
):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:create"),
        {"title": "Essai", "kind": "MISE_A_DISPOSITION", "object": "Objet", "start_date": typed},
    )
    assert response.status_code == 200
    assert "Date invraisemblable" in response.content.decode()
    assert not Convention.objects.filter(title="Essai").exists()
    assert not ReferenceCounter.objects.exists()


def test_an_opinion_and_a_deliberation_dated_in_year_one_are_refused(mad_descendante, territory):
    opinion = OpinionForm(
        {
            "organisation": territory.commune_a.pk,
            "body": "CST",
            "date": "0001-01-01",
            "opinion": "FAVOURABLE",
        },
        convention=mad_descendante.convention,
    )
    assert not opinion.is_valid()
    assert "Date invraisemblable (01/01/0001)" in str(opinion.errors["date"])
    deliberation = DeliberationForm(
        {
            "organisation": territory.epci.pk,
            "assembly": "Conseil",
            "date": "0001-01-01",
            "number": "1",
            "vote": "ADOPTED",
        },
        convention=mad_descendante.convention,
    )
    assert not deliberation.is_valid()
    assert "Date invraisemblable" in str(deliberation.errors["date"])


def test_a_plausible_date_is_accepted(mad_descendante, territory):
    opinion = OpinionForm(
        {
            "organisation": territory.commune_a.pk,
            "body": "CST",
            "date": date(2025, 11, 1).isoformat(),
            "opinion": "FAVOURABLE",
        },
        convention=mad_descendante.convention,
    )
    assert opinion.is_valid(), opinion.errors
