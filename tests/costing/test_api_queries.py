"""The API's lists read a bounded number of queries, whatever the number of rows (no query per
row): counted with one and with several more billed conventions."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from costing import statements
from mutualisation.models import Role
from tests.costing.conftest import cost_base, more_billed_conventions
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

LISTS = [
    "/api/v1/organisations/",
    "/api/v1/populations/",
    "/api/v1/services/",
    "/api/v1/unit-types/",
    "/api/v1/conventions/",
    "/api/v1/cost-bases/",
    "/api/v1/unit-costs/",
    "/api/v1/usage-records/",
    "/api/v1/statements/",
]


def counts(client) -> dict[str, int]:
    found = {}
    for path in LISTS:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200, path
        found[path] = len(queries.captured_queries)
    with CaptureQueriesContext(connection) as queries:
        detail = client.get("/api/v1/conventions/").json()["results"][0]["url"]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(detail).status_code == 200
    found["detail"] = len(queries.captured_queries)
    return found


@pytest.mark.parametrize("role", [Role.FINANCE, Role.COMMUNE_READER])
def test_the_api_lists_read_as_many_queries_for_few_or_many_rows(client, billed, role):
    t = billed.territory
    user = UserFactory(username="api.compte")
    MembershipFactory(
        user=user, organisation=t.epci if role == Role.FINANCE else t.commune_a, role=role
    )
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    cost_base(billed.service)
    statements.statements_prepare(2026)
    few = counts(client)
    more_billed_conventions(billed, 4)
    statements.statements_prepare(2026)
    assert counts(client) == few
