"""Opinions and the fiche d'impact are entered for the convention's parties, on past dates, and
no longer change once the assemblies have deliberated on them (issue 9, points 5 and 11)."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from conventions.forms import DeliberationForm, OpinionForm
from conventions.models import Convention, ImpactSheet, StaffBodyOpinion, Status
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db
TODAY = date(2026, 11, 29)


@time_machine.travel(TODAY)
def test_an_opinion_is_given_for_a_party_and_not_in_the_future(service_commun, territory):
    outsider = OrganisationFactory(name="Commune étrangère")
    form = OpinionForm(
        {"organisation": outsider.pk, "body": "CST", "date": "2026-12-15", "opinion": "FAVOURABLE"},
        convention=service_commun.convention,
    )
    assert not form.is_valid()
    assert "organisation" in form.errors  # not a party: not even offered
    assert form.errors["date"] == ["Cette date ne peut être dans le futur."]
    offered = set(form.fields["organisation"].queryset.values_list("name", flat=True))
    assert offered == {"Métropole de test", "Commune A", "Commune B"}


@time_machine.travel(TODAY)
def test_a_deliberation_cannot_be_dated_in_the_future():
    form = DeliberationForm(
        {"assembly": "Conseil municipal", "date": "2027-01-10", "number": "1", "vote": "ADOPTED"}
    )
    assert not form.is_valid()
    assert form.errors["date"] == ["Cette date ne peut être dans le futur."]


def test_the_impact_sheet_and_opinions_are_locked_once_deliberated(
    client, personas, service_commun, territory
):
    """Before: the fiche d'impact could be rewritten after the signature."""
    convention = service_commun.convention
    ImpactSheet.objects.create(
        convention=convention,
        established_on=date(2025, 10, 1),
        organisation_and_working_conditions="Regroupement.",
        pay="Maintien.",
        acquired_rights="Conservés.",
    )
    Convention.objects.filter(pk=convention.pk).update(status=Status.SIGNED)
    client.force_login(personas.manager)
    url = reverse("conventions:add-related", args=[convention.reference, "fiche-impact"])
    response = client.post(
        url,
        {
            "established_on": "2026-02-01",
            "organisation_and_working_conditions": "Réécrite après la signature.",
            "pay": "x",
            "acquired_rights": "x",
        },
        follow=True,
    )
    assert "ne se modifient plus que par avenant" in response.content.decode()
    assert ImpactSheet.objects.get(convention=convention).established_on == date(2025, 10, 1)
    response = client.post(
        reverse("conventions:add-related", args=[convention.reference, "avis"]),
        {
            "organisation": territory.commune_a.pk,
            "body": "CST",
            "date": "2025-11-15",
            "opinion": "FAVOURABLE",
        },
    )
    assert response.status_code == 302
    assert not StaffBodyOpinion.objects.filter(convention=convention).exists()
