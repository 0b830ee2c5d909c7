"""The defects schemathesis found in the REST API, each proven fixed: every error answer is
documented in the one error shape; Django's own errors under /api/ answer JSON; documents
(CSV, PDF) reach a client that asks for their type; a convention's optional avenant numbers
are documented as nullable."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.throttling import UserRateThrottle

from costing import statements
from tests.costing.conftest import (  # noqa: F401 (fixtures of a billed convention)
    add_deliberations,
    after_year_end,
    billed,
    mad_descendante,
    unit_cost_kwargs,
)
from tests.mutualisation.test_api_schema import load_schema

SCHEMA_URL = "/api/v1/schema/"


@pytest.fixture
def schema_document(db, client):
    return client.get(SCHEMA_URL, HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


@pytest.fixture
def finance_token(personas):
    return Token.objects.create(user=personas.finance).key


def error_ref(response: dict) -> str:
    return response["content"]["application/json"]["schema"]["$ref"]


def test_every_operation_documents_its_error_answers_in_the_error_shape(schema_document):
    paths = schema_document["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            expected = {"400", "401", "429"}
            # A resource, or a page of a list (a creation on a list has no page).
            if "{" in path or (method == "get" and path.endswith("s/")):
                expected |= {"403", "404"}
            assert expected <= set(responses), f"{method} {path}: {sorted(responses)}"
            for status in expected:
                assert error_ref(responses[status]) == "#/components/schemas/Error", path
    error = schema_document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"detail", "code"}
    assert set(error["properties"]) == {"detail", "code", "fields", "missing", "target"}


def test_a_throttled_client_is_answered_429_in_the_error_shape(client, finance_token, monkeypatch):
    cache.clear()
    monkeypatch.setattr(UserRateThrottle, "rate", "2/min", raising=False)
    auth = {"HTTP_AUTHORIZATION": f"Token {finance_token}"}
    for _ in range(2):
        assert client.get("/api/v1/organisations/", **auth).status_code == 200
    response = client.get("/api/v1/organisations/", **auth)
    cache.clear()
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "throttled"
    assert response.json()["detail"].startswith("Requête ralentie")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/reimbursements/1999/",  # a year out of the budget years: no URL matches
        "/api/v1/reimbursements/10000/",
        "/api/v1/nothing-here/",
    ],
)
def test_an_api_address_that_matches_nothing_is_a_json_404(client, finance_token, path):
    response = client.get(path, HTTP_AUTHORIZATION=f"Token {finance_token}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Ressource introuvable.", "code": "not_found"}


def test_a_site_page_that_does_not_exist_stays_an_html_page(db, client):
    response = client.get("/nulle-part/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_nul_character_in_an_api_query_is_a_json_400(client, finance_token):
    response = client.get(
        "/api/v1/conventions/?kind=%00", HTTP_AUTHORIZATION=f"Token {finance_token}"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Requête invalide.", "code": "bad_request"}


def test_each_open_data_address_documents_the_one_format_it_answers(schema_document):
    paths = schema_document["paths"]
    as_json = paths["/api/v1/open-data/conventions.json"]["get"]["responses"]["200"]
    as_csv = paths["/api/v1/open-data/conventions.csv"]["get"]["responses"]["200"]
    assert set(as_json["content"]) == {"application/json"}
    assert set(as_csv["content"]) == {"text/csv"}


def test_the_open_data_csv_is_given_to_a_client_accepting_only_csv(db, client):
    response = client.get(
        "/api/v1/open-data/conventions.csv?territory=000000000", HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.decode().startswith("reference;title;kind;")


def test_a_statement_pdf_is_given_to_a_client_accepting_only_pdf(
    client,
    personas,
    billed,  # noqa: F811
    finance_token,
):
    draft = statements.statements_prepare(2026)[0]
    response = client.get(
        f"/api/v1/statements/{draft.pk}/pdf/",
        HTTP_ACCEPT="application/pdf",
        HTTP_AUTHORIZATION=f"Token {finance_token}",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    missing = client.get(
        "/api/v1/statements/999999/pdf/",
        HTTP_ACCEPT="application/pdf",
        HTTP_AUTHORIZATION=f"Token {finance_token}",
    )
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"


def test_a_convention_without_avenant_matches_its_documented_schema(
    personas,
    billed,  # noqa: F811
    finance_token,
    in_test_transaction,
):
    """Parties, services, terms and deliberations of the initial convention have no avenant
    number (null): the schema said an integer."""
    operation = load_schema()["/api/v1/conventions/{reference}/"]["GET"]
    case = operation.Case(path_parameters={"reference": billed.convention.reference})
    response = case.call_and_validate(headers={"Authorization": f"Token {finance_token}"})
    body = response.json()
    assert body["parties"][0]["joined_by"] is None
    assert body["services"][0]["added_by"] is None
