"""A synthetic France for the benchmarks (``manage.py generate_territory``).

At scale 1: 1 254 EPCI and their 34 900 communes, each EPCI a territory with its own numbering
prefixes, services, conventions of every kind in force (mises à disposition ascendantes and
descendantes, services communs keyed by units, population or fixed shares, prestations), their
parties, terms, forecasts, deliberations, cost bases, notified unit costs and twelve months of
usage; a manager and a finance agent per territory. Reproducible: the same seed and scale give
the same rows and the same sums.

Synthetic data, written in bulk with its status already set (no lifecycle, no history rows), but
consistent with what the year computation and the statements read: every billed convention has
its terms, forecasts of the year, parties present all year and notified unit costs or a cost base.
Usage rows go through COPY on PostgreSQL (bulk_create elsewhere).
"""

import csv
import io
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.utils import timezone

from conventions.models import (
    AgentAssignment,
    AgentRegime,
    AllocationKey,
    Convention,
    ConventionKind,
    ConventionService,
    Deliberation,
    ImpactSheet,
    ManagingShare,
    Opinion,
    Party,
    PartyRole,
    ReferenceCounter,
    SettlementMode,
    StaffBody,
    StaffBodyOpinion,
    Status,
    Terms,
    UsageForecast,
)
from costing import engine, services
from costing.models import (
    CostBase,
    CostCategory,
    CostLine,
    ReferenceBasis,
    SourceDocument,
    UnitCost,
    UsageRecord,
    UsageSource,
)
from mutualisation.models import (
    EpciMembership,
    EpciNature,
    Membership,
    Organisation,
    OrganisationKind,
    PopulationRecord,
    Role,
    Service,
    ServiceKind,
    TaxRegime,
    Unit,
    UnitType,
)
from mutualisation.validators import luhn_is_valid

FRANCE_EPCI = 1254
FRANCE_COMMUNES = 34_900
# Conventions per member commune of a territory, and beneficiaries per convention: with twelve
# monthly records per beneficiary, about 120 usage rows per convention-year (issue 11).
CONVENTIONS_PER_COMMUNE = 2.8
BENEFICIARIES = 14
BATCH = 5000
EPCI_SIREN_STEM = 20_000_000  # 20000000x…: far from the demo (2463…, 2163…) and the tests (99…)
COMMUNE_SIREN_STEM = 21_000_000
# Departments 01 to 95 but 20 (Corsica is 2A/2B): 500 codes each, enough for 47 000 communes.
DEPARTMENTS = [d for d in range(1, 96) if d != 20]
CODES_PER_DEPARTMENT = 500

UNIT_TYPES = [
    ("bench-heure", "Heure de travail", Unit.HOUR),
    ("bench-acte", "Acte instruit", Unit.ACT),
    ("bench-procedure", "Procédure de marché", Unit.PROCEDURE),
    ("bench-bulletin", "Bulletin de paie", Unit.PAY_SLIP),
]

PROVIDER_EPCI, PROVIDER_CENTRE = "epci", "centre"


@dataclass(frozen=True)
class ServiceSpec:
    slug: str
    name: str
    unit_type: str
    kind: str  # ConventionKind
    provider: str  # PROVIDER_EPCI or PROVIDER_CENTRE (the territory's largest commune)
    allocation_key: str = ""
    yearly_units: tuple[int, int] = (40, 400)  # forecast per beneficiary, low and high


SPECS = [
    ServiceSpec(
        "systemes-information", "Systèmes d'information", "bench-heure",
        ConventionKind.MISE_A_DISPOSITION, PROVIDER_EPCI, yearly_units=(60, 600),
    ),
    ServiceSpec(
        "paie", "Paie", "bench-bulletin",
        ConventionKind.MISE_A_DISPOSITION, PROVIDER_EPCI, yearly_units=(120, 1800),
    ),
    ServiceSpec(
        "voirie", "Entretien de la voirie", "bench-heure",
        ConventionKind.MISE_A_DISPOSITION, PROVIDER_CENTRE, yearly_units=(600, 2400),
    ),
    ServiceSpec(
        "ads", "Instruction du droit des sols", "bench-acte",
        ConventionKind.SERVICE_COMMUN, PROVIDER_EPCI, AllocationKey.UNITS, (20, 240),
    ),
    ServiceSpec(
        "commande-publique", "Commande publique", "bench-procedure",
        ConventionKind.SERVICE_COMMUN, PROVIDER_EPCI, AllocationKey.POPULATION, (2, 30),
    ),
    ServiceSpec(
        "archives", "Archives", "bench-heure",
        ConventionKind.SERVICE_COMMUN, PROVIDER_EPCI, AllocationKey.FIXED_SHARES, (20, 200),
    ),
    ServiceSpec(
        "conseil-juridique", "Conseil juridique", "bench-heure",
        ConventionKind.PRESTATION, PROVIDER_EPCI, yearly_units=(10, 120),
    ),
]  # fmt: skip

UNIT_COST_METHOD = (
    "Coût unitaire = charges de fonctionnement du service constatées au dernier compte, "
    "actualisées au vu du budget primitif, divisées par les unités de fonctionnement prévues."
)
NATURES = [EpciNature.CC] * 7 + [EpciNature.CA] * 2 + [EpciNature.CU]
SYLLABLES = ["ber", "mont", "val", "lac", "roche", "ville", "court", "champ", "bois", "sur", "lor"]


def siren_from(stem: int) -> str:
    """A valid SIREN: the 8 digits of ``stem`` and the Luhn check digit."""
    digits = f"{stem % 10**8:08d}"
    return next(digits + str(d) for d in range(10) if luhn_is_valid(digits + str(d)))


def insee_code(index: int) -> str:
    department = DEPARTMENTS[index // CODES_PER_DEPARTMENT]
    return f"{department:02d}{index % CODES_PER_DEPARTMENT + 1:03d}"


def place_name(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
    return rng.choice(["", "Saint-", "Le ", "La ", "Les "]) + word.capitalize()


@dataclass
class Counts:
    rows: Counter = field(default_factory=Counter)

    def add(self, model, objects) -> list:
        objects = model.objects.bulk_create(objects, batch_size=BATCH)
        self.rows[model._meta.label] += len(objects)
        return objects


@dataclass(frozen=True)
class Territory:
    epci: Organisation
    communes: list  # Organisation, the largest first
    prefix: str


def territory_sizes(rng: random.Random, epcis: int, communes: int) -> list[int]:
    """Communes per EPCI: at least three each, the rest by a skewed draw (a few large ones)."""
    weights = [rng.lognormvariate(0, 0.9) for _ in range(epcis)]
    spare = communes - 3 * epcis
    sizes = [3 + math.floor(spare * w / sum(weights)) for w in weights]
    for index in range(communes - sum(sizes)):
        sizes[index % epcis] += 1
    return sizes


def create_organisations(rng, counts: Counts, scale: float, year: int) -> list[Territory]:
    epci_count = max(1, round(FRANCE_EPCI * scale))
    commune_count = max(3 * epci_count, round(FRANCE_COMMUNES * scale))
    if commune_count > len(DEPARTMENTS) * CODES_PER_DEPARTMENT:
        raise ValueError("Trop de communes pour les codes INSEE synthétiques.")
    epcis = []
    for index in range(epci_count):
        prefix = f"T{index + 1:04d}"
        nature = rng.choice(NATURES)
        epcis.append(
            Organisation(
                kind=OrganisationKind.EPCI,
                name=f"{nature.label} {place_name(rng)} ({prefix})",
                siren=siren_from(EPCI_SIREN_STEM + index),
                epci_nature=nature,
                tax_regime=TaxRegime.FPU,
                representative_title="Le Président",
                representative_name=f"Président {prefix}",
                seat=place_name(rng),
                public_accountant=f"Service de gestion comptable du territoire {prefix}",
                administrative_court="Tribunal administratif de synthèse",
                reference_prefix=prefix,
                statement_prefix=f"E{index + 1:04d}",
                statement_review_days=15,
            )
        )
    epcis = counts.add(Organisation, epcis)
    sizes = territory_sizes(rng, epci_count, commune_count)
    communes, memberships, populations = [], [], []
    index = 0
    for epci, size in zip(epcis, sizes, strict=True):
        for _rank in range(size):
            communes.append(
                Organisation(
                    kind=OrganisationKind.COMMUNE,
                    name=f"{place_name(rng)} ({insee_code(index)})",
                    siren=siren_from(COMMUNE_SIREN_STEM + index),
                    insee_code=insee_code(index),
                    representative_title="Le Maire",
                    public_accountant=f"Service de gestion comptable de {epci.reference_prefix}",
                )
            )
            index += 1
    communes = counts.add(Organisation, communes)
    territories, cursor = [], 0
    for epci, size in zip(epcis, sizes, strict=True):
        members = communes[cursor : cursor + size]
        cursor += size
        population = {c.pk: max(30, int(rng.lognormvariate(6.3, 1.3))) for c in members}
        members.sort(key=lambda c: -population[c.pk])
        for commune in members:
            memberships.append(
                EpciMembership(member=commune, epci=epci, valid_from=date(2017, 1, 1))
            )
            populations.append(
                PopulationRecord(
                    organisation=commune,
                    vintage=year - 3,
                    in_force_year=year,
                    municipal=population[commune.pk],
                    total=population[commune.pk] + population[commune.pk] // 50,
                    source=f"INSEE (synthèse), populations légales {year - 3}",
                )
            )
        territories.append(Territory(epci, members, epci.reference_prefix))
    counts.add(EpciMembership, memberships)
    counts.add(PopulationRecord, populations)
    return territories


def create_users(counts: Counts, territories: list[Territory], password: str | None) -> None:
    User = get_user_model()
    encoded = make_password(password)  # hashed once: every generated account shares it
    users = []
    for territory in territories:
        for role in ("gestionnaire", "finances"):
            users.append(
                User(
                    username=f"{role}.{territory.prefix.lower()}",
                    password=encoded,
                    first_name=role.capitalize(),
                    last_name=territory.prefix,
                )
            )
    users = counts.add(User, users)
    memberships = []
    for position, territory in enumerate(territories):
        manager, finance = users[2 * position], users[2 * position + 1]
        memberships.append(Membership(user=manager, organisation=territory.epci, role=Role.MANAGER))
        memberships.append(Membership(user=finance, organisation=territory.epci, role=Role.FINANCE))
    counts.add(Membership, memberships)


def unit_types(counts: Counts) -> dict[str, UnitType]:
    existing = {
        u.code: u for u in UnitType.objects.filter(code__in=[c for c, _l, _u in UNIT_TYPES])
    }
    missing = [
        UnitType(code=code, label=label, unit=unit)
        for code, label, unit in UNIT_TYPES
        if code not in existing
    ]
    for unit_type in counts.add(UnitType, missing):
        existing[unit_type.code] = unit_type
    return existing


def create_services(rng, counts, territories, types, year) -> dict:
    """Per territory and spec, one or more services (a service per three conventions or so)."""
    services_by_territory = {}
    all_services = []
    for territory in territories:
        conventions = max(len(SPECS), round(CONVENTIONS_PER_COMMUNE * len(territory.communes)))
        variants = max(1, math.ceil(conventions / len(SPECS) / 3))
        own = {}
        for spec in SPECS:
            provider = territory.epci if spec.provider == PROVIDER_EPCI else territory.communes[0]
            own[spec.slug] = [
                Service(
                    code=f"{territory.prefix.lower()}-{spec.slug}-{variant + 1}",
                    name=spec.name if variants == 1 else f"{spec.name} (secteur {variant + 1})",
                    provider=provider,
                    territory=territory.epci,
                    kind=ServiceKind.FUNCTIONAL,
                    unit_type=types[spec.unit_type],
                )
                for variant in range(variants)
            ]
            all_services += own[spec.slug]
        services_by_territory[territory.prefix] = (conventions, own)
    counts.add(Service, all_services)
    return services_by_territory


def create_costs(rng, counts, services_list, year) -> None:
    """A cost base per service and year, its lines, and its unit cost computed by the engine and
    notified before the deadline."""
    bases = counts.add(
        CostBase,
        [
            CostBase(
                service=service,
                year=year,
                source=SourceDocument.CA if year - 1 < 2026 else SourceDocument.CFU,
                source_year=year - 1,
                reference_units=Decimal(rng.randint(400, 6000)),
                reference_basis=ReferenceBasis.FORECAST,
            )
            for service in services_list
        ],
    )
    lines_by_base = {}
    lines = []
    for base in bases:
        staff = Decimal(rng.randint(60_000, 900_000))
        own = [
            CostLine(
                cost_base=base,
                label="Rémunérations",
                category=CostCategory.PERSONNEL,
                account="6411",
                accounts_amount=staff,
                budget_adjustment=(staff * Decimal("0.015")).quantize(Decimal("0.01")),
            ),
            CostLine(
                cost_base=base,
                label="Cotisations sociales",
                category=CostCategory.PERSONNEL,
                account="6451",
                accounts_amount=(staff * Decimal("0.31")).quantize(Decimal("0.01")),
            ),
            CostLine(
                cost_base=base,
                label="Fournitures",
                category=CostCategory.SUPPLIES,
                account="6068",
                accounts_amount=Decimal(rng.randint(2_000, 40_000)),
            ),
            CostLine(
                cost_base=base,
                label="Contrats de maintenance",
                category=CostCategory.SERVICE_CONTRACTS,
                account="6156",
                accounts_amount=Decimal(rng.randint(1_000, 60_000)),
            ),
        ]
        lines_by_base[base.pk] = own
        lines += own
    counts.add(CostLine, lines)
    deadline = services.deadline_for(year)
    unit_costs = []
    for base in bases:
        inputs = [services.cost_line_input(line) for line in lines_by_base[base.pk]]
        result = engine.compute_unit_cost(inputs, base.reference_units)
        unit_costs.append(
            UnitCost(
                service=base.service,
                year=year,
                amount=result.unit_cost,
                eligible_cost=result.eligible_cost,
                reference_units=result.reference_units,
                trace=services.unit_cost_trace(base, result),
                notification_deadline=deadline,
                notified_on=min(deadline, date(year, 3, 20)),
                computed_at=datetime(year, 3, 2, 8, 0, tzinfo=UTC),
                version=1,
            )
        )
    counts.add(UnitCost, unit_costs)


def monthly_units(rng: random.Random, yearly: int, month: int) -> Decimal:
    """A plausible month of a yearly volume: quieter in August, ±15 % noise."""
    season = Decimal("0.55") if month == 8 else Decimal("1.04")
    return (Decimal(yearly) / 12 * season * Decimal(rng.randint(85, 115)) / 100).quantize(
        Decimal("1")
    )


def write_usage(rows: list[tuple]) -> int:
    """Usage rows (tuples in ``usage_columns()`` order): COPY on PostgreSQL, else bulk_create."""
    if not rows:
        return 0
    columns = usage_columns()
    if connection.vendor == "postgresql":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        for row in rows:
            writer.writerow([r"\N" if value is None else value for value in row])
        buffer.seek(0)
        with connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {UsageRecord._meta.db_table} ({', '.join(columns)}) "
                "FROM STDIN WITH (FORMAT csv, NULL '\\N')",
                buffer,
            )
        return len(rows)
    attnames = [f.attname for f in usage_fields()]
    UsageRecord.objects.bulk_create(
        [UsageRecord(**dict(zip(attnames, row, strict=True))) for row in rows], batch_size=BATCH
    )
    return len(rows)


def usage_fields():
    return [f for f in UsageRecord._meta.concrete_fields if not f.primary_key]


def usage_columns() -> list[str]:
    return [f.column for f in usage_fields()]


def usage_row(convention_id, beneficiary_id, service, year, month, units, now) -> tuple:
    start, end = services.month_bounds(year, month)
    values = {
        "convention_id": convention_id,
        "beneficiary_id": beneficiary_id,
        "service_id": service.pk,
        "unit_type_id": service.unit_type_id,
        "weight_id": None,
        "period_start": start,
        "period_end": end,
        "quantity": units,
        "units": units,
        "reference": f"{year}-{month:02d}",
        "external_reference": "",
        "source": UsageSource.IMPORT,
        "reason": "",
        "recorded_at": now,
        "recorded_by_id": None,
        "imported_from_id": None,
    }
    return tuple(values[f.attname] for f in usage_fields())


def create_conventions(rng, counts, territory, spec_services, planned, year) -> int:
    """The territory's conventions, all in force from 1 January of ``year``; returns the number
    of usage rows written."""
    signed_on = date(year - 1, 12, 15)
    deliberated_on = date(year - 1, 12, 5)
    conventions, details = [], []
    for number in range(1, planned + 1):
        spec = SPECS[(number - 1) % len(SPECS)]
        service = rng.choice(spec_services[spec.slug])
        centre = territory.communes[0]
        if spec.provider == PROVIDER_CENTRE:  # ascendante: the central town serves the EPCI
            provider, payers = centre, [territory.epci]
        elif spec.kind == ConventionKind.PRESTATION:
            provider, payers = territory.epci, [rng.choice(territory.communes)]
        else:
            provider = territory.epci
            payers = rng.sample(territory.communes, min(BENEFICIARIES, len(territory.communes)))
            payers.sort(key=lambda c: c.pk)
        reference = f"{territory.prefix}-{year - 1}-{number:03d}"
        conventions.append(
            Convention(
                reference=reference,
                title=f"{spec.name} — convention {number}",
                territory=territory.epci,
                kind=spec.kind,
                object=f"{spec.name} : convention de synthèse pour la mesure des performances.",
                status=Status.IN_FORCE,
                managing_organisation=territory.epci
                if spec.kind == ConventionKind.SERVICE_COMMUN
                else None,
                start_date=date(year, 1, 1),
                retained_service_basis="le transfert de compétence (données de synthèse)"
                if spec.provider == PROVIDER_CENTRE
                else "",
                signature_date=signed_on,
                transmitted_on=signed_on + timedelta(days=2),
                acknowledgement_number=f"000-{territory.epci.siren}-{signed_on:%Y%m%d}-{reference}-AU",
                notified_on=signed_on + timedelta(days=3),
            )
        )
        details.append((spec, service, provider, payers))
    conventions = counts.add(Convention, conventions)
    counts.add(
        ReferenceCounter,
        [ReferenceCounter(prefix=territory.prefix, year=year - 1, last_number=planned)],
    )
    parties, lines, terms_list, deliberations, sheets, opinions, agents = [], [], [], [], [], [], []
    for convention, (spec, service, provider, payers) in zip(conventions, details, strict=True):
        if spec.kind == ConventionKind.SERVICE_COMMUN:
            members = [territory.epci, *payers]
            parties += [
                Party(convention=convention, organisation=o, role=PartyRole.MEMBER) for o in members
            ]
            sheets.append(
                ImpactSheet(
                    convention=convention,
                    established_on=deliberated_on - timedelta(days=60),
                    organisation_and_working_conditions="Service unique à l'EPCI.",
                    pay="Régime indemnitaire conservé.",
                    acquired_rights="Droits acquis conservés.",
                )
            )
            opinions += [
                StaffBodyOpinion(
                    convention=convention,
                    organisation=o,
                    body=StaffBody.CST,
                    date=deliberated_on - timedelta(days=30),
                    opinion=Opinion.FAVOURABLE,
                )
                for o in members
            ]
        else:
            members = [provider, *payers]
            parties.append(
                Party(convention=convention, organisation=provider, role=PartyRole.PROVIDER)
            )
            parties += [
                Party(convention=convention, organisation=o, role=PartyRole.BENEFICIARY)
                for o in payers
            ]
        lines.append(
            ConventionService(
                convention=convention,
                service=service,
                unit_type=service.unit_type,
                allocation_key=spec.allocation_key,
                population_vintage=year - 3
                if spec.allocation_key == AllocationKey.POPULATION
                else None,
            )
        )
        managing = ""
        managing_value = None
        if spec.allocation_key == AllocationKey.POPULATION:
            managing, managing_value = ManagingShare.FIXED_PERCENT, Decimal("25")
        terms_list.append(
            Terms(
                convention=convention,
                effective_from=convention.start_date,
                settlement_mode=SettlementMode.TITRE,
                periodicity_months=rng.choice([12, 12, 6, 3]),
                instalment_count=0,
                unit_cost_method=UNIT_COST_METHOD,
                end_date=date(year + 2, 12, 31),
                notice_months=3,
                managing_share_mode=managing,
                managing_share_value=managing_value,
            )
        )
        for organisation in members:
            session = deliberated_on - timedelta(days=rng.randint(0, 20))
            deliberations.append(
                Deliberation(
                    convention=convention,
                    organisation=organisation,
                    assembly="Conseil communautaire"
                    if organisation.is_epci
                    else "Conseil municipal",
                    date=session,
                    number=f"D-{convention.reference}",
                    object=f"Approbation de « {convention.title} »",
                    transmitted_on=session + timedelta(days=3),
                    acknowledgement_number=f"000-{organisation.siren}-{session:%Y%m%d}-D-DE",
                    published_on=session + timedelta(days=3),
                )
            )
        if spec.kind != ConventionKind.PRESTATION:
            agents.append(
                AgentAssignment(
                    convention=convention,
                    agent_ref=f"AG-{convention.reference}",
                    job_title=f"Agent — {spec.name}",
                    employer=provider,
                    regime=AgentRegime.MAD_BY_LAW,
                    share_percent=Decimal(rng.choice([20, 50, 100])),
                    functional_authority="L'autorité de la collectivité bénéficiaire",
                    hierarchical_authority=f"L'autorité territoriale de {provider.name}",
                    start_date=convention.start_date,
                )
            )
    counts.add(Party, parties)
    lines = counts.add(ConventionService, lines)
    terms_list = counts.add(Terms, terms_list)
    counts.add(Deliberation, deliberations)
    counts.add(ImpactSheet, sheets)
    counts.add(StaffBodyOpinion, opinions)
    counts.add(AgentAssignment, agents)
    forecasts, usage, now = [], [], timezone.now()
    for convention, line, terms, (spec, service, _provider, payers) in zip(
        conventions, lines, terms_list, details, strict=True
    ):
        if spec.allocation_key == AllocationKey.FIXED_SHARES:
            shares = fixed_shares(rng, len(payers) + 1)
            for organisation, share in zip([territory.epci, *payers], shares, strict=True):
                forecasts.append(
                    UsageForecast(
                        terms=terms,
                        service=line,
                        beneficiary=organisation,
                        year=year,
                        units=Decimal(0),
                        fixed_share_percent=share,
                    )
                )
        for payer in payers:
            yearly = rng.randint(*spec.yearly_units)
            if spec.allocation_key != AllocationKey.FIXED_SHARES:
                forecasts.append(
                    UsageForecast(
                        terms=terms,
                        service=line,
                        beneficiary=payer,
                        year=year,
                        units=Decimal(yearly),
                    )
                )
            for month in range(1, 13):
                units = monthly_units(rng, yearly, month)
                usage.append(usage_row(convention.pk, payer.pk, service, year, month, units, now))
    counts.add(UsageForecast, forecasts)
    written = write_usage(usage)
    counts.rows[UsageRecord._meta.label] += written
    return written


def fixed_shares(rng: random.Random, count: int) -> list[Decimal]:
    """``count`` percentages with two decimals adding up to exactly 100; the first (the EPCI)
    takes the largest part."""
    weights = [rng.randint(1, 10) for _ in range(count)]
    weights[0] = sum(weights)
    total = sum(weights)
    shares = [(Decimal(100) * w / total).quantize(Decimal("0.01")) for w in weights]
    shares[0] += Decimal(100) - sum(shares)
    return shares


def generate(*, scale: float, seed: int = 1, year: int = 2025, password=None, progress=None):
    """Write the synthetic France; returns the row counts per model (Counter of labels)."""
    rng = random.Random(f"mutualis-{seed}-{scale}")
    counts = Counts()
    say = progress or (lambda message: None)
    with transaction.atomic():
        types = unit_types(counts)
        territories = create_organisations(rng, counts, scale, year)
        say(f"{len(territories)} EPCI, {sum(len(t.communes) for t in territories)} communes")
        create_users(counts, territories, password)
        by_territory = create_services(rng, counts, territories, types, year)
        create_costs(
            rng,
            counts,
            [s for _planned, own in by_territory.values() for group in own.values() for s in group],
            year,
        )
        say(f"{counts.rows['mutualisation.Service']} services et leurs coûts")
    usage = 0
    for index, territory in enumerate(territories, start=1):
        planned, own = by_territory[territory.prefix]
        with transaction.atomic():
            usage += create_conventions(rng, counts, territory, own, planned, year)
        if index % 20 == 0 or index == len(territories):
            say(f"{index}/{len(territories)} territoires, {usage} recours")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {UsageRecord._meta.db_table}")
    return counts.rows
