"""Conventions in the REST API: what the screens show, as data; legal transitions through the
same gates (refused: 409 with everything missing, in French); the open data of the conventions
in force, public acts without personal data."""

import csv
import io
from datetime import date

import pytest
from rest_framework.authtoken.models import Token

from conventions.models import AgentAssignment, AgentRegime, Convention, Status
from tests.conventions.conftest import add_deliberations
from tests.costing.conftest import (  # noqa: F401 (fixtures)
    after_year_end,
    billed,
    unit_cost_kwargs,
)
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def with_token(client, user):
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    return client


def test_a_convention_reads_with_its_parties_services_terms_and_deliberations(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    add_deliberations(convention, [territory.epci, territory.commune_a])
    body = (
        with_token(client, personas.reader_a)
        .get(f"/api/v1/conventions/{convention.reference}/")
        .json()
    )
    assert body["reference"] == convention.reference
    assert body["status"] == Status.DRAFT
    assert body["direction"] == "DESCENDANTE"
    assert [(p["organisation_name"], p["role"]) for p in body["parties"]] == [
        (p.organisation.name, p.role) for p in convention.parties.all()
    ]
    assert [s["code"] for s in body["services"]] == [mad_descendante.service.code]
    assert body["terms_in_force"]["settlement_mode"] == mad_descendante.terms.settlement_mode
    assert {d["organisation_name"] for d in body["deliberations"]} == {
        territory.epci.name,
        territory.commune_a.name,
    }
    assert body["pdf"].endswith(f"/api/v1/conventions/{convention.reference}/pdf/")
    pdf = client.get(body["pdf"])
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")


def test_a_refused_transition_answers_409_with_everything_missing_in_french(
    client, personas, mad_descendante
):
    convention = mad_descendante.convention
    with_token(client, personas.manager)
    url = f"/api/v1/conventions/{convention.reference}/transitions/"
    assert client.post(url + "submit/", {}, content_type="application/json").status_code == 200
    refused = client.post(url + "deliberate/", {}, content_type="application/json")
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "transition_refused"
    assert body["target"] == Status.DELIBERATED
    assert body["detail"].startswith("Passage au statut « Délibérée » refusé")
    [gap] = [g for g in body["missing"] if g.startswith("Délibération approuvant")]
    for party in convention.parties.all():
        assert party.organisation.name in gap
    convention.refresh_from_db()
    assert convention.status == Status.CONSULTATION


def test_a_transition_is_the_managers_a_reader_is_refused(client, personas, mad_descendante):
    convention = mad_descendante.convention
    url = f"/api/v1/conventions/{convention.reference}/transitions/submit/"
    assert with_token(client, personas.reader_a).post(url).status_code == 403
    client.defaults.clear()
    assert with_token(client, personas.finance).post(url).status_code == 403
    client.defaults.clear()
    unknown = with_token(client, personas.manager).post(
        f"/api/v1/conventions/{convention.reference}/transitions/abolish/"
    )
    assert unknown.status_code == 404
    convention.refresh_from_db()
    assert convention.status == Status.DRAFT


def test_signing_without_a_date_is_refused_with_the_gap(client, personas, billed):  # noqa: F811
    with_token(client, personas.manager)
    convention = billed.convention
    convention.status = Status.DELIBERATED
    convention.signature_date = None
    convention.save()
    refused = client.post(
        f"/api/v1/conventions/{convention.reference}/transitions/sign/",
        {"signature_date": "pas une date"},
        content_type="application/json",
    )
    assert refused.status_code == 400
    assert refused.json()["fields"]["signature_date"][0].startswith("La date n'a pas le bon")


def test_the_open_data_lists_the_conventions_in_force_as_public_acts(client, billed, territory):  # noqa: F811
    convention = billed.convention
    convention.status = Status.IN_FORCE
    convention.save()
    AgentAssignment.objects.create(
        convention=convention,
        agent_ref="AGENT-0042",
        job_title="Instructeur",
        employer=territory.epci,
        regime=AgentRegime.choices[0][0],
        share_percent=50,
        functional_authority="Maire",
        hierarchical_authority="Président",
        start_date=date(2026, 1, 1),
    )
    response = client.get("/api/v1/open-data/conventions.json")  # no token: public
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["reference"] == convention.reference
    assert row["territory_siren"] == territory.epci.siren
    assert {p["siren"] for p in row["parties"]} == {
        territory.epci.siren,
        territory.commune_a.siren,
        territory.commune_b.siren,
    }
    assert len(row["deliberations"]) == 3
    text = response.content.decode()
    assert "AGENT-0042" not in text
    assert "Instructeur" not in text
    csv_response = client.get(f"/api/v1/open-data/conventions.csv?territory={territory.epci.siren}")
    assert csv_response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(csv_response.content.decode()), delimiter=";"))
    assert [r["reference"] for r in rows] == [convention.reference]
    assert territory.commune_a.name in rows[0]["parties"]
    assert "AGENT-0042" not in csv_response.content.decode()


def test_the_open_data_leaves_out_drafts_and_other_territories(client, billed, mad_descendante):  # noqa: F811
    Convention.objects.filter(pk=billed.convention.pk).update(status=Status.SIGNED)
    signed = client.get("/api/v1/open-data/conventions.json").json()
    assert signed["results"] == []  # signed, not in force
    billed.convention.status = Status.IN_FORCE
    billed.convention.save()
    other = client.get("/api/v1/open-data/conventions.json?territory=000000000").json()
    assert other["results"] == []


def new_convention(territory, service, **changes):
    payload = {
        "title": "Mise à disposition du service informatique",
        "kind": "MISE_A_DISPOSITION",
        "object": "La Métropole met son service informatique à la disposition de la commune A.",
        "start_date": "2027-01-01",
        "terms": {
            "settlement_mode": "TITRE",
            "periodicity_months": 12,
            "instalment_count": 0,
            "unit_cost_method": "Coût de fonctionnement ÷ heures d'intervention.",
            "tacit_renewal": False,
            "notice_months": 3,
        },
        "parties": [
            {"organisation": territory.epci.pk, "role": "PROVIDER"},
            {"organisation": territory.commune_a.pk, "role": "BENEFICIARY"},
        ],
        "services": [{"service": service.pk}],
    }
    return {**payload, **changes}


def test_a_manager_creates_a_draft_through_the_screens_rules(client, personas, territory):
    service = ServiceFactory(provider=territory.epci, code="si", name="Informatique")
    with_token(client, personas.manager)
    created = client.post(
        "/api/v1/conventions/", new_convention(territory, service), content_type="application/json"
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    convention = Convention.objects.get(reference=body["reference"])
    assert convention.status == Status.DRAFT
    assert convention.territory == territory.epci
    assert body["direction"] == "DESCENDANTE"
    assert {(p["organisation"], p["role"]) for p in body["parties"]} == {
        (territory.epci.pk, "PROVIDER"),
        (territory.commune_a.pk, "BENEFICIARY"),
    }
    assert body["terms_in_force"]["periodicity_months"] == 12
    assert [s["code"] for s in body["services"]] == ["si"]


def test_an_invalid_draft_is_refused_whole_with_each_error_at_its_path(client, personas, territory):
    service = ServiceFactory(provider=territory.epci)
    with_token(client, personas.manager)
    payload = new_convention(territory, service)
    payload["terms"]["periodicity_months"] = 13
    payload["parties"][1]["role"] = "INCONNU"
    before = Convention.objects.count()
    refused = client.post("/api/v1/conventions/", payload, content_type="application/json")
    assert refused.status_code == 400
    fields = refused.json()["fields"]
    assert fields["terms.periodicity_months"] == [
        "La périodicité des remboursements ne peut dépasser 12 mois (D5211-16)."
    ]
    assert "parties.1.role" in fields
    assert Convention.objects.count() == before


def test_only_a_manager_creates_a_convention(client, personas, territory):
    service = ServiceFactory(provider=territory.epci)
    for persona in (personas.reader_a, personas.finance, personas.outsider):
        client.defaults.clear()
        with_token(client, persona)
        refused = client.post(
            "/api/v1/conventions/",
            new_convention(territory, service),
            content_type="application/json",
        )
        assert refused.status_code == 403
    assert not Convention.objects.exists()


def patch(client, convention, data):
    return client.patch(
        f"/api/v1/conventions/{convention.reference}/", data, content_type="application/json"
    )


def test_a_manager_changes_a_drafts_text_and_terms_keeping_the_rest(
    client, personas, mad_descendante
):
    convention = mad_descendante.convention
    forecasts = sorted(mad_descendante.terms.forecasts.values_list("beneficiary_id", "units"))
    with_token(client, personas.manager)
    changed = patch(
        client,
        convention,
        {
            "version": convention.version,
            "title": "MAD du service informatique",
            "terms": {"periodicity_months": 6, "tacit_renewal": True},
        },
    )
    assert changed.status_code == 200, changed.json()
    convention.refresh_from_db()
    terms = convention.terms.get(amendment__isnull=True)
    assert convention.title == "MAD du service informatique"
    assert (terms.periodicity_months, terms.tacit_renewal) == (6, True)
    assert convention.parties.count() == 3
    assert convention.services.count() == 1
    assert sorted(terms.forecasts.values_list("beneficiary_id", "units")) == forecasts
    stale = patch(client, convention, {"version": convention.version - 1, "title": "Autre"})
    assert stale.status_code == 409
    assert "a été modifiée par" in stale.json()["detail"]
    convention.refresh_from_db()
    assert convention.title == "MAD du service informatique"


def test_a_change_is_refused_whole_with_its_errors_and_never_on_parties(
    client, personas, mad_descendante
):
    convention = mad_descendante.convention
    with_token(client, personas.manager)
    invalid = patch(client, convention, {"title": "", "terms": {"periodicity_months": 24}})
    assert invalid.status_code == 400
    fields = invalid.json()["fields"]
    assert "title" in fields
    assert fields["terms.periodicity_months"] == [
        "La périodicité des remboursements ne peut dépasser 12 mois (D5211-16)."
    ]
    parties = patch(client, convention, {"parties": []})
    assert parties.status_code == 400
    assert parties.json()["fields"]["parties"] == [
        "Ce champ ne se modifie pas par l'API : utilisez l'écran."
    ]
    convention.refresh_from_db()
    assert convention.title == "MAD descendante SI"


def test_a_deliberated_convention_changes_only_by_avenant(client, personas, billed):  # noqa: F811
    with_token(client, personas.manager)
    refused = patch(client, billed.convention, {"title": "Autre intitulé"})
    assert refused.status_code == 409
    assert refused.json()["detail"] == (
        "Une convention délibérée ne se modifie plus que par avenant."
    )
    client.defaults.clear()
    with_token(client, personas.reader_a)
    assert patch(client, billed.convention, {"title": "x"}).status_code == 403


def test_the_acts_system_records_the_deliberations_then_the_convention_is_deliberated(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    base = f"/api/v1/conventions/{convention.reference}/"
    with_token(client, personas.manager)
    submit = client.post(base + "transitions/submit/", {}, content_type="application/json")
    assert submit.status_code == 200
    rows = [
        {
            "organisation": organisation.pk,
            "assembly": "Conseil municipal",
            "date": "2025-12-10",
            "number": f"D2025-{index}",
            "votes_for": 20,
            "votes_against": 1,
        }
        for index, organisation in enumerate(
            [territory.epci, territory.commune_a, territory.commune_b], start=1
        )
    ]
    wrong = [dict(rows[0]), {**rows[1], "date": "2999-01-01"}]
    refused = client.post(
        base + "deliberations/", {"deliberations": wrong}, content_type="application/json"
    )
    assert refused.status_code == 400
    assert list(refused.json()["fields"]) == ["deliberations.1.date"]
    assert not convention.deliberations.exists()
    created = client.post(
        base + "deliberations/", {"deliberations": rows}, content_type="application/json"
    )
    assert created.status_code == 201, created.json()
    assert [d["number"] for d in created.json()] == ["D2025-1", "D2025-2", "D2025-3"]
    deliberate = client.post(base + "transitions/deliberate/", {}, content_type="application/json")
    assert deliberate.status_code == 200, deliberate.json()
    deliberation = convention.deliberations.get(number="D2025-2")
    published = client.post(
        base + f"deliberations/{deliberation.pk}/publicity/",
        {
            "transmitted_on": "2025-12-12",
            "acknowledgement_number": "063-216300145-20251212",
            "published_on": "2025-12-12",
        },
        content_type="application/json",
    )
    assert published.status_code == 200, published.json()
    deliberation.refresh_from_db()
    assert deliberation.transmitted_on == date(2025, 12, 12)
    assert deliberation.acknowledgement_number == "063-216300145-20251212"
    closed = client.post(
        base + "deliberations/", {"deliberations": rows[:1]}, content_type="application/json"
    )
    assert closed.status_code == 409
    client.defaults.clear()
    with_token(client, personas.reader_a)
    assert (
        client.post(
            base + f"deliberations/{deliberation.pk}/publicity/",
            {},
            content_type="application/json",
        ).status_code
        == 403
    )


def test_the_signed_conventions_publicity_is_recorded(client, personas, billed):  # noqa: F811
    convention = billed.convention
    # (billed is in force: back to signed, its publicity not recorded yet)
    Convention.objects.filter(pk=convention.pk).update(
        status=Status.SIGNED, transmitted_on=None, acknowledgement_number="", notified_on=None
    )
    base = f"/api/v1/conventions/{convention.reference}/"
    with_token(client, personas.manager)
    invalid = client.post(
        base + "publicity/", {"transmitted_on": "2999-01-01"}, content_type="application/json"
    )
    assert invalid.status_code == 400
    assert {"acknowledgement_number", "notified_on"} <= set(invalid.json()["fields"])
    recorded = client.post(
        base + "publicity/",
        {
            "transmitted_on": "2025-12-22",
            "acknowledgement_number": "063-246300701-20251222",
            "notified_on": "2025-12-22",
        },
        content_type="application/json",
    )
    assert recorded.status_code == 200, recorded.json()
    assert recorded.json()["acknowledgement_number"] == "063-246300701-20251222"
    convention.refresh_from_db()
    assert convention.transmitted_on == date(2025, 12, 22)
