"""The REST API's costs, statements and reimbursements: read with a token through the screens'
scopes (a commune's token never reaches another commune's records: 404), and the year's totals
equal to the engine's, to the cent."""

import json
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from rest_framework.authtoken.models import Token

from conventions.models import ConventionService, Party, PartyRole, Status, UsageForecast
from costing import exports, services, statements
from costing.models import Statement, UsageRecord, UsageSource
from mutualisation.models import Role
from tests.costing.conftest import cost_base
from tests.factories import (
    ConventionFactory,
    MembershipFactory,
    ServiceFactory,
    TermsFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def token_client(client, user):
    key = Token.objects.create(user=user).key
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {key}"
    return client


def member(username, organisation, role):
    user = UserFactory(username=username)
    MembershipFactory(user=user, organisation=organisation, role=role)
    return user


@pytest.fixture
def b_only(billed):
    """Beside ``billed`` (communes A and B), a convention of commune B alone, on a service of
    its own with its cost base; the year's drafts prepared."""
    t = billed.territory
    service = ServiceFactory(provider=t.epci, code="voirie", name="Voirie")
    convention = ConventionFactory(status=Status.IN_FORCE, signature_date=date(2025, 12, 20))
    Party.objects.create(convention=convention, organisation=t.epci, role=PartyRole.PROVIDER)
    Party.objects.create(
        convention=convention, organisation=t.commune_b, role=PartyRole.BENEFICIARY
    )
    line = ConventionService.objects.create(
        convention=convention, service=service, unit_type=service.unit_type
    )
    terms = TermsFactory(convention=convention)
    UsageForecast.objects.create(
        terms=terms, service=line, beneficiary=t.commune_b, year=2026, units=Decimal("10")
    )
    base = cost_base(service)
    services.unit_cost_compute(base)
    UsageRecord.objects.create(
        convention=convention,
        beneficiary=t.commune_b,
        service=service,
        unit_type=service.unit_type,
        period_start=date(2026, 4, 1),
        period_end=date(2026, 4, 30),
        quantity=Decimal("3"),
        units=Decimal("3"),
        source=UsageSource.IMPORT,
    )
    statements.statements_prepare(2026)
    return SimpleNamespace(
        convention=convention,
        base=base,
        statement=Statement.objects.get(convention=convention, payer=t.commune_b),
        usage=UsageRecord.objects.get(convention=convention),
    )


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("convention", lambda b: f"/api/v1/conventions/{b.convention.reference}/"),
        ("convention PDF", lambda b: f"/api/v1/conventions/{b.convention.reference}/pdf/"),
        ("statement", lambda b: f"/api/v1/statements/{b.statement.pk}/"),
        ("statement PDF", lambda b: f"/api/v1/statements/{b.statement.pk}/pdf/"),
        ("cost base", lambda b: f"/api/v1/cost-bases/{b.base.pk}/"),
        ("usage record", lambda b: f"/api/v1/usage-records/{b.usage.pk}/"),
    ],
)
def test_a_commune_token_gets_404_on_another_communes_records(client, billed, b_only, name, path):
    t = billed.territory
    url = path(b_only)
    reader_a = token_client(client, member("api.a", t.commune_a, Role.COMMUNE_READER))
    refused = reader_a.get(url)
    assert refused.status_code == 404, name
    assert refused.json() == {"detail": "Ressource introuvable.", "code": "not_found"}
    client.defaults.clear()
    reader_b = token_client(client, member("api.b", t.commune_b, Role.COMMUNE_READER))
    assert reader_b.get(url).status_code == 200, name


def test_a_commune_token_lists_only_what_concerns_its_commune(client, billed, b_only):
    t = billed.territory
    reader_a = token_client(client, member("api.a", t.commune_a, Role.COMMUNE_READER))
    references = {c["reference"] for c in reader_a.get("/api/v1/conventions/").json()["results"]}
    assert references == {billed.convention.reference}
    payers = {s["payer"] for s in reader_a.get("/api/v1/statements/").json()["results"]}
    assert payers == {t.commune_a.pk}
    usage = reader_a.get("/api/v1/usage-records/").json()["results"]
    assert {u["beneficiary"] for u in usage} == {t.commune_a.pk}
    bases = {b["id"] for b in reader_a.get("/api/v1/cost-bases/").json()["results"]}
    assert b_only.base.pk not in bases


def test_the_years_reimbursements_from_the_api_equal_the_engines_to_the_cent(
    client, billed, b_only
):
    t = billed.territory
    finance = token_client(client, member("api.finances", t.epci, Role.FINANCE))
    response = finance.get("/api/v1/reimbursements/2026/")
    assert response.status_code == 200
    body = response.json()
    expected = exports.year_as_dict(services.compute_reimbursements(2026))
    assert body == expected
    lines = services.compute_reimbursements(2026).result.lines
    assert Decimal(body["totals"]["amount"]) == sum(x.amount for x in lines)
    assert len(body["lines"]) == 3
    assert body["totals"]["amount"] == str(sum(x.amount for x in lines))


def test_a_commune_reads_its_own_part_of_the_year_and_its_totals_only(client, billed, b_only):
    t = billed.territory
    reader_a = token_client(client, member("api.a", t.commune_a, Role.COMMUNE_READER))
    body = reader_a.get("/api/v1/reimbursements/2026/").json()
    computed = services.compute_reimbursements(2026).result
    own_lines = [x for x in computed.lines if t.commune_a.pk in (x.payer.id, x.payee.id)]
    assert own_lines
    assert [line["payer"]["siren"] for line in body["lines"]] == [t.commune_a.siren] * len(
        own_lines
    )
    assert Decimal(body["totals"]["amount"]) == sum(x.amount for x in own_lines)
    assert {s["payer"]["siren"] for s in body["settlements"]} == {t.commune_a.siren}
    assert [p["organisation"]["siren"] for p in body["positions"]] == [t.commune_a.siren]
    assert body["findings"] == []
    assert t.commune_b.siren not in json.dumps(body)


def test_an_account_without_role_is_refused_the_year(client, billed):
    outsider = token_client(client, UserFactory(username="api.exterieur"))
    response = outsider.get("/api/v1/reimbursements/2026/")
    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}


def test_a_statement_pdf_from_the_api_is_the_one_the_screens_give(client, billed, b_only):
    t = billed.territory
    finance = token_client(client, member("api.finances", t.epci, Role.FINANCE))
    statement = b_only.statement
    response = finance.get(f"/api/v1/statements/{statement.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    detail = finance.get(f"/api/v1/statements/{statement.pk}/").json()
    assert detail["total"] == str(statement.total)
    assert [line["amount"] for line in detail["lines"]] == [
        str(line.amount) for line in statement.lines.order_by("position")
    ]
