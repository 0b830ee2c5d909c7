"""The conventions list's organisation filter: a text field (name or SIREN) that works without
JavaScript, made searchable by a small JSON endpoint; no list of every organisation is sent."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conventions.models import Party, PartyRole
from tests.factories import (
    EpciMembershipFactory,
    OrganisationFactory,
)

pytestmark = pytest.mark.django_db

SEARCH = reverse("conventions:organisations")
LIST = reverse("conventions:list")


def titles(response):
    return {row.record.title for row in response.context["table"].page.object_list}


def test_the_list_sends_no_option_per_organisation(client, personas, conventions_ab):
    for index in range(30):
        OrganisationFactory(name=f"Village {index:02d}")
    client.force_login(personas.manager)
    html = client.get(LIST).content.decode()
    assert "Village" not in html
    field = re.search(r'<input[^>]+name="organisation"[^>]*>', html).group(0)
    assert 'id="id_organisation"' in field
    assert f'data-search-url="{SEARCH}"' in field
    # Labelled, with a hint saying what to type.
    assert re.search(r'<label[^>]+for="id_organisation"[^>]*>\s*Commune ou organisation', html)
    assert "aria-describedby" in field


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("siren_a", {"Convention de la commune A"}),
        ("Commune B", {"Convention de la commune B"}),
        ("commune b", {"Convention de la commune B"}),
        ("  Commune B  ", {"Convention de la commune B"}),
        ("Métropole", {"Convention de la commune A", "Convention de la commune B"}),
        ("Personne", set()),
    ],
)
def test_the_list_filters_by_a_typed_name_or_siren_without_javascript(
    client, personas, territory, conventions_ab, typed, expected
):
    if typed == "siren_a":
        typed = territory.commune_a.siren
    client.force_login(personas.manager)
    response = client.get(LIST, {"organisation": typed})
    assert response.status_code == 200
    assert titles(response) == expected


def test_the_filter_shows_the_chosen_organisation_by_its_name(client, personas, territory):
    client.force_login(personas.manager)
    html = client.get(LIST, {"organisation": territory.commune_a.siren}).content.decode()
    field = re.search(r'<input[^>]+name="organisation"[^>]*>', html).group(0)
    assert f'value="{territory.commune_a.siren}"' in field
    assert 'data-label="Commune A"' in field


def test_a_commune_reader_cannot_filter_by_an_organisation_they_may_not_see(
    client, personas, territory, conventions_ab
):
    """Commune B is not commune A's reader's: naming it finds nothing, even on a convention
    the reader sees where B would be a party."""
    Party.objects.create(
        convention=conventions_ab["a"],
        organisation=territory.commune_b,
        role=PartyRole.BENEFICIARY,
    )
    client.force_login(personas.reader_a)
    for typed in (territory.commune_b.siren, "Commune B"):
        assert titles(client.get(LIST, {"organisation": typed})) == set()
    assert titles(client.get(LIST, {"organisation": "Commune A"})) == {"Convention de la commune A"}


def search(client, q):
    response = client.get(SEARCH, {"q": q})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    return json.loads(response.content)["results"]


def test_the_search_returns_at_most_twenty_organisations_matching_the_typed_text(
    client, personas, territory
):
    # The territory's member communes: the manager searches among them.
    for index in range(30):
        EpciMembershipFactory(
            member=OrganisationFactory(name=f"Village {index:02d}"), epci=territory.epci
        )
    EpciMembershipFactory(member=OrganisationFactory(name="Bourg"), epci=territory.epci)
    OrganisationFactory(name="Bourgade d'un autre territoire")
    client.force_login(personas.manager)
    found = search(client, "village")
    assert len(found) == 20
    assert [row["name"] for row in found] == [f"Village {index:02d}" for index in range(20)]
    assert set(found[0]) == {"siren", "name", "kind"}
    assert [row["name"] for row in search(client, "bou")] == ["Bourg"]
    assert [row["name"] for row in search(client, territory.commune_a.siren[:8])] == ["Commune A"]
    assert search(client, "") == []


def test_the_search_returns_only_the_organisations_the_user_may_see(client, personas, territory):
    client.force_login(personas.reader_a)
    assert [row["name"] for row in search(client, "Commune")] == ["Commune A"]
    assert search(client, territory.commune_b.siren) == []


def test_the_search_needs_an_account_with_a_role(client, personas):
    assert client.get(SEARCH, {"q": "Commune"}).status_code == 302
    client.force_login(personas.outsider)
    assert client.get(SEARCH, {"q": "Commune"}).status_code == 403


def test_the_search_issues_as_many_queries_whatever_the_number_of_organisations(
    client, personas, territory
):
    client.force_login(personas.manager)
    counts = []
    for _ in range(2):
        for _ in range(25):
            EpciMembershipFactory(
                member=OrganisationFactory(name="Ville nouvelle"), epci=territory.epci
            )
        with CaptureQueriesContext(connection) as captured:
            assert len(search(client, "Ville")) == 20
        counts.append(len(captured))
    assert counts[0] == counts[1]
