"""The Métropole's manager records the parties' deliberations from the convention's page: one
row pre-filled per party that has not deliberated, saved all at once, while the convention may
still change (issue 12, point 1)."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from conventions.models import Convention, Deliberation, Status
from mutualisation.models import Role
from tests.conventions.conftest import add_deliberations
from tests.factories import EpciFactory, MembershipFactory, OrganisationFactory, UserFactory

pytestmark = pytest.mark.django_db
TODAY = date(2026, 11, 29)


def add_url(convention, **query):
    url = reverse("conventions:deliberation-add", args=[convention.reference])
    if query:
        url += "?" + "&".join(f"{key}={value}" for key, value in query.items())
    return url


def management(total):
    return {
        "deliberations-TOTAL_FORMS": str(total),
        "deliberations-INITIAL_FORMS": "0",
        "deliberations-MIN_NUM_FORMS": "0",
        "deliberations-MAX_NUM_FORMS": "1000",
    }


def row(index, organisation, **filled):
    """A row as the page sends it: the party it was pre-filled with, the default vote, and what
    the person typed."""
    data = {"organisation": str(organisation.pk), "vote": "ADOPTED", **filled}
    return {f"deliberations-{index}-{name}": value for name, value in data.items()}


AUBIERE_LIKE = {
    "assembly": "Conseil municipal",
    "date": "2026-10-14",
    "number": "2026-10-07",
    "object": "Approbation de la convention",
    "votes_for": "21",
    "votes_against": "2",
}


def test_the_detail_page_offers_to_add_deliberations_while_the_convention_may_change(
    client, personas, mad_descendante
):
    convention = mad_descendante.convention
    client.force_login(personas.manager)
    page = client.get(convention.get_absolute_url()).content.decode()
    assert add_url(convention) in page
    assert "Ajouter une délibération" in page
    Convention.objects.filter(pk=convention.pk).update(status=Status.DELIBERATED)
    page = client.get(convention.get_absolute_url()).content.decode()
    assert add_url(convention) not in page


def test_the_form_has_one_row_per_party_that_has_not_deliberated(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    add_deliberations(convention, [territory.epci])
    client.force_login(personas.manager)
    formset = client.get(add_url(convention)).context["formset"]
    assert [form.initial["organisation"] for form in formset] == [
        territory.commune_a.pk,
        territory.commune_b.pk,
    ]
    assert [form.legend for form in formset] == [
        "Délibération de Commune A",
        "Délibération de Commune B",
    ]


def test_a_link_for_one_party_prefills_its_row_only(client, personas, mad_descendante, territory):
    convention = mad_descendante.convention
    client.force_login(personas.manager)
    formset = client.get(add_url(convention, organisation=territory.commune_b.pk)).context[
        "formset"
    ]
    assert [form.initial["organisation"] for form in formset] == [territory.commune_b.pk]


@time_machine.travel(TODAY)
def test_the_rows_filled_in_are_saved_at_once_and_the_untouched_ones_ignored(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    version = convention.version
    client.force_login(personas.manager)
    data = {
        **management(3),
        **row(0, territory.epci, **{**AUBIERE_LIKE, "number": "M-2026-55"}),
        **row(1, territory.commune_a),  # left as it came
        **row(2, territory.commune_b, **AUBIERE_LIKE),
    }
    response = client.post(add_url(convention), data)
    assert response.status_code == 302
    saved = {d.organisation: d for d in Deliberation.objects.filter(convention=convention)}
    assert set(saved) == {territory.epci, territory.commune_b}
    assert saved[territory.commune_b].votes_for == 21
    assert saved[territory.epci].amendment is None
    convention.refresh_from_db()
    assert convention.version == version + 1
    assert "2 délibérations enregistrées" in client.get(response.url).content.decode()


@time_machine.travel(TODAY)
def test_an_error_keeps_everything_typed_and_saves_nothing(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    client.force_login(personas.manager)
    data = {
        **management(2),
        **row(0, territory.epci, **{**AUBIERE_LIKE, "number": "M-2026-55"}),
        # adopted with fewer votes for than against: refused by DeliberationForm, as today
        **row(1, territory.commune_a, **{**AUBIERE_LIKE, "votes_for": "1", "votes_against": "9"}),
    }
    response = client.post(add_url(convention), data)
    assert response.status_code == 200
    assert not Deliberation.objects.filter(convention=convention).exists()
    page = response.content.decode()
    assert "M-2026-55" in page
    assert "Approbation de la convention" in page
    assert "Une délibération adoptée ne peut avoir moins de voix pour que contre." in page
    # The error is announced at the top and linked to the row's field.
    assert 'href="#id_deliberations-1-vote"' in page


def test_nothing_filled_in_is_refused_with_a_message(client, personas, mad_descendante, territory):
    convention = mad_descendante.convention
    client.force_login(personas.manager)
    data = {**management(2), **row(0, territory.commune_a), **row(1, territory.commune_b)}
    response = client.post(add_url(convention), data)
    assert response.status_code == 200
    assert "Renseignez au moins une délibération" in response.content.decode()
    assert not Deliberation.objects.exists()


@time_machine.travel(TODAY)
def test_an_organisation_that_is_not_a_party_is_refused(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    stranger = OrganisationFactory(name="Commune étrangère")
    client.force_login(personas.manager)
    data = {**management(1), **row(0, stranger, **AUBIERE_LIKE)}
    response = client.post(add_url(convention), data)
    assert response.status_code == 200
    assert not Deliberation.objects.exists()


@time_machine.travel(TODAY)
def test_a_deliberated_convention_takes_no_new_deliberation(
    client, personas, mad_descendante, territory
):
    """The same gate as « Modifier »: once deliberated, only the deliberations' transmission
    is still recorded (from the list), and an avenant's deliberations with the avenant."""
    convention = mad_descendante.convention
    Convention.objects.filter(pk=convention.pk).update(status=Status.DELIBERATED)
    client.force_login(personas.manager)
    response = client.get(add_url(convention), follow=True)
    assert response.redirect_chain[-1][0] == convention.get_absolute_url()
    assert "ajoutent plus" in response.content.decode()
    data = {**management(1), **row(0, territory.commune_a, **AUBIERE_LIKE)}
    response = client.post(add_url(convention), data)
    assert response.status_code == 302
    assert not Deliberation.objects.exists()


@time_machine.travel(TODAY)
def test_only_the_conventions_manager_reaches_the_form(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    other_manager = UserFactory(username="gestionnaire.autre")
    MembershipFactory(user=other_manager, organisation=EpciFactory(), role=Role.MANAGER)
    data = {**management(1), **row(0, territory.commune_a, **AUBIERE_LIKE)}
    for user, status in (
        (personas.reader_a, 403),
        (personas.finance, 403),
        (personas.outsider, 404),
        (other_manager, 404),
    ):
        client.force_login(user)
        assert client.get(add_url(convention)).status_code == status, user
        assert client.post(add_url(convention), data).status_code == status, user
    client.logout()
    assert client.get(add_url(convention)).status_code == 302
    assert not Deliberation.objects.exists()
