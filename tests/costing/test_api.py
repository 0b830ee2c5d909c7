"""The REST API's costs, statements and reimbursements: read with a token through the screens'
scopes (a commune's token never reaches another commune's records: 404), and the year's totals
equal to the engine's, to the cent."""

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from rest_framework.authtoken.models import Token

from conventions.models import (
    Convention,
    ConventionService,
    Party,
    PartyRole,
    Status,
    UsageForecast,
)
from costing import engine, exports, services, statements
from costing.models import Statement, UsageRecord, UsageSource
from mutualisation.models import Role
from mutualisation.rest import Pagination
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


def all_pages(client, url):
    """The first page's body, with every page's lines and settlements."""
    first = client.get(url)
    assert first.status_code == 200
    body = first.json()
    lines, settlements, page = list(body["lines"]), list(body["settlements"]), body
    while page["next"]:
        page = client.get(page["next"]).json()
        lines += page["lines"]
        settlements += page["settlements"]
    return {**body, "lines": lines, "settlements": settlements}


def as_before(body):
    """The answer in the former shape (every line at once, no page links)."""
    paging = ("count", "settlements_count", "next", "previous")
    return {k: v for k, v in body.items() if k not in paging}


def own_part(computed, organisation_ids):
    """What the API answered a commune's reader before it read the stored results: the year
    computed over the conventions it sees, narrowed to its own lines, settlements and
    position (the former ``costing.api.own_part``)."""
    result = computed.result

    def mine(*parties):
        return any(p.id in organisation_ids for p in parties)

    lines = tuple(x for x in result.lines if mine(x.payer, x.payee))
    settlements = tuple(s for s in result.settlements if mine(s.payer, s.payee))
    own = replace(
        result,
        lines=lines,
        borne_by_payee=tuple(x for x in result.borne_by_payee if mine(x.payee)),
        settlements=settlements,
        positions=tuple(
            p for p in engine.net_positions(settlements) if p.party.id in organisation_ids
        ),
        findings=(),
        total=sum((x.amount for x in lines), engine.ZERO),
    )
    return replace(computed, result=own, findings=())


def test_the_years_reimbursements_from_the_api_equal_the_engines_to_the_cent(
    client, billed, b_only
):
    t = billed.territory
    finance = token_client(client, member("api.finances", t.epci, Role.FINANCE))
    body = all_pages(finance, "/api/v1/reimbursements/2026/?page_size=2")
    lines = body["lines"]
    expected = exports.year_as_dict(services.compute_reimbursements(2026))
    answered = as_before(body)
    findings = answered.pop("findings")
    expected_findings = expected.pop("findings")
    assert answered == expected
    # grouped by convention when stored: the same findings, in the order of the references
    assert sorted(findings, key=str) == sorted(expected_findings, key=str)
    computed = services.compute_reimbursements(2026).result.lines
    assert Decimal(body["totals"]["amount"]) == sum(x.amount for x in computed)
    assert body["count"] == len(lines) == 3
    assert body["totals"]["amount"] == str(sum(x.amount for x in computed))


def test_a_commune_reads_its_own_part_of_the_year_and_its_totals_only(client, billed, b_only):
    t = billed.territory
    reader = member("api.a", t.commune_a, Role.COMMUNE_READER)
    reader_a = token_client(client, reader)
    body = all_pages(reader_a, "/api/v1/reimbursements/2026/?page_size=1")
    lines = body["lines"]
    expected = own_part(
        services.compute_reimbursements(2026, Convention.objects.visible_to(reader)),
        {t.commune_a.pk},
    )
    assert as_before(body) == exports.year_as_dict(expected)
    computed = services.compute_reimbursements(2026).result
    own_lines = [x for x in computed.lines if t.commune_a.pk in (x.payer.id, x.payee.id)]
    assert own_lines
    assert [line["payer"]["siren"] for line in lines] == [t.commune_a.siren] * len(own_lines)
    assert Decimal(body["totals"]["amount"]) == sum(x.amount for x in own_lines)
    assert {s["payer"]["siren"] for s in body["settlements"]} == {t.commune_a.siren}
    assert [p["organisation"]["siren"] for p in body["positions"]] == [t.commune_a.siren]
    assert body["findings"] == []
    assert t.commune_b.siren not in json.dumps(body)


def test_the_years_reimbursements_are_read_from_the_stored_results_not_computed_again(
    client, billed, b_only, monkeypatch
):
    t = billed.territory
    finance = token_client(client, member("api.finances", t.epci, Role.FINANCE))
    computations = []
    compute = services.compute_reimbursements

    def counted(*args, **kwargs):
        computations.append(args)
        return compute(*args, **kwargs)

    monkeypatch.setattr(services, "compute_reimbursements", counted)
    first = finance.get("/api/v1/reimbursements/2026/").json()
    assert len(computations) == 1  # nothing stored yet: computed once, and stored
    second = finance.get("/api/v1/reimbursements/2026/").json()
    assert len(computations) == 1  # stored and unchanged: read, not computed
    assert second == first


def test_the_years_lines_come_a_bounded_page_at_a_time(client, billed, b_only):
    t = billed.territory
    finance = token_client(client, member("api.finances", t.epci, Role.FINANCE))
    body = finance.get("/api/v1/reimbursements/2026/?page_size=2").json()
    assert body["count"] == 3
    assert len(body["lines"]) == 2
    assert len(body["settlements"]) == min(2, body["settlements_count"])
    assert body["previous"] is None
    assert "page=2" in body["next"]
    assert body["totals"]["lines"] == 3  # the totals are the year's, not the page's
    last = finance.get(body["next"]).json()
    assert len(last["lines"]) == 1
    assert last["next"] is None
    assert len(finance.get("/api/v1/reimbursements/2026/?page_size=100000").json()["lines"]) == 3
    assert Pagination.max_page_size == 500  # the API's bound on any page


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
