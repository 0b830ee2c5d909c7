"""POST /api/v1/usage-records/bulk/: counting tools (ticketing, ADS instruction) record usage
in bulk, checked by the very rules of the usage file import, all or nothing, idempotent by
each record's external reference, only by the staff who may record usage."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.urls import reverse
from rest_framework.authtoken.models import Token

from costing import services, statements
from costing.models import UsageRecord, UsageSource
from costing.resources import import_usage_file
from mutualisation.models import UnitWeight
from tests.costing.conftest import issue_after_review

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage-records/bulk/"


@pytest.fixture
def weights(billed):
    unit_type = billed.service.unit_type
    return {
        "PC": UnitWeight.objects.create(
            unit_type=unit_type, code="PC", label="Permis", weight=Decimal("1")
        ),
        "DP": UnitWeight.objects.create(
            unit_type=unit_type, code="DP", label="Déclaration", weight=Decimal("0.5")
        ),
        "CU": UnitWeight.objects.create(
            unit_type=unit_type, code="CU", label="Certificat", weight=Decimal("0.2")
        ),
    }


def token(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def post(client, user, records):
    key = token(user)
    return client.post(
        URL,
        {"records": records},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {key}",
    )


def record(billed, commune, number, *, month="2026-05", quantity="12.5", weight="DP", **extra):
    values = {
        "external_reference": f"ADS-2026-{number:04d}",
        "convention": billed.convention.reference,
        "beneficiary_siren": commune.siren,
        "service": billed.service.code,
        "month": month,
        "quantity": quantity,
        "weight": weight,
    }
    values.update(extra)
    return values


def batch(billed):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    return [
        record(billed, a, 1, quantity="12.5", weight="DP"),
        record(billed, a, 2, month="2026-06", quantity="3", weight="PC"),
        record(billed, b, 3, quantity="7", weight="CU"),
        record(billed, b, 4, month="2026-07", quantity="1.25", weight=""),
    ]


def test_the_url_is_the_usage_records_bulk_action():
    assert reverse("api:usagerecord-bulk") == URL


def test_a_valid_batch_creates_its_records_with_the_weighted_units(
    client, personas, billed, weights
):
    before = UsageRecord.objects.count()
    response = post(client, personas.finance, batch(billed))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["created"], body["already_present"]) == (4, 0)
    assert [(r["index"], r["status"]) for r in body["records"]] == [
        (0, "created"),
        (1, "created"),
        (2, "created"),
        (3, "created"),
    ]
    assert UsageRecord.objects.count() == before + 4
    created = {r.external_reference: r for r in UsageRecord.objects.exclude(external_reference="")}
    expected = {
        "ADS-2026-0001": (Decimal("12.5"), weights["DP"], Decimal("6.250")),
        "ADS-2026-0002": (Decimal("3"), weights["PC"], Decimal("3.000")),
        "ADS-2026-0003": (Decimal("7"), weights["CU"], Decimal("1.400")),
        "ADS-2026-0004": (Decimal("1.25"), None, Decimal("1.250")),
    }
    for reference, (quantity, weight, units) in expected.items():
        saved = created[reference]
        assert (saved.quantity, saved.weight, saved.units) == (quantity, weight, units)
        assert saved.units == services.weighted_units(quantity, weight)
        assert (saved.source, saved.recorded_by) == (UsageSource.API, personas.finance)
        assert saved.reference == reference  # shown in the état des recours
    first = created["ADS-2026-0001"]
    assert (str(first.period_start), str(first.period_end)) == ("2026-05-01", "2026-05-31")
    assert body["records"][0]["id"] == first.pk
    assert body["records"][0]["units"] == "6.250"


def test_a_period_of_one_whole_month_is_accepted_instead_of_the_month(
    client, personas, billed, weights
):
    values = record(billed, billed.territory.commune_a, 1)
    del values["month"]
    values.update(period_start="2026-05-01", period_end="2026-05-31")
    response = post(client, personas.manager, [values])
    assert response.status_code == 201, response.json()
    saved = UsageRecord.objects.get(external_reference="ADS-2026-0001")
    assert str(saved.period_start) == "2026-05-01"


def test_a_period_other_than_one_whole_month_is_refused_in_french(
    client, personas, billed, weights
):
    values = record(billed, billed.territory.commune_a, 1)
    del values["month"]
    values.update(period_start="2026-05-03", period_end="2026-06-30")
    response = post(client, personas.finance, [values])
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "records.0.period_start": [
            "La période doit couvrir exactement un mois civil (du 1er au dernier jour du "
            "mois) : indiquez plutôt « month » (AAAA-MM)."
        ]
    }


def test_one_invalid_record_among_valid_ones_creates_nothing_and_names_its_index(
    client, personas, billed, weights
):
    records = batch(billed)
    records[2]["month"] = "2026-13"
    before = UsageRecord.objects.count()
    response = post(client, personas.finance, records)
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["detail"]) == ("invalid", "Les données envoyées sont invalides.")
    assert body["fields"] == {
        "records.2.month": ["Mois invalide « 2026-13 » : attendu AAAA-MM (ex. 2025-03)."]
    }
    assert UsageRecord.objects.count() == before


def test_every_invalid_record_is_listed_with_its_french_reason(client, personas, billed, weights):
    records = batch(billed)
    records[0]["quantity"] = "-3"
    records[1]["service"] = "inconnu"
    records[2]["weight"] = "XX"
    records[3]["beneficiary_siren"] = billed.territory.epci.siren
    records.append(record(billed, billed.territory.commune_a, 5, quantity="1.23456"))
    records.append({"convention": billed.convention.reference})
    before = UsageRecord.objects.count()
    response = post(client, personas.finance, records)
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert fields["records.0.quantity"] == [
        "Quantité négative : l'API n'enregistre que des recours ; un ajustement se saisit à "
        "l'écran, avec son motif."
    ]
    assert fields["records.1.service"] == ["Service « inconnu » inconnu."]
    assert fields["records.2.weight"] == [
        f"Pondération « XX » inconnue pour l'unité « {billed.service.unit_type} »."
    ]
    assert fields["records.3.beneficiary_siren"] == [
        f"{billed.territory.epci} n'est pas bénéficiaire de {billed.convention.reference}."
    ]
    assert "records.4.quantity" in fields
    assert fields["records.5.external_reference"] == ["Ce champ est obligatoire."]
    assert {key.split(".")[1] for key in fields} == {"0", "1", "2", "3", "4", "5"}
    assert UsageRecord.objects.count() == before


def test_a_month_outside_the_convention_and_a_locked_year_are_refused(
    client, personas, billed, weights
):
    a = billed.territory.commune_a
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == a)
    issue_after_review(draft)
    before = UsageRecord.objects.count()
    response = post(
        client,
        personas.finance,
        [record(billed, a, 1), record(billed, billed.territory.commune_b, 2)],
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "records.0.month": [
            "L'état n° EA-2026-0001 émis couvre les recours 2026 de Commune A : mettez-le "
            "d'abord en correction, puis modifiez les recours et émettez la correction."
        ]
    }
    assert UsageRecord.objects.count() == before


def test_resending_the_same_batch_creates_nothing_new(client, personas, billed, weights):
    assert post(client, personas.finance, batch(billed)).status_code == 201
    count = UsageRecord.objects.count()
    records = batch(billed)
    records[0]["quantity"] = "12.500"  # the same quantity, written otherwise
    records.append(record(billed, billed.territory.commune_b, 9, quantity="2"))
    response = post(client, personas.manager, records)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["created"], body["already_present"]) == (1, 4)
    assert [r["status"] for r in body["records"]] == ["already_present"] * 4 + ["created"]
    assert UsageRecord.objects.count() == count + 1
    response = post(client, personas.finance, records)
    assert response.status_code == 200
    assert (response.json()["created"], response.json()["already_present"]) == (0, 5)
    assert UsageRecord.objects.count() == count + 1


def test_an_external_reference_recorded_with_other_values_is_refused_never_overwritten(
    client, personas, billed, weights
):
    assert post(client, personas.finance, batch(billed)).status_code == 201
    count = UsageRecord.objects.count()
    records = batch(billed)
    records[1]["quantity"] = "4"
    records.append(record(billed, billed.territory.commune_b, 9, quantity="2"))
    response = post(client, personas.finance, records)
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict"
    assert body["fields"] == {
        "records.1.external_reference": [
            f"La référence externe « ADS-2026-0002 » est déjà enregistrée pour "
            f"{billed.convention.reference} avec d'autres valeurs (quantité : 3 enregistré, "
            "4 envoyé) : rien n'a été enregistré. Corrigez le recours à l'écran, ou envoyez "
            "une autre référence externe."
        ]
    }
    assert UsageRecord.objects.count() == count
    assert UsageRecord.objects.get(external_reference="ADS-2026-0002").quantity == 3


def test_one_external_reference_twice_in_a_batch_is_refused(client, personas, billed, weights):
    records = batch(billed)
    records[3]["external_reference"] = records[0]["external_reference"]
    response = post(client, personas.finance, records)
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "records.3.external_reference": [
            "Référence externe « ADS-2026-0001 » déjà envoyée pour "
            f"{billed.convention.reference} par l'enregistrement 0 de ce lot."
        ]
    }


def test_the_database_refuses_one_external_reference_twice_in_a_convention(billed):
    a = billed.territory.commune_a
    existing = UsageRecord.objects.filter(beneficiary=a).first()
    UsageRecord.objects.filter(pk=existing.pk).update(external_reference="X-1")
    twin = UsageRecord.objects.filter(beneficiary=a).exclude(pk=existing.pk).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageRecord.objects.filter(pk=twin.pk).update(external_reference="X-1")
    # blank (entered on the screens) as often as one likes
    assert UsageRecord.objects.filter(convention=billed.convention, external_reference="").count()


@pytest.mark.parametrize("persona", ["reader_a", "outsider"])
def test_a_commune_reader_and_an_outsider_cannot_post(client, personas, billed, weights, persona):
    before = UsageRecord.objects.count()
    response = post(client, getattr(personas, persona), batch(billed))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert UsageRecord.objects.count() == before


def test_another_territorys_staff_read_the_convention_as_unknown(client, billed, weights):
    from mutualisation.models import Role
    from tests.factories import EpciFactory, MembershipFactory

    elsewhere = MembershipFactory(organisation=EpciFactory(), role=Role.FINANCE).user
    before = UsageRecord.objects.count()
    response = post(client, elsewhere, batch(billed)[:1])
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "records.0.convention": [f"Convention « {billed.convention.reference} » inconnue."]
    }
    assert UsageRecord.objects.count() == before


def test_an_anonymous_request_is_refused(client, billed):
    response = client.post(URL, {"records": []}, content_type="application/json")
    assert response.status_code in (401, 403)


def test_an_empty_or_shapeless_body_is_refused_in_french(client, personas, billed):
    response = post(client, personas.finance, [])
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "records": ["Le lot ne compte aucun recours : rien à enregistrer."]
    }
    key = token(personas.manager)
    response = client.post(
        URL, [1, 2], content_type="application/json", HTTP_AUTHORIZATION=f"Token {key}"
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "limits",
    [
        {"MUTUALIS_API_BULK_MAX_RECORDS": 3},
        {"MUTUALIS_API_BULK_MAX_RECORDS": 100, "MUTUALIS_IMPORT_MAX_ROWS": 3},
    ],
)
def test_a_batch_above_the_limit_is_refused_whole(client, personas, billed, weights, limits):
    before = UsageRecord.objects.count()
    with override_settings(**limits):
        response = post(client, personas.finance, batch(billed))
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "records": [
            "Le lot compte 4 recours : 3 au plus par envoi. Découpez-le ; rien n'a été enregistré."
        ]
    }
    assert UsageRecord.objects.count() == before


def year_amounts(year):
    computed = services.compute_reimbursements(year)
    lines = sorted(
        (line.convention, line.payer.id, line.service, line.period.start, line.units, line.amount)
        for line in computed.result.lines
    )
    return computed.result.total, lines


def test_the_years_computation_after_a_bulk_upload_equals_the_one_after_the_file_import(
    client, personas, billed, weights
):
    records = batch(billed)
    assert post(client, personas.finance, records).status_code == 201
    through_api = year_amounts(2026)
    assert through_api[0] > 0
    UsageRecord.objects.filter(source=UsageSource.API).delete()
    without = year_amounts(2026)
    assert without != through_api  # the batch's records are billed
    rows = [
        ";".join(
            [
                r["convention"],
                r["beneficiary_siren"],
                r["service"],
                r["month"],
                r["quantity"].replace(".", ","),
                r["weight"],
                r["external_reference"],
            ]
        )
        for r in records
    ]
    content = (
        "convention;beneficiaire;service;mois;quantite;ponderation;reference\n"
        + "\n".join(rows)
        + "\n"
    ).encode()
    report = import_usage_file(content, "recours.csv", user=personas.finance, commit=True)
    assert report.imported, report.errors
    through_file = year_amounts(2026)
    assert through_file == through_api


def test_a_batch_sent_again_unchanged_after_its_year_is_issued_records_nothing_and_succeeds(
    client, personas, billed, weights
):
    assert post(client, personas.finance, batch(billed)).status_code == 201
    a = billed.territory.commune_a
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == a)
    issue_after_review(draft)
    count = UsageRecord.objects.count()
    response = post(client, personas.finance, batch(billed))
    assert response.status_code == 200, response.json()
    assert (response.json()["created"], response.json()["already_present"]) == (0, 4)
    changed = batch(billed)
    changed[0]["quantity"] = "13"
    response = post(client, personas.finance, changed)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["records.0.month"]
    assert UsageRecord.objects.count() == count


def test_a_conflicting_external_reference_is_listed_with_the_other_invalid_records(
    client, personas, billed, weights
):
    assert post(client, personas.finance, batch(billed)).status_code == 201
    count = UsageRecord.objects.count()
    records = batch(billed)
    records[1]["weight"] = "CU"
    records[3]["month"] = "2026-13"
    response = post(client, personas.finance, records)
    assert response.status_code == 400
    fields = response.json()["fields"]
    assert list(fields) == ["records.1.external_reference", "records.3.month"]
    assert "(pondération : PC enregistré, CU envoyé)" in fields["records.1.external_reference"][0]
    assert UsageRecord.objects.count() == count
