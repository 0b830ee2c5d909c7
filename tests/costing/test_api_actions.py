"""Finance's actions in the REST API: a unit cost computed and notified, a statement issued,
the year's files exported, through the same services and checks as the screens (refused: 409
with the reasons, in French)."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.authtoken.models import Token

from costing import statements
from costing.models import CostBase, Statement, StatementStatus, UnitCost
from mutualisation.models import Role
from tests.costing.conftest import PARIS, cost_base
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def as_user(client, username, organisation, role):
    user = UserFactory(username=username)
    MembershipFactory(user=user, organisation=organisation, role=role)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    return client


def post(client, url, data=None):
    return client.post(url, data or {}, content_type="application/json")


def test_finance_computes_then_notifies_a_unit_cost_which_is_then_frozen(client, billed):
    t = billed.territory
    UnitCost.objects.filter(service=billed.service).delete()
    base = cost_base(billed.service, "448278.27")
    base.reference_units = Decimal("1850")
    base.save()
    as_user(client, "api.finances", t.epci, Role.FINANCE)
    url = f"/api/v1/cost-bases/{base.pk}/"
    computed = post(client, url + "compute-unit-cost/")
    assert computed.status_code == 201
    assert computed.json()["amount"] == "242.31"  # 448 278,27 € ÷ 1 850 (docs/costing.md)
    invalid = post(client, url + "notify-unit-cost/", {"notified_on": "31/02/2026"})
    assert invalid.status_code == 400
    assert list(invalid.json()["fields"]) == ["notified_on"]
    notified = post(client, url + "notify-unit-cost/", {"notified_on": "2026-03-30"})
    assert notified.status_code == 200
    assert notified.json()["notified_on"] == "2026-03-30"
    again = post(client, url + "compute-unit-cost/")
    assert again.status_code == 409
    assert again.json()["code"] == "refused"
    assert "notifié" in again.json()["detail"]
    assert UnitCost.objects.filter(service=billed.service).count() == 1


def test_a_commune_reader_and_a_manager_may_not_compute_a_unit_cost(client, billed):
    t = billed.territory
    base = cost_base(billed.service)
    url = f"/api/v1/cost-bases/{base.pk}/compute-unit-cost/"
    assert post(as_user(client, "api.a", t.commune_a, Role.COMMUNE_READER), url).status_code == 403
    client.defaults.clear()
    assert post(as_user(client, "api.g", t.epci, Role.MANAGER), url).status_code == 403
    assert UnitCost.objects.filter(service=billed.service, year=2026).count() == 1


def test_finance_issues_a_statement_once_the_communes_review_is_over(client, billed):
    t = billed.territory
    statements.statements_prepare(2026)
    draft = Statement.objects.get(convention=billed.convention, payer=t.commune_a)
    as_user(client, "api.finances", t.epci, Role.FINANCE)
    url = f"/api/v1/statements/{draft.pk}/issue/"
    early = post(client, url)
    assert early.status_code == 409
    assert early.json()["code"] == "statement_refused"
    assert early.json()["missing"]  # the review window still open, said in French
    draft.refresh_from_db()
    assert draft.status == StatementStatus.DRAFT
    after_review = datetime.combine(draft.review_until + timedelta(days=1), datetime.min.time())
    with time_machine.travel(after_review.replace(hour=10, tzinfo=PARIS)):
        issued = post(client, url)
    assert issued.status_code == 200
    body = issued.json()
    assert body["status"] == StatementStatus.ISSUED
    assert body["number"]
    assert body["total"] == str(Statement.objects.get(pk=draft.pk).total)


def test_only_finance_of_the_territory_issues(client, billed):
    t = billed.territory
    statements.statements_prepare(2026)
    draft = Statement.objects.get(convention=billed.convention, payer=t.commune_a)
    url = f"/api/v1/statements/{draft.pk}/issue/"
    assert post(as_user(client, "api.a", t.commune_a, Role.COMMUNE_READER), url).status_code == 403
    client.defaults.clear()
    assert post(as_user(client, "api.b", t.commune_b, Role.COMMUNE_READER), url).status_code == 404
    client.defaults.clear()
    assert post(as_user(client, "api.g", t.epci, Role.MANAGER), url).status_code == 403
    draft.refresh_from_db()
    assert draft.status == StatementStatus.DRAFT


def test_finance_exports_the_years_files_and_no_one_else(client, billed):
    t = billed.territory
    as_user(client, "api.finances", t.epci, Role.FINANCE)
    titres = client.get("/api/v1/exports/2026/titres.csv")
    assert titres.status_code == 200
    assert titres["Content-Type"].startswith("text/csv")
    xlsx = client.get("/api/v1/exports/2026/lignes.xlsx")
    assert xlsx.status_code == 200
    assert xlsx.content.startswith(b"PK")
    unknown = client.get("/api/v1/exports/2026/inconnu.csv")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "Export inconnu.", "code": "not_found"}
    client.defaults.clear()
    as_user(client, "api.a", t.commune_a, Role.COMMUNE_READER)
    assert client.get("/api/v1/exports/2026/titres.csv").status_code == 403


def base_payload(service, **changes):
    return {
        "service": service.pk,
        "year": 2027,
        "source": "CA",
        "source_year": 2025,
        "reference_units": "1850",
        "reference_basis": "FORECAST",
        "lines": [
            {
                "label": "Agents",
                "category": "PERSONNEL",
                "account": "6411",
                "accounts_amount": "400000.00",
                "budget_adjustment": "8278.27",
            },
            {
                "label": "Logiciels",
                "category": "SUPPLIES",
                "account": "6051",
                "accounts_amount": "40000.00",
            },
        ],
        **changes,
    }


def test_finance_creates_then_replaces_a_cost_base_with_its_lines(client, billed):
    t = billed.territory
    as_user(client, "api.finances", t.epci, Role.FINANCE)
    created = client.post(
        "/api/v1/cost-bases/", base_payload(billed.service), content_type="application/json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert [line["accounts_amount"] for line in body["lines"]] == ["400000.00", "40000.00"]
    computed = post(client, f"/api/v1/cost-bases/{body['id']}/compute-unit-cost/")
    assert computed.json()["amount"] == "242.31"  # 448 278,27 € ÷ 1 850
    replaced = client.put(
        f"/api/v1/cost-bases/{body['id']}/",
        base_payload(
            billed.service,
            version=body["version"],
            lines=[
                {
                    "label": "Agents",
                    "category": "PERSONNEL",
                    "account": "6411",
                    "accounts_amount": "370000.00",
                }
            ],
        ),
        content_type="application/json",
    )
    assert replaced.status_code == 200, replaced.json()
    assert [line["label"] for line in replaced.json()["lines"]] == ["Agents"]
    stale = client.put(
        f"/api/v1/cost-bases/{body['id']}/",
        base_payload(billed.service, version=body["version"]),
        content_type="application/json",
    )
    assert stale.status_code == 409
    assert "a été modifiée par" in stale.json()["detail"]


def test_a_cost_base_with_a_bad_line_is_refused_whole_naming_the_line(client, billed):
    t = billed.territory
    as_user(client, "api.finances", t.epci, Role.FINANCE)
    payload = base_payload(billed.service)
    payload["lines"][1]["account"] = "60.51"
    refused = client.post("/api/v1/cost-bases/", payload, content_type="application/json")
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["lines.1.account"]
    assert refused.json()["fields"]["lines.1.account"][0].startswith("Le compte M57")
    assert not CostBase.objects.filter(year=2027).exists()
    client.defaults.clear()
    as_user(client, "api.g", t.epci, Role.MANAGER)
    refused = client.post(
        "/api/v1/cost-bases/", base_payload(billed.service), content_type="application/json"
    )
    assert refused.status_code == 403


def test_a_cost_base_is_replaced_whole_never_patched(client, billed):
    # Found by the fuzzing (tests/mutualisation/test_api_schema.py): a PATCH was a 500.
    t = billed.territory
    base = cost_base(billed.service)
    as_user(client, "api.finances", t.epci, Role.FINANCE)
    response = client.patch(f"/api/v1/cost-bases/{base.pk}/", {}, content_type="application/json")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
