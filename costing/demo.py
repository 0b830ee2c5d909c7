"""Demo costing data: cost bases and unit costs for 2025 to 2027, and monthly usage for the
demo conventions in force (deterministic: the same data on every machine).

Idempotent: cost bases are matched on (service, year); usage is only created for a convention
that has none yet.
"""

import importlib
import random
from datetime import UTC, date, datetime
from decimal import Decimal

from django.db import transaction

from conventions.demo import organisation as demo_organisation
from conventions.models import Convention, ConventionKind, PartyRole
from costing import services
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
from mutualisation.models import Service, UnitWeight

# service code → (reference units, [(label, category, M57 account, accounts amount, BP adjustment,
# eligible)]) for 2025; later years grow by GROWTH. The 2025 voirie base is the worked example of
# docs/costing.md: 448 278,27 € over 1 850 hours = 242,31 € per hour. Accounts (M57, nature):
# 6411 titulaires, 6413 contractuels, 6451 cotisations URSSAF; 6068 et 60632 fournitures;
# 611 et 6156 contrats et maintenance; 6811 dotations aux amortissements (the renewal of assets,
# a functioning charge); 6288 autres services extérieurs (overhead, justified); 6257 réceptions.
BASES_2025 = {
    "voirie-entretien": (
        "1850",
        [
            ("Rémunérations des équipes", CostCategory.PERSONNEL, "6411", "305634.00", "4583.01", True),
            ("Cotisations sociales des équipes", CostCategory.PERSONNEL, "6451", "96516.00", "1447.26", True),
            ("Fournitures de voirie", CostCategory.SUPPLIES, "60632", "12480.00", "0", True),
            (
                "Renouvellement des véhicules et outillage",
                CostCategory.ASSET_RENEWAL,
                "6811",
                "18000.00",
                "-1200.00",
                True,
            ),
            ("Contrats d'entretien des engins", CostCategory.SERVICE_CONTRACTS, "6156", "10818.00", "0", True),
            ("Réception de fin d'année", CostCategory.OTHER_LINKED, "6257", "3500.00", "0", False),
        ],
    ),
    "ads": (
        "640",
        [
            ("Instructeurs ADS", CostCategory.PERSONNEL, "6411", "221400.00", "4200.00", True),
            ("Logiciel d'instruction", CostCategory.SERVICE_CONTRACTS, "611", "28650.00", "0", True),
            ("Fournitures et affranchissement", CostCategory.SUPPLIES, "6068", "6150.00", "0", True),
            ("Quote-part des fonctions support", CostCategory.OVERHEAD, "6288", "12400.00", "0", True),
        ],
    ),
    "systemes-information": (
        "2400",
        [
            ("Techniciens et ingénieurs", CostCategory.PERSONNEL, "6411", "1240000.00", "18000.00", True),
            ("Ingénieurs contractuels", CostCategory.PERSONNEL, "6413", "470000.00", "7000.00", True),
            ("Renouvellement du parc", CostCategory.ASSET_RENEWAL, "6811", "540000.00", "0", True),
            ("Licences et maintenance", CostCategory.SERVICE_CONTRACTS, "6156", "468000.00", "12000.00", True),
            ("Consommables", CostCategory.SUPPLIES, "6068", "31000.00", "0", True),
        ],
    ),
    "patrimoine-bati": (
        "168000",
        [
            ("Agents de maintenance", CostCategory.PERSONNEL, "6411", "512000.00", "0", True),
            ("Fournitures et pièces", CostCategory.SUPPLIES, "60632", "86000.00", "0", True),
            ("Contrats de maintenance technique", CostCategory.SERVICE_CONTRACTS, "6156", "48800.00", "0", True),
        ],
    ),
    "paie": (
        "21600",
        [
            ("Gestionnaires de paie", CostCategory.PERSONNEL, "6411", "356000.00", "0", True),
            ("Logiciel de paie", CostCategory.SERVICE_CONTRACTS, "611", "54000.00", "0", True),
        ],
    ),
    "commande-publique": (
        "180",
        [
            ("Acheteurs et juristes", CostCategory.PERSONNEL, "6411", "610000.00", "0", True),
            ("Plateforme de dématérialisation", CostCategory.SERVICE_CONTRACTS, "611", "24000.00", "0", True),
        ],
    ),
    "archives": (
        "4200",
        [
            ("Archivistes", CostCategory.PERSONNEL, "6411", "198000.00", "0", True),
            ("Conditionnement", CostCategory.SUPPLIES, "6068", "14500.00", "0", True),
        ],
    ),
}  # fmt: skip
GROWTH = {2025: Decimal("1"), 2026: Decimal("1.021"), 2027: Decimal("1.043")}
# Notification dates: on time, except one late notification to show the compliance check.
NOTIFIED = {2025: date(2025, 3, 28), 2026: date(2026, 4, 2), 2027: None}
LATE = {("patrimoine-bati", 2026): date(2026, 5, 12)}
USAGE_YEARS = (2025, 2026)


@transaction.atomic
def seed_cost_bases() -> int:
    created = 0
    territory = demo_organisation("EPCI")  # another territory may name its services alike
    for code, (units, lines) in BASES_2025.items():
        service = Service.objects.get(code=code, territory=territory)
        for year, growth in GROWTH.items():
            base, was_created = CostBase.objects.get_or_create(
                service=service,
                year=year,
                defaults={
                    "source": SourceDocument.CFU if year - 1 >= 2026 else SourceDocument.CA,
                    "source_year": year - 1,
                    "reference_units": Decimal(units),
                    "reference_basis": ReferenceBasis.FORECAST,
                },
            )
            if not was_created:
                continue
            created += 1
            for label, category, account, amount, adjustment, eligible in lines:
                CostLine.objects.create(
                    cost_base=base,
                    label=label,
                    category=category,
                    account=account,
                    accounts_amount=(Decimal(amount) * growth).quantize(Decimal("0.01")),
                    budget_adjustment=Decimal(adjustment),
                    eligible=eligible,
                    justification="Temps passé par les fonctions support pour le service (clé : effectifs)."
                    if category == CostCategory.OVERHEAD
                    else ("Dépense sans lien strict avec le service." if not eligible else ""),
                )
            unit_cost = services.unit_cost_compute(base)
            # Computed in early March of N (or now, for a year still ahead), before notification.
            computed_at = min(datetime(year, 3, 2, 8, 30, tzinfo=UTC), unit_cost.computed_at)
            UnitCost.objects.filter(pk=unit_cost.pk).update(computed_at=computed_at)
            unit_cost.computed_at = computed_at
            notified = LATE.get((code, year), NOTIFIED[year])
            if notified:
                services.unit_cost_notify(unit_cost, notified)
    return created


def monthly(rng: random.Random, yearly: Decimal, month: int) -> Decimal:
    """A plausible monthly share of a yearly volume (quieter in August)."""
    season = Decimal("0.55") if month == 8 else Decimal("1.04")
    noise = Decimal(rng.randint(85, 115)) / 100
    return (yearly / 12 * season * noise).quantize(Decimal("1"))


@transaction.atomic
def seed_usage() -> int:
    rng = random.Random(20250101)
    created = 0
    for convention in (
        Convention.objects.filter(status__in=services.BILLED_STATUSES)
        .prefetch_related(
            "services__service__unit_type", "parties__organisation", "terms__forecasts"
        )
        .order_by("reference")
    ):
        if UsageRecord.objects.filter(convention=convention).exists():
            continue
        initial = convention.terms.get(amendment__isnull=True)
        forecasts = {(f.beneficiary_id, f.service_id): f.units for f in initial.forecasts.all()}
        if convention.kind == ConventionKind.SERVICE_COMMUN:
            payers = [
                p.organisation
                for p in convention.parties.all()
                if p.organisation_id != convention.managing_organisation_id
            ]
        else:
            payers = [
                p.organisation for p in convention.parties.all() if p.role == PartyRole.BENEFICIARY
            ]
        for line in convention.services.all():
            weights = list(UnitWeight.objects.filter(unit_type=line.unit_type).order_by("-weight"))
            for year in USAGE_YEARS:
                if year < convention.start_date.year:
                    continue
                for payer in payers:
                    yearly = forecasts.get((payer.pk, line.pk))
                    if yearly is None:
                        continue
                    created += usage_for(
                        convention, line, payer, year, Decimal(yearly), weights, rng
                    )
    return created


def usage_for(convention, line, payer, year, yearly, weights, rng) -> int:
    created = 0
    unit = line.unit_type.unit
    if unit in ("WORKSTATION", "SQUARE_METRE"):
        # A stock, counted each half-year (workstations) or quarter (m² maintained), each count
        # standing for that part of the year.
        months = [1, 7] if unit == "WORKSTATION" else [1, 4, 7, 10]
        for month in months:
            quantity = (yearly / len(months) * Decimal(rng.randint(97, 103)) / 100).quantize(
                Decimal("1")
            )
            created += record(
                convention, line, payer, year, month, quantity, None, f"{year}-{month:02d}"
            )
        return created
    for month in range(1, 13):
        volume = monthly(rng, yearly, month)
        if weights:
            # Weighted acts (équivalent permis): split the month's volume by type of act.
            mix = {"PC": Decimal("0.45"), "DP": Decimal("0.9"), "CU": Decimal("0.6")}
            for weight in weights:
                quantity = (volume * mix.get(weight.code, Decimal("0.3"))).quantize(Decimal("1"))
                if quantity:
                    created += record(
                        convention,
                        line,
                        payer,
                        year,
                        month,
                        quantity,
                        weight,
                        f"ADS-{year}{month:02d}-{weight.code}",
                    )
        else:
            created += record(
                convention, line, payer, year, month, volume, None, f"{year}-{month:02d}"
            )
    return created


def record(convention, line, payer, year, month, quantity, weight, reference) -> int:
    start, end = services.month_bounds(year, month)
    UsageRecord.objects.create(
        convention=convention,
        beneficiary=payer,
        service=line.service,
        unit_type=line.unit_type,
        weight=weight,
        period_start=start,
        period_end=end,
        quantity=quantity,
        units=services.weighted_units(quantity, weight),
        reference=reference,
        source=UsageSource.IMPORT,
    )
    return 1


def ensure_account_mapping() -> None:
    """The M57 account mapping is seeded by migration 0004; a flushed database gets it back."""
    from django.apps import apps

    migration = importlib.import_module("costing.migrations.0004_seed_m57_account_mapping")
    migration.seed(apps, None)


def seed_demo_costing() -> tuple[int, int]:
    ensure_account_mapping()
    return seed_cost_bases(), seed_usage()
