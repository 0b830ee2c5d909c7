"""Demo conventions of the Clermont Auvergne Métropole territory, carried through the real
lifecycle (every gate applies): mises à disposition both ways, services communs, a prestation.

Idempotent: a demo convention is recognised by its title and left as it is.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction

from conventions.models import (
    ActionStatus,
    AgentAssignment,
    AgentRegime,
    AllocationKey,
    Amendment,
    Convention,
    ConventionKind,
    ConventionService,
    Deliberation,
    Horizon,
    ImpactSheet,
    ManagingShare,
    Opinion,
    Party,
    PartyRole,
    Scheme,
    SchemeAction,
    SchemeOpinion,
    SettlementMode,
    StaffBody,
    StaffBodyOpinion,
    Terms,
    UsageForecast,
)
from conventions.services import amendments, in_force, records, scheme, transitions
from mutualisation.models import Organisation, Service

METRO_SIREN = "246300701"
UNIT_COST_METHOD = (
    "Coût unitaire = charges de fonctionnement du service constatées au dernier compte "
    "administratif (ou compte financier unique), actualisées au vu du budget primitif de l'année, "
    "divisées par le nombre total d'unités de fonctionnement prévues pour l'année. Sont retenues "
    "les charges de personnel, les fournitures, le renouvellement des biens et les contrats de "
    "services rattachés, à l'exclusion de toute dépense non strictement liée au service."
)


@dataclass
class DemoConvention:
    title: str
    kind: str
    service: str
    provider: str | None  # SIREN; None for a service commun
    others: list[str]  # beneficiaries' or members' INSEE codes ("EPCI" for the Métropole)
    start: date
    stage: str  # draft, consultation, deliberated, signed, in_force
    object: str
    settlement: str = SettlementMode.TITRE
    periodicity: int = 12
    instalments: int = 4
    end: date | None = date(2028, 12, 31)
    allocation_key: str = ""
    population_vintage: int | None = None
    managing_share: str = ""  # how the managing EPCI bears its part of a keyed cost
    managing_value: str | None = None
    forecasts: dict[str, str] = field(default_factory=dict)  # INSEE or "EPCI" → units per year
    fixed_shares: dict[str, str] = field(default_factory=dict)
    deliberated_on: date = date(2025, 12, 11)
    signed_on: date = date(2025, 12, 19)
    agents: list[tuple] = field(default_factory=list)
    amendment: dict | None = None
    retained_service_basis: str = ""


DEMO = [
    DemoConvention(
        title="Mise à disposition du service systèmes d'information",
        kind=ConventionKind.MISE_A_DISPOSITION,
        service="systemes-information",
        provider=METRO_SIREN,
        others=["63014", "63032", "63063"],
        start=date(2026, 1, 1),
        stage="in_force",
        object="La Métropole met à disposition des communes d'Aubière, Beaumont et Cébazat son "
        "service des systèmes d'information pour l'exploitation de leurs postes de travail.",
        forecasts={"63014": "180", "63032": "165", "63063": "140"},
        agents=[
            ("SI-014", "Technicien support", METRO_SIREN, AgentRegime.MAD_BY_LAW, "30"),
            ("SI-022", "Administrateur réseau", METRO_SIREN, AgentRegime.MAD_BY_LAW, "20"),
        ],
        amendment={
            "object": "Passage à des remboursements semestriels.",
            "effective_from": date(2026, 7, 1),
            "periodicity": 6,
            "deliberated_on": date(2026, 6, 11),
            "signed_on": date(2026, 6, 22),
        },
    ),
    DemoConvention(
        title="Mise à disposition du service de la paie",
        kind=ConventionKind.MISE_A_DISPOSITION,
        service="paie",
        provider=METRO_SIREN,
        others=["63070", "63263"],
        start=date(2027, 1, 1),
        stage="consultation",
        object="La Métropole produit la paie des agents des communes de Ceyrat et d'Orcines.",
        forecasts={"63070": "1150", "63263": "640"},
        periodicity=6,
        instalments=2,
    ),
    DemoConvention(
        title="Mise à disposition du service d'entretien de la voirie métropolitaine",
        kind=ConventionKind.MISE_A_DISPOSITION,
        service="voirie-entretien",
        provider="216301135",
        others=["EPCI"],
        start=date(2025, 1, 1),
        stage="in_force",
        object="La Ville de Clermont-Ferrand met à disposition de la Métropole ses équipes "
        "d'entretien de la voirie pour la voirie d'intérêt métropolitain située sur son territoire.",
        forecasts={"EPCI": "1850"},
        deliberated_on=date(2024, 12, 12),
        signed_on=date(2024, 12, 20),
        end=date(2027, 12, 31),
        agents=[
            ("VOI-103", "Agent d'entretien de voirie", "216301135", AgentRegime.MAD_BY_LAW, "60"),
        ],
        retained_service_basis="le transfert de la compétence voirie à la Métropole, la Ville "
        "ayant conservé ses équipes d'entretien (exemple de démonstration : citez l'acte de "
        "transfert)",
    ),
    DemoConvention(
        title="Mise à disposition du service de maintenance du patrimoine bâti",
        kind=ConventionKind.MISE_A_DISPOSITION,
        service="patrimoine-bati",
        provider="216301135",
        others=["EPCI"],
        start=date(2026, 1, 1),
        stage="signed",
        object="La Ville de Clermont-Ferrand assure l'entretien et la maintenance de bâtiments "
        "métropolitains.",
        forecasts={"EPCI": "42000"},
        end=date(2026, 12, 31),
        periodicity=3,
        retained_service_basis="le transfert de compétences à la Métropole au 1er janvier 2018 "
        "(exemple de démonstration : citez l'acte de transfert)",
    ),
    DemoConvention(
        title="Service commun d'instruction des autorisations du droit des sols",
        kind=ConventionKind.SERVICE_COMMUN,
        service="ads",
        provider=None,
        others=["EPCI", "63014", "63019", "63042", "63099", "63141", "63254", "63272", "63345"],
        start=date(2025, 1, 1),
        stage="in_force",
        object="Création d'un service commun chargé de l'instruction des autorisations et actes "
        "relatifs à l'occupation du sol au nom des maires.",
        settlement=SettlementMode.MIXED,
        instalments=0,  # the forecast is imputed on the AC, never called in acomptes
        allocation_key=AllocationKey.UNITS,
        forecasts={
            "63014": "210",
            "63019": "85",
            "63042": "70",
            "63099": "55",
            "63141": "40",
            "63254": "45",
            "63272": "60",
            "63345": "75",
        },
        deliberated_on=date(2024, 12, 12),
        signed_on=date(2024, 12, 20),
        end=None,
        agents=[
            ("ADS-001", "Instructeur ADS", METRO_SIREN, AgentRegime.TRANSFER, "100"),
            ("ADS-002", "Instructeur ADS", "216300145", AgentRegime.MAD_BY_LAW, "50"),
        ],
    ),
    DemoConvention(
        title="Service commun de la commande publique",
        kind=ConventionKind.SERVICE_COMMUN,
        service="commande-publique",
        provider=None,
        others=["EPCI", "63113", "63075", "63308"],
        start=date(2027, 1, 1),
        stage="draft",
        object="Création d'un service commun de la commande publique.",
        allocation_key=AllocationKey.POPULATION,
        population_vintage=2023,
        managing_share=ManagingShare.FIXED_PERCENT,
        managing_value="25",
    ),
    DemoConvention(
        title="Service commun des archives",
        kind=ConventionKind.SERVICE_COMMUN,
        service="archives",
        provider=None,
        others=["EPCI", "63124", "63164"],
        start=date(2027, 1, 1),
        stage="deliberated",
        object="Création d'un service commun des archives.",
        allocation_key=AllocationKey.FIXED_SHARES,
        fixed_shares={"EPCI": "60", "63124": "25", "63164": "15"},
        deliberated_on=date(2026, 10, 8),
    ),
    DemoConvention(
        title="Prestation de conseil juridique",
        kind=ConventionKind.PRESTATION,
        service="affaires-juridiques",
        provider=METRO_SIREN,
        others=["63164"],
        start=date(2027, 1, 1),
        stage="draft",
        object="La Métropole apporte un conseil juridique ponctuel à la commune de Gerzat.",
    ),
]

STAGES = ["draft", "consultation", "deliberated", "signed", "in_force"]


def organisation(key: str) -> Organisation:
    if key == "EPCI" or key == METRO_SIREN:
        return Organisation.objects.get(siren=METRO_SIREN)
    if len(key) == 9:
        return Organisation.objects.get(siren=key)
    return Organisation.objects.get(insee_code=key)


def deliberation_number(org: Organisation, day: date, convention: Convention, suffix="") -> str:
    prefix = "DC" if org.is_epci else "DM"
    return f"{prefix}-{day:%Y%m%d}-{convention.reference.split('-')[-1]}{suffix}"


def acknowledgement(organisation, day: date, number: str) -> str:
    """An accusé de réception number as @CTES writes it: department-SIREN-date-act-nature."""
    return f"063-{organisation.siren}-{day:%Y%m%d}-{number}-DE"


def make_enforceable(convention, deliberated_on: date, signed_on: date) -> None:
    """Transmit and publish the deliberations three days after the sessions, transmit the
    signed convention two days after its signature and notify it the day after."""
    for deliberation in convention.deliberations.filter(amendment__isnull=True):
        deliberation.transmitted_on = deliberated_on + timedelta(days=3)
        deliberation.published_on = deliberated_on + timedelta(days=3)
        deliberation.acknowledgement_number = acknowledgement(
            deliberation.organisation, deliberation.transmitted_on, deliberation.number
        )
        deliberation.save()
    records.convention_publicity_record(
        convention=convention,
        transmitted_on=signed_on + timedelta(days=2),
        acknowledgement_number=acknowledgement(
            convention.parties.order_by("pk").first().organisation,
            signed_on + timedelta(days=2),
            convention.reference,
        ),
        notified_on=signed_on + timedelta(days=3),
    )


def add_deliberations(convention, parties, day, amendment=None):
    for org in parties:
        Deliberation.objects.create(
            convention=convention,
            amendment=amendment,
            organisation=org,
            assembly="Conseil métropolitain" if org.is_epci else "Conseil municipal",
            date=day,
            number=deliberation_number(
                org, day, convention, f"-A{amendment.number}" if amendment else ""
            ),
            object=f"Approbation de « {convention.title} »"
            + (f", avenant n° {amendment.number}" if amendment else ""),
        )


@transaction.atomic
def build(demo: DemoConvention) -> Convention:
    epci = organisation("EPCI")
    service = Service.objects.get(code=demo.service, territory=epci)
    others = [organisation(key) for key in demo.others]
    convention = Convention(
        territory=epci,
        title=demo.title,
        kind=demo.kind,
        object=demo.object,
        preamble="Dans le cadre d'une bonne organisation des services, les parties mutualisent "
        "ce service afin d'en améliorer l'efficience et la qualité.",
        start_date=demo.start,
        retained_service_basis=demo.retained_service_basis,
        managing_organisation=epci if demo.kind == ConventionKind.SERVICE_COMMUN else None,
    )
    terms = Terms(
        settlement_mode=demo.settlement,
        periodicity_months=demo.periodicity,
        instalment_count=demo.instalments,
        unit_cost_method=UNIT_COST_METHOD,
        end_date=demo.end,
        tacit_renewal=demo.end is None,
        notice_months=6,
        managing_share_mode=demo.managing_share,
        managing_share_value=Decimal(demo.managing_value) if demo.managing_value else None,
    )
    records.convention_create(convention=convention, terms=terms)
    parties = []
    if demo.provider:
        provider = organisation(demo.provider)
        Party.objects.create(convention=convention, organisation=provider, role=PartyRole.PROVIDER)
        parties.append(provider)
        role = PartyRole.BENEFICIARY
    else:
        role = PartyRole.MEMBER
    for org in others:
        Party.objects.create(convention=convention, organisation=org, role=role)
        parties.append(org)
    line = ConventionService.objects.create(
        convention=convention,
        service=service,
        unit_type=service.unit_type,
        allocation_key=demo.allocation_key,
        population_vintage=demo.population_vintage,
    )
    for year in range(demo.start.year, demo.start.year + 2):
        for key, units in demo.forecasts.items():
            UsageForecast.objects.create(
                terms=terms,
                service=line,
                beneficiary=organisation(key),
                year=year,
                units=Decimal(units),
            )
        for key, share in demo.fixed_shares.items():
            UsageForecast.objects.create(
                terms=terms,
                service=line,
                beneficiary=organisation(key),
                year=year,
                units=Decimal("0"),
                fixed_share_percent=Decimal(share),
            )
    for ref, job, employer, regime, share in demo.agents:
        AgentAssignment.objects.create(
            convention=convention,
            agent_ref=ref,
            job_title=job,
            employer=organisation(employer),
            regime=regime,
            share_percent=Decimal(share),
            functional_authority="Le maire de la commune bénéficiaire"
            if demo.kind == ConventionKind.MISE_A_DISPOSITION and demo.provider == METRO_SIREN
            else "Le président de la Métropole ou le maire, selon la mission",
            hierarchical_authority=f"L'autorité territoriale de {organisation(employer).name}",
            start_date=demo.start,
        )
    if demo.kind == ConventionKind.SERVICE_COMMUN:
        ImpactSheet.objects.create(
            convention=convention,
            established_on=demo.deliberated_on - timedelta(days=60),
            organisation_and_working_conditions="Les agents sont regroupés au sein d'un service "
            "unique à la Métropole ; les horaires et le lieu de travail sont précisés en annexe.",
            pay="Les agents transférés conservent leur régime indemnitaire s'ils y ont intérêt.",
            acquired_rights="Les droits acquis (ancienneté, congés, compte épargne-temps) sont "
            "conservés.",
        )
        for org in parties:
            StaffBodyOpinion.objects.create(
                convention=convention,
                organisation=org,
                body=StaffBody.CST,
                date=demo.deliberated_on - timedelta(days=30),
                opinion=Opinion.FAVOURABLE,
            )
    stage = STAGES.index(demo.stage)
    if stage >= 1:
        convention = transitions.convention_transition(convention, "submit")
    if stage >= 2:
        add_deliberations(convention, parties, demo.deliberated_on)
        convention = transitions.convention_transition(convention, "deliberate")
    if stage >= 3:
        convention = transitions.convention_transition(
            convention, "sign", signature_date=demo.signed_on
        )
    if stage >= 4:
        make_enforceable(convention, demo.deliberated_on, demo.signed_on)
        convention = transitions.convention_transition(convention, "enter_into_force")
    if demo.amendment:
        spec = demo.amendment
        amendment = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object=spec["object"], effective_from=spec["effective_from"]),
            terms=Terms(
                **{**in_force.terms_values(terms), "periodicity_months": spec["periodicity"]}
            ),
        )
        add_deliberations(convention, parties, spec["deliberated_on"], amendment=amendment)
        amendments.amendment_sign(amendment, signature_date=spec["signed_on"])
    return convention


def seed_demo_conventions() -> int:
    """Create the demo conventions that do not exist yet; returns how many were created."""
    existing = set(Convention.objects.values_list("title", flat=True))
    created = 0
    for demo in DEMO:
        if demo.title not in existing:
            build(demo)
            created += 1
    return created


# --- the schéma de mutualisation of the 2026-2032 mandate ---------------------------------------

SCHEME_TITLE = "Schéma de mutualisation des services 2026-2032"
# (title, service, kind, communes' INSEE codes, horizon, target year, FTE, € per year, status,
#  titles of the conventions that realise it, progress note)
SCHEME_ACTIONS = [
    (
        "Mutualiser l'assistance informatique des communes",
        "systemes-information",
        ConventionKind.MISE_A_DISPOSITION,
        ["63014", "63032", "63063", "63069"],
        Horizon.SHORT,
        2026,
        "-0.50",
        "-42000.00",
        ActionStatus.DONE,
        ["Mise à disposition du service systèmes d'information"],
        "Convention en vigueur depuis le 1er janvier 2026 pour trois communes ; Le Cendre "
        "étudie son adhésion.",
    ),
    (
        "Étendre le service commun d'instruction du droit des sols",
        "ads",
        ConventionKind.SERVICE_COMMUN,
        ["63014", "63019", "63042", "63099", "63141", "63254", "63272", "63345", "63193"],
        Horizon.SHORT,
        2026,
        "-1.00",
        "-65000.00",
        ActionStatus.DONE,
        ["Service commun d'instruction des autorisations du droit des sols"],
        "Huit communes membres ; Lempdes rejoindra le service à la fin de son contrat actuel.",
    ),
    (
        "Produire la paie des communes volontaires",
        "paie",
        ConventionKind.MISE_A_DISPOSITION,
        ["63070", "63263"],
        Horizon.SHORT,
        2027,
        "-0.80",
        "-38000.00",
        ActionStatus.PREPARING,
        ["Mise à disposition du service de la paie"],
        "Convention soumise aux conseils municipaux.",
    ),
    (
        "Créer un service commun de la commande publique",
        "commande-publique",
        ConventionKind.SERVICE_COMMUN,
        ["63113", "63075", "63308"],
        Horizon.MEDIUM,
        2028,
        "-1.50",
        "-90000.00",
        ActionStatus.PREPARING,
        ["Service commun de la commande publique"],
        "Projet de convention en cours de rédaction ; fiche d'impact à établir.",
    ),
    (
        "Créer un service commun des archives",
        "archives",
        ConventionKind.SERVICE_COMMUN,
        ["63124", "63164"],
        Horizon.MEDIUM,
        2027,
        "-0.40",
        "-18000.00",
        ActionStatus.PREPARING,
        ["Service commun des archives"],
        "Convention délibérée, à signer.",
    ),
    (
        "Offrir un conseil juridique aux communes",
        "affaires-juridiques",
        ConventionKind.PRESTATION,
        ["63164", "63284", "63307"],
        Horizon.MEDIUM,
        2029,
        "0.00",
        "-12000.00",
        ActionStatus.PLANNED,
        ["Prestation de conseil juridique"],
        "",
    ),
    (
        "Mutualiser la maintenance du patrimoine bâti",
        "patrimoine-bati",
        ConventionKind.MISE_A_DISPOSITION,
        ["63113", "63124", "63193", "63284"],
        Horizon.LONG,
        2031,
        "-2.00",
        "-150000.00",
        ActionStatus.PLANNED,
        [],
        "",
    ),
    (
        "Créer un centre technique municipal commun au sud de la Métropole",
        None,
        ConventionKind.SERVICE_COMMUN,
        ["63069", "63272", "63307"],
        Horizon.LONG,
        2032,
        "-3.00",
        "-210000.00",
        ActionStatus.ABANDONED,
        [],
        "Abandonnée : les communes ont préféré des conventions de prestation ponctuelles.",
    ),
]
# Opinions of some councils; the others are deemed favourable once the three months are over.
SCHEME_OPINIONS = {
    "63113": (date(2026, 9, 24), Opinion.FAVOURABLE),
    "63124": (date(2026, 9, 18), Opinion.FAVOURABLE),
    "63014": (date(2026, 9, 10), Opinion.FAVOURABLE),
    "63164": (date(2026, 9, 29), Opinion.UNFAVOURABLE),
    "63307": (date(2026, 9, 17), Opinion.FAVOURABLE),
}


def seed_demo_scheme() -> int:
    """The territory's scheme for the 2026-2032 mandate: submitted to the councils in July,
    approved in October 2026 (the three months being over). Returns 1 if created, else 0."""
    epci = organisation("EPCI")
    if Scheme.objects.filter(territory=epci, first_year=2026).exists():
        return 0
    with transaction.atomic():
        demo = Scheme.objects.create(
            territory=epci,
            title=SCHEME_TITLE,
            first_year=2026,
            last_year=2032,
            summary="Mutualiser d'abord les fonctions support (informatique, instruction du droit "
            "des sols, paie), puis la commande publique et les archives, enfin les services "
            "techniques ; chaque commune adhère « à la carte », sur la base du volontariat.",
        )
        conventions = {c.title: c for c in Convention.objects.filter(territory=epci)}
        services = {s.code: s for s in Service.objects.filter(territory=epci)}
        for (
            title,
            service,
            kind,
            communes,
            horizon,
            year,
            fte,
            cost,
            status,
            realised,
            note,
        ) in SCHEME_ACTIONS:
            action = SchemeAction.objects.create(
                scheme=demo,
                title=title,
                service=services.get(service),
                kind=kind,
                horizon=horizon,
                target_year=year,
                expected_fte_change=Decimal(fte),
                expected_cost_change=Decimal(cost),
                status=status,
                progress_note=note,
            )
            action.communes.set([organisation(code) for code in communes])
            action.conventions.set([conventions[t] for t in realised if t in conventions])
        scheme.scheme_submit(demo, on=date(2026, 7, 3))
        for code, (day, opinion) in SCHEME_OPINIONS.items():
            SchemeOpinion.objects.create(
                scheme=demo,
                commune=organisation(code),
                date=day,
                deliberation_number=f"{day.year}-{code[-3:]}-MUT",
                opinion=opinion,
            )
        scheme.scheme_adopt(demo, on=date(2026, 10, 15), number="2026-10-15-042")
    return 1
