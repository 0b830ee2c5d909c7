"""Convention forms shaped by the type: a role the law forbids for the type is neither offered
nor accepted, the territory's EPCI is pre-filled, a service commun's managing organisation is
one of its members (issue 12, « forms that guide instead of refuse »)."""

from html import unescape

import pytest
from django.urls import reverse

from conventions.models import Convention
from tests.conventions.test_views import creation_data
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def service_commun_data(territory, service, **overrides):
    return creation_data(
        territory,
        service,
        **{
            "title": "Service commun ADS",
            "kind": "SERVICE_COMMUN",
            "managing_organisation": territory.epci.pk,
            "parties-0-role": "MEMBER",
            "parties-1-role": "MEMBER",
            **overrides,
        },
    )


def test_a_service_commun_is_created_with_its_members(client, personas, territory):
    client.force_login(personas.manager)
    data = service_commun_data(territory, ServiceFactory(provider=territory.epci))
    response = client.post(reverse("conventions:create"), data)
    assert response.status_code == 302
    convention = Convention.objects.get(title="Service commun ADS")
    assert set(convention.parties.values_list("role", flat=True)) == {"MEMBER"}


def test_a_service_commun_refuses_a_provider_at_save_and_says_why(client, personas, territory):
    client.force_login(personas.manager)
    data = service_commun_data(
        territory, ServiceFactory(provider=territory.epci), **{"parties-0-role": "PROVIDER"}
    )
    response = client.post(reverse("conventions:create"), data)
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert (
        "Les parties d'un service commun en sont membres : « Prestataire » n'est pas un rôle "
        "possible pour ce type de convention." in html
    )
    assert 'value="Service commun ADS"' in html
    assert not Convention.objects.exists()


def test_a_mise_a_disposition_refuses_the_member_role_at_save(client, personas, territory):
    client.force_login(personas.manager)
    data = creation_data(
        territory, ServiceFactory(provider=territory.epci), **{"parties-1-role": "MEMBER"}
    )
    response = client.post(reverse("conventions:create"), data)
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert (
        "« Membre du service commun » est réservé aux services communs : choisissez "
        "prestataire ou bénéficiaire." in html
    )
    assert not Convention.objects.exists()


def test_a_service_communs_managing_organisation_must_be_one_of_its_members(
    client, personas, territory
):
    client.force_login(personas.manager)
    data = service_commun_data(
        territory,
        ServiceFactory(provider=territory.epci),
        managing_organisation=territory.commune_b.pk,  # not among the two parties
    )
    response = client.post(reverse("conventions:create"), data)
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert (
        "L'organisation gestionnaire doit être membre du service commun : ajoutez Commune B "
        "aux parties ou choisissez un des membres." in html
    )
    assert not Convention.objects.exists()


def test_the_creation_form_prefills_the_territorys_epci(client, personas, territory):
    client.force_login(personas.manager)
    response = client.get(reverse("conventions:create"))
    form = response.context["formsets"]["parties"].forms[0]
    assert form["organisation"].value() == territory.epci.pk
    assert response.context["form"]["managing_organisation"].value() == territory.epci.pk


def test_the_roles_offered_on_an_existing_convention_are_those_of_its_type(
    client, personas, territory
):
    client.force_login(personas.manager)
    data = service_commun_data(territory, ServiceFactory(provider=territory.epci))
    client.post(reverse("conventions:create"), data)
    convention = Convention.objects.get(title="Service commun ADS")
    response = client.get(reverse("conventions:edit", args=[convention.reference]))
    roles = [
        value
        for value, _label in response.context["formsets"]["parties"].forms[0].fields["role"].choices
        if value
    ]
    assert roles == ["MEMBER"]


def test_a_managing_organisation_outside_the_members_is_refused_at_its_own_field(
    client, personas, territory
):
    """Journey 2: the field the person chose is the one marked in error, and the summary at the
    top links to it; the parties, which may stay as they are, say nothing."""
    client.force_login(personas.manager)
    data = service_commun_data(
        territory,
        ServiceFactory(provider=territory.epci),
        managing_organisation=territory.commune_b.pk,
    )
    response = client.post(reverse("conventions:create"), data)
    assert response.status_code == 200
    assert response.context["form"].errors["managing_organisation"] == [
        "L'organisation gestionnaire doit être membre du service commun : ajoutez Commune B "
        "aux parties ou choisissez un des membres."
    ]
    assert not response.context["formsets"]["parties"].non_form_errors()
    html = unescape(response.content.decode())
    summary = html.split('id="erreurs"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#id_managing_organisation">' in summary
    assert html.count("ajoutez Commune B aux parties") == 2  # the summary and the field
