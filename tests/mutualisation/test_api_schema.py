"""The REST API keeps the promises of its OpenAPI schema (/api/v1/schema/).

The schema is a valid OpenAPI 3 document, and schemathesis, fed with that schema, calls every
GET operation of the API in-process (the WSGI application, inside the test's transaction) as
the finance officer with a token, over a billed convention with its statements: never a
server error, and every answer conforms to the schema (a documented status code, a documented
content type, a body matching the documented schema, documented headers).

Budget: ``MUTUALIS_API_FUZZ_EXAMPLES`` generated requests per operation (default below),
derandomized so that CI and a developer send the very same requests. Run it alone with::

    .venv/bin/pytest -q -p no:cacheprovider tests/mutualisation/test_api_schema.py
"""

import os
from types import SimpleNamespace

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from jsonschema.validators import validator_for
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from costing import statements
from costing.models import CostBase, Statement, UnitCost, UsageRecord
from mutualisation.models import PopulationRecord
from tests.costing.conftest import (  # noqa: F401 (fixtures of a billed convention)
    add_deliberations,
    after_year_end,
    bill,
    billed,
    cost_base,
    issue_after_review,
    mad_descendante,
    unit_cost_kwargs,
)

EXAMPLES = int(os.environ.get("MUTUALIS_API_FUZZ_EXAMPLES", "12"))
SCHEMA_URL = "/api/v1/schema/"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_world(personas, billed):  # noqa: F811
    """The billed convention in force, a cost base, the 2026 statements (one issued) and the
    finance officer's token."""
    bill(billed.convention)
    cost_base(billed.service)
    drafts = statements.statements_prepare(2026)
    issue_after_review(drafts[0])
    token = Token.objects.create(user=personas.finance)
    statement = Statement.objects.order_by("pk").first()
    # The path parameters of real objects the finance officer may see, for each resource.
    known = {
        "conventions": {"reference": billed.convention.reference},
        "cost-bases": {"id": CostBase.objects.get().pk},
        "organisations": {"id": billed.territory.commune_a.pk},
        "services": {"id": billed.service.pk},
        "statements": {"id": statement.pk},
        "unit-costs": {"id": UnitCost.objects.get().pk},
        "unit-types": {"id": billed.service.unit_type_id},
        "usage-records": {"id": UsageRecord.objects.order_by("pk").first().pk},
        "reimbursements": {"year": 2026},
    }
    if population := PopulationRecord.objects.order_by("pk").first():
        known["populations"] = {"id": population.pk}
    return SimpleNamespace(
        token=token.key, headers={"Authorization": f"Token {token.key}"}, known=known
    )


def load_schema(**kwargs):
    return schemathesis.openapi.from_wsgi(SCHEMA_URL, get_wsgi_application(), **kwargs)


def openapi_meta_schema(version: str) -> dict:
    """The OpenAPI meta-schema schemathesis ships for the document's version."""
    from schemathesis.specs.openapi import definitions

    if version.startswith("3.0"):
        return definitions.OPENAPI_30
    return definitions.OPENAPI_31


def test_the_schema_is_a_valid_openapi_3_document(db, client, in_test_transaction):
    response = client.get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    meta = openapi_meta_schema(document["openapi"])
    validator = validator_for(meta)(meta)
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
    # schemathesis reads it as well (it refuses a document it cannot use).
    assert len(list(load_schema().get_all_operations())) >= 20


def run_operation(operation, headers, examples=EXAMPLES, **fixed):
    """``EXAMPLES`` requests generated from the operation's schema (with ``fixed`` parts),
    each checked."""

    @hypothesis_settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        print_blob=False,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(**fixed))
    def check(case):
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


def test_every_get_operation_keeps_the_schema_s_promises(api_world, in_test_transaction):
    schema = load_schema().include(method="GET")
    failures = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        resource = operation.path.removeprefix("/api/v1/").split("/")[0]
        runs = [{}]
        if "{" in operation.path and resource in api_world.known:
            runs.append({"path_parameters": api_world.known[resource]})
        try:
            for fixed in runs:
                run_operation(operation, api_world.headers, **fixed)
        except (Exception, FailureGroup) as error:  # every operation's failures are reported
            failures.append(f"{operation.label}: {error}")
    assert operations >= 20
    assert not failures, "\n\n".join(failures)


def test_every_get_operation_answers_a_client_without_a_token_as_documented(
    api_world, in_test_transaction
):
    """No token, or an unknown one: 401 in the error shape, as documented (the open data:
    200 without a token)."""
    schema = load_schema().include(method="GET")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for headers in ({}, {"Authorization": "Token inconnu"}):
            try:
                run_operation(operation, headers, examples=2)
            except (Exception, FailureGroup) as error:
                failures.append(f"{operation.label} {headers}: {error}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("persona", ["finance", "manager"])
def test_every_write_operation_keeps_the_schema_s_promises(
    api_world, personas, in_test_transaction, persona
):
    """The writes (a draft convention created or changed, a transition, a unit cost, an
    issue, a usage batch),
    fuzzed with a small budget by the two personas who write: never a server error, every
    answer (refusals included) as the schema documents it."""
    headers = {
        "Authorization": f"Token {Token.objects.get_or_create(user=getattr(personas, persona))[0].key}"
    }
    failures = []
    operations = 0
    results = [
        result
        for method in ("POST", "PATCH")
        for result in load_schema().include(method=method).get_all_operations()
    ]
    for result in results:
        operation = result.ok()
        operations += 1
        resource = operation.path.removeprefix("/api/v1/").split("/")[0]
        runs = [{}]
        if "{" in operation.path and resource in api_world.known:
            runs.append({"path_parameters": api_world.known[resource]})
        try:
            for fixed in runs:
                run_operation(operation, headers, examples=6, **fixed)
        except (Exception, FailureGroup) as error:
            failures.append(f"{operation.label}: {error}")
    assert operations >= 7
    assert not failures, "\n\n".join(failures)
