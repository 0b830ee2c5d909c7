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


def offered_organisations(html: str) -> set[str]:
    import re

    select = re.search(r'<select name="organisation".*?</select>', html, re.S).group(0)
    return {
        name.strip()
        for value, name in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select)
        if value
    }


@time_machine.travel(TODAY)
def test_the_opinion_pages_offer_and_accept_only_the_conventions_parties(
    client, personas, service_commun, territory
):
    """Issue 12, point 3: the opinion form listed every organisation of the territory."""
    convention = service_commun.convention
    outsider = OrganisationFactory(name="Commune étrangère")
    opinion = StaffBodyOpinion.objects.create(
        convention=convention,
        organisation=territory.commune_a,
        body="CST",
        date=date(2025, 11, 15),
        opinion="FAVOURABLE",
    )
    client.force_login(personas.manager)
    urls = [
        reverse("conventions:add-related", args=[convention.reference, "avis"]),
        reverse("conventions:record-edit", args=[convention.reference, "avis", opinion.pk]),
    ]
    parties = {"Métropole de test", "Commune A", "Commune B"}
    for url in urls:
        assert offered_organisations(client.get(url).content.decode()) == parties
        response = client.post(
            url,
            {
                "organisation": outsider.pk,
                "body": "CST",
                "date": "2025-11-15",
                "opinion": "FAVOURABLE",
            },
        )
        assert response.status_code == 200
        assert 'aria-invalid="true"' in response.content.decode()
    assert not StaffBodyOpinion.objects.filter(organisation=outsider).exists()
    assert StaffBodyOpinion.objects.get(pk=opinion.pk).organisation == territory.commune_a


def test_an_opinion_form_without_its_convention_offers_no_organisation(territory):
    """Never the whole list of organisations: the parties, or nothing to choose."""
    form = OpinionForm(
        {
            "organisation": territory.commune_a.pk,
            "body": "CST",
            "date": "2025-11-15",
            "opinion": "FAVOURABLE",
        }
    )
    assert list(form.fields["organisation"].queryset) == []
    assert not form.is_valid()
    assert "organisation" in form.errors
