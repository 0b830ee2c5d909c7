"""Builders of conventions that pass every legal gate, for tests to break one thing at a time."""

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest

from conventions.models import (
    AllocationKey,
    ConventionKind,
    ConventionService,
    Deliberation,
    ImpactSheet,
    ManagingShare,
    Party,
    PartyRole,
    StaffBody,
    StaffBodyOpinion,
    UsageForecast,
)
from tests.factories import ConventionFactory, PopulationRecordFactory, ServiceFactory, TermsFactory


def add_deliberations(convention, organisations, *, day=date(2025, 12, 10), amendment=None):
    for index, organisation in enumerate(organisations, start=1):
        Deliberation.objects.create(
            convention=convention,
            amendment=amendment,
            organisation=organisation,
            assembly="Conseil métropolitain" if organisation.is_epci else "Conseil municipal",
            date=day,
            number=f"{convention.reference}-{'A' + str(amendment.number) if amendment else 'C'}-{index}",
            object=f"Approbation de {convention.reference}",
        )


def make_enforceable(convention, *, day=date(2025, 12, 22)):
    """Transmit and publish each deliberation on the convention, then transmit the signed
    convention and notify it to the parties, all on ``day`` (through the service)."""
    from conventions.services import records

    for deliberation in convention.deliberations.filter(amendment__isnull=True):
        deliberation.transmitted_on = day
        deliberation.published_on = day
        deliberation.acknowledgement_number = f"063-AR-{deliberation.number}"
        deliberation.save()
    return records.convention_publicity_record(
        convention=convention,
        transmitted_on=day,
        acknowledgement_number=f"063-AR-{convention.reference}",
        notified_on=day,
    )


@pytest.fixture
def mad_descendante(territory):
    """EPCI → communes A and B, one service, forecasts for both: ready for consultation."""
    t = territory
    convention = ConventionFactory(title="MAD descendante SI")
    Party.objects.create(convention=convention, organisation=t.epci, role=PartyRole.PROVIDER)
    for commune in (t.commune_a, t.commune_b):
        Party.objects.create(
            convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
        )
    service = ServiceFactory(provider=t.epci)
    line = ConventionService.objects.create(
        convention=convention, service=service, unit_type=service.unit_type
    )
    terms = TermsFactory(convention=convention)
    for commune, units in ((t.commune_a, "120"), (t.commune_b, "80")):
        UsageForecast.objects.create(
            terms=terms, service=line, beneficiary=commune, year=2026, units=Decimal(units)
        )
    return SimpleNamespace(convention=convention, terms=terms, line=line, service=service)


@pytest.fixture
def service_commun(territory):
    """EPCI + communes A and B sharing a service by population 2023, managed by the EPCI."""
    t = territory
    convention = ConventionFactory(
        title="Service commun ADS", kind=ConventionKind.SERVICE_COMMUN, managing_organisation=t.epci
    )
    for organisation in (t.epci, t.commune_a, t.commune_b):
        Party.objects.create(
            convention=convention, organisation=organisation, role=PartyRole.MEMBER
        )
    for commune, population in ((t.commune_a, 1200), (t.commune_b, 800)):
        PopulationRecordFactory(organisation=commune, municipal=population, total=population)
    service = ServiceFactory(provider=t.epci)
    line = ConventionService.objects.create(
        convention=convention,
        service=service,
        unit_type=service.unit_type,
        allocation_key=AllocationKey.POPULATION,
        population_vintage=2023,
    )
    terms = TermsFactory(convention=convention, managing_share_mode=ManagingShare.NONE)
    return SimpleNamespace(convention=convention, terms=terms, line=line)


def complete_service_commun_file(convention, organisations):
    ImpactSheet.objects.create(
        convention=convention,
        established_on=date(2025, 10, 1),
        organisation_and_working_conditions="Regroupement des instructeurs sur un site.",
        pay="Maintien du régime indemnitaire.",
        acquired_rights="Droits acquis conservés.",
    )
    for organisation in organisations:
        StaffBodyOpinion.objects.create(
            convention=convention,
            organisation=organisation,
            body=StaffBody.CST,
            date=date(2025, 11, 15),
            opinion="FAVOURABLE",
        )


@pytest.fixture
def conventions_ab(territory):
    """One convention with commune A only, one with commune B only."""
    made = {}
    for key, commune in (("a", territory.commune_a), ("b", territory.commune_b)):
        convention = ConventionFactory(title=f"Convention de la commune {key.upper()}")
        Party.objects.create(
            convention=convention, organisation=territory.epci, role=PartyRole.PROVIDER
        )
        Party.objects.create(
            convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
        )
        TermsFactory(convention=convention)
        made[key] = convention
    return made
