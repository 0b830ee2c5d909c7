"""Issue 9, point 7: an avenant may bring a commune into a service commun (or let one leave),
add or withdraw a service and change the forecasts, each with its own deliberations and, for a
service commun, an updated fiche d'impact and the CST opinions; the past stays as it was."""

from datetime import date
from decimal import Decimal as D

import pytest
import time_machine

from conventions.models import (
    Amendment,
    Deliberation,
    Opinion,
    StaffBody,
    StaffBodyOpinion,
    Terms,
)
from conventions.services import TransitionRefused, amendments, in_force
from costing import services
from costing.models import UsageRecord
from tests.conventions.conftest import add_deliberations
from tests.costing.conftest import bill, cost_base
from tests.factories import (
    EpciMembershipFactory,
    OrganisationFactory,
    PopulationRecordFactory,
)

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 28)


def avenant_terms():
    return Terms(
        settlement_mode="AC_IMPUTATION",
        periodicity_months=12,
        instalment_count=0,
        unit_cost_method="Coût du dernier compte administratif divisé par les unités.",
        managing_share_mode="NONE",
    )


@pytest.fixture
def commune_c(territory):
    commune = OrganisationFactory(name="Commune C")
    EpciMembershipFactory(member=commune, epci=territory.epci, valid_from=date(2020, 1, 1))
    PopulationRecordFactory(organisation=commune, municipal=1000, total=1000)
    return commune


def joining_avenant(convention, commune, effective_from):
    with time_machine.travel(TODAY):
        return amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Entrée de la commune C", effective_from=effective_from),
            terms=avenant_terms(),
            joining=[commune],
        )


def complete_and_sign(amendment, organisations, *, signed=date(2026, 6, 20)):
    amendment.impact_established_on = date(2026, 4, 1)
    amendment.impact_summary = (
        "Deux instructeurs supplémentaires ; aucun effet sur la rémunération."
    )
    amendment.save()
    for organisation in organisations:
        StaffBodyOpinion.objects.create(
            convention=amendment.convention,
            amendment=amendment,
            organisation=organisation,
            body=StaffBody.CST,
            date=date(2026, 5, 2),
            opinion=Opinion.FAVOURABLE,
        )
    add_deliberations(
        amendment.convention, organisations, day=date(2026, 6, 1), amendment=amendment
    )
    with time_machine.travel(TODAY):
        return amendments.amendment_sign(amendment, signature_date=signed)


def totals(convention, year=2026):
    found = {}
    for name, amount in (
        (line.payer.name, line.amount)
        for line in services.compute_reimbursements(year).result.lines
        if line.convention == convention.reference
    ):
        found[name] = found.get(name, D("0")) + amount
    return found


def test_a_commune_joining_on_1_july_pays_its_share_of_the_second_half_only(
    service_commun, territory, commune_c
):
    convention = bill(service_commun.convention)
    cost_base(service_commun.line.service)
    amendment = joining_avenant(convention, commune_c, date(2026, 7, 1))
    everyone = [territory.epci, territory.commune_a, territory.commune_b, commune_c]
    complete_and_sign(amendment, everyone)
    shares = totals(convention)
    # 36 500 € over 365 days: 18 100 € for the 181 days to 30 June (1 200 : 800), 18 400 € for
    # the 184 days from 1 July (1 200 : 800 : 1 000).
    assert shares["Commune C"] == D("6133.33")
    assert shares["Commune A"] == D("10860.00") + D("7360.00")
    assert sum(shares.values()) == D("36500.00")


def test_an_avenant_of_2027_leaves_the_2026_statement_as_it_was(
    service_commun, territory, commune_c
):
    convention = bill(service_commun.convention)
    cost_base(service_commun.line.service)
    before = totals(convention)
    amendment = joining_avenant(convention, commune_c, date(2027, 1, 1))
    everyone = [territory.epci, territory.commune_a, territory.commune_b, commune_c]
    complete_and_sign(amendment, everyone)
    assert totals(convention) == before
    assert "Commune C" not in before
    present = {p.organisation.name for p in in_force.parties_on(convention, date(2027, 1, 1))}
    assert "Commune C" in present
    assert "Commune C" not in {
        p.organisation.name for p in in_force.parties_on(convention, date(2026, 12, 31))
    }


def test_the_avenant_of_a_service_commun_needs_the_new_member_its_fiche_and_its_cst_opinions(
    service_commun, territory, commune_c
):
    convention = bill(service_commun.convention)
    amendment = joining_avenant(convention, commune_c, date(2026, 7, 1))
    add_deliberations(
        convention,
        [territory.epci, territory.commune_a, territory.commune_b],
        day=date(2026, 6, 1),
        amendment=amendment,
    )
    with time_machine.travel(TODAY), pytest.raises(TransitionRefused) as refused:
        amendments.amendment_sign(amendment, signature_date=date(2026, 6, 20))
    message = " | ".join(refused.value.missing)
    assert "Délibération approuvant l'avenant n° 1 manquante pour : Commune C" in message
    assert "fiche d'impact mise à jour manquante" in message
    assert "Avis du comité social territorial sur l'avenant n° 1 manquant pour" in message
    assert "Commune C" in message.split("Avis du comité social territorial")[1]
    assert Amendment.objects.get(pk=amendment.pk).status == Amendment.AmendmentStatus.DRAFT


def test_an_avenant_refuses_a_non_member_commune_and_the_manager_leaving(service_commun, territory):
    convention = bill(service_commun.convention)
    stranger = OrganisationFactory(name="Commune hors EPCI")
    manager = convention.parties.get(organisation=territory.epci)
    with time_machine.travel(TODAY), pytest.raises(TransitionRefused) as refused:
        amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Réorganisation", effective_from=date(2026, 7, 1)),
            terms=avenant_terms(),
            joining=[stranger],
            leaving=[manager],
        )
    message = " | ".join(refused.value.missing)
    assert "Commune hors EPCI n'est pas membre de Métropole de test au 01/07/2026" in message
    assert "sa sortie met fin à la convention, c'est une résiliation" in message
    assert not convention.amendments.exists()


def test_a_commune_leaving_stops_paying_from_the_avenant_and_its_forecast_is_not_carried(
    service_commun, territory
):
    convention = bill(service_commun.convention)
    cost_base(service_commun.line.service)
    leaving = convention.parties.get(organisation=territory.commune_b)
    with time_machine.travel(TODAY):
        amendment = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Sortie de la commune B", effective_from=date(2026, 7, 1)),
            terms=avenant_terms(),
            leaving=[leaving],
        )
    everyone = [territory.epci, territory.commune_a, territory.commune_b]
    complete_and_sign(amendment, everyone)
    shares = totals(convention)
    # To 30 June: 18 100 € shared 1 200 : 800; from 1 July commune A alone bears 18 400 €.
    assert shares["Commune B"] == D("7240.00")
    assert shares["Commune A"] == D("10860.00") + D("18400.00")


def test_usage_recorded_before_a_commune_joins_is_refused_with_a_finding(
    mad_descendante, territory, commune_c
):
    from tests.costing.conftest import bill as bill_convention

    convention = bill_convention(mad_descendante.convention, mode="TITRE")
    with time_machine.travel(TODAY):
        amendment = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Entrée de C", effective_from=date(2026, 7, 1)),
            terms=Terms(settlement_mode="TITRE", periodicity_months=12, unit_cost_method="x"),
            joining=[commune_c],
        )
    # The new beneficiary has no forecast yet: the signature is refused and says so.
    add_deliberations(
        convention,
        [territory.epci, territory.commune_a, territory.commune_b, commune_c],
        day=date(2026, 6, 1),
        amendment=amendment,
    )
    with time_machine.travel(TODAY), pytest.raises(TransitionRefused) as refused:
        amendments.amendment_sign(amendment, signature_date=date(2026, 6, 20))
    assert "Prévision d'utilisation en unités manquante" in " ".join(refused.value.missing)
    assert "Commune C" in " ".join(refused.value.missing)
    from conventions.models import UsageForecast

    UsageForecast.objects.create(
        terms=amendment.terms,
        service=mad_descendante.line,
        beneficiary=commune_c,
        year=2026,
        units=D("50"),
    )
    with time_machine.travel(TODAY):
        amendments.amendment_sign(amendment, signature_date=date(2026, 6, 20))
    UsageRecord.objects.create(
        convention=convention,
        beneficiary=commune_c,
        service=mad_descendante.service,
        unit_type=mad_descendante.service.unit_type,
        period_start=date(2026, 3, 1),
        period_end=date(2026, 3, 31),
        quantity=D("4"),
        units=D("4"),
        source="MANUAL",
    )
    findings = services.compute_reimbursements(2026).findings
    found = [f for f in findings if f.convention == convention.reference]
    assert any(
        f.code == "NOT_COMPUTED" and "hors de la période où la commune est partie" in f.message
        for f in found
    )
    assert Deliberation.objects.filter(amendment=amendment, organisation=commune_c).exists()


def test_the_import_refuses_usage_of_a_commune_before_it_joins_by_avenant(
    service_commun, territory, commune_c
):
    from costing.resources import import_usage_file

    convention = bill(service_commun.convention)
    amendment = joining_avenant(convention, commune_c, date(2026, 7, 1))
    everyone = [territory.epci, territory.commune_a, territory.commune_b, commune_c]
    complete_and_sign(amendment, everyone)
    service = service_commun.line.service.code
    content = (
        "convention;beneficiaire;service;mois;quantite\n"
        f"{convention.reference};{commune_c.siren};{service};2026-06;4\n"
        f"{convention.reference};{commune_c.siren};{service};2026-07;5\n"
    ).encode()

    report = import_usage_file(content, "r.csv", commit=True)

    assert not report.imported
    assert [(e.line, e.column, e.message) for e in report.errors] == [
        (
            2,
            "beneficiaire",
            f"Commune C n'est pas partie à {convention.reference} en 06/2026 (entrée ou sortie "
            "par avenant) : ce recours ne serait pas facturé.",
        )
    ]
    assert not UsageRecord.objects.filter(beneficiary=commune_c).exists()


def test_the_import_takes_the_month_a_commune_joins_mid_month_and_refuses_the_one_before(
    service_commun, territory, commune_c
):
    """Joining on 15 July: its July record is its use from the 15th (imported); June, refused."""
    from costing.resources import import_usage_file

    convention = bill(service_commun.convention)
    amendment = joining_avenant(convention, commune_c, date(2026, 7, 15))
    everyone = [territory.epci, territory.commune_a, territory.commune_b, commune_c]
    complete_and_sign(amendment, everyone)
    service = service_commun.line.service.code
    july = (
        "convention;beneficiaire;service;mois;quantite\n"
        f"{convention.reference};{commune_c.siren};{service};2026-07;5\n"
    ).encode()
    assert import_usage_file(july, "r.csv", commit=True).imported
    june = july.replace(b"2026-07", b"2026-06")
    report = import_usage_file(june, "r2.csv", commit=True)
    assert [e.column for e in report.errors] == ["beneficiaire"]
    assert UsageRecord.objects.filter(beneficiary=commune_c).count() == 1


def test_the_grid_refuses_a_month_before_a_commune_joins_and_takes_its_joining_month(
    service_commun, territory, commune_c
):
    """The grid says which cells would never be billed (before, they were saved and the year's
    computation then stopped for the whole convention): nothing written, the cells named."""
    convention = bill(service_commun.convention)
    amendment = joining_avenant(convention, commune_c, date(2026, 7, 15))
    complete_and_sign(
        amendment, [territory.epci, territory.commune_a, territory.commune_b, commune_c]
    )
    service = service_commun.line.service
    with pytest.raises(services.UsageRefused) as refused:
        services.usage_grid_save(
            convention=convention,
            service=service,
            year=2026,
            values={(commune_c.pk, 6): D("4"), (commune_c.pk, 7): D("5")},
        )
    [reason] = refused.value.reasons
    assert "Commune C — juin 2026" in reason
    assert "juillet" not in reason
    assert not UsageRecord.objects.filter(beneficiary=commune_c).exists()
    written = services.usage_grid_save(
        convention=convention,
        service=service,
        year=2026,
        values={(commune_c.pk, 7): D("5")},
    )
    assert written == 1
