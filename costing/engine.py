"""The reimbursement engine (CGCT D5211-16): pure Python, ``Decimal`` only, frozen dataclasses
in and out. No Django import (checked by import-linter in CI); costing/services.py loads the
inputs from the database and stores what comes out. The rules are explained, with worked
examples that are also tests, in docs/costing.md.

1. unit cost = eligible cost ÷ reference units, rounded half up to the cent;
2. a reimbursement line per convention × payer × service × period = unit cost × units, rounded;
3. a service commun's cost shared by its key (units, population, fixed %), by largest remainder;
4. instalments from the forecast, and the year-end regularisation = actual − instalments;
5. for a service commun charged on the attribution de compensation (AC): the forecast deducted
   from the AC and the year-end balance = actual − forecast;
6. each organisation's net position across all conventions, in both directions.
Every output carries what it was computed from.
"""

import calendar
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from costing.money import ZERO, MoneyError, allocate, as_decimal, round_cents, split_evenly

# Allocation keys and settlement modes (the same codes as the conventions app's choices).
KEY_UNITS = "UNITS"
KEY_POPULATION = "POPULATION"
KEY_FIXED_SHARES = "FIXED_SHARES"
SETTLEMENT_TITRE = "TITRE"
SETTLEMENT_AC = "AC_IMPUTATION"
SETTLEMENT_MIXED = "MIXED"

# Cost categories (D5211-16: personnel, fournitures, renouvellement des biens, contrats de
# services rattachés; any other cost must be strictly linked to the service).
PERSONNEL = "PERSONNEL"
SUPPLIES = "SUPPLIES"
ASSET_RENEWAL = "ASSET_RENEWAL"
SERVICE_CONTRACTS = "SERVICE_CONTRACTS"
OTHER_LINKED = "OTHER_LINKED"
OVERHEAD = "OVERHEAD"
NEEDS_JUSTIFICATION = (OTHER_LINKED, OVERHEAD)


class EngineError(ValueError):
    """An input the engine cannot compute from; the message says why, in French."""


# --- 1. unit cost ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CostLineInput:
    label: str
    category: str
    accounts_amount: Decimal  # from the latest compte administratif / compte financier unique
    budget_adjustment: Decimal  # foreseeable change, from the budget primitif of year N
    eligible: bool
    justification: str = ""
    account: str = ""  # M57 account (nature), e.g. 6411

    @property
    def amount(self) -> Decimal:
        return as_decimal(self.accounts_amount) + as_decimal(self.budget_adjustment)


@dataclass(frozen=True)
class UnitCostResult:
    eligible_cost: Decimal  # Σ (accounts + adjustment) of eligible lines, to the cent
    excluded_cost: Decimal  # the same for the lines left out
    reference_units: Decimal
    unit_cost: Decimal  # eligible cost ÷ reference units, rounded half up to the cent
    lines: tuple[CostLineInput, ...]


def compute_unit_cost(lines: Sequence[CostLineInput], reference_units: Decimal) -> UnitCostResult:
    """Unit cost of a service for a year: eligible cost ÷ reference units, rounded to the cent.

    448 278,27 € over 1 850 units → 242,31 €.
    """
    reference_units = as_decimal(reference_units)
    if reference_units <= 0:
        raise EngineError(
            "Le nombre d'unités de référence doit être strictement positif pour calculer un coût "
            "unitaire."
        )
    eligible = round_cents(sum((line.amount for line in lines if line.eligible), ZERO))
    excluded = round_cents(sum((line.amount for line in lines if not line.eligible), ZERO))
    if eligible < 0:
        raise EngineError("Le coût éligible du service est négatif : vérifiez la base de coûts.")
    return UnitCostResult(
        eligible_cost=eligible,
        excluded_cost=excluded,
        reference_units=reference_units,
        unit_cost=round_cents(eligible / reference_units),
        lines=tuple(lines),
    )


def provisional_unit_cost(previous: Decimal, index_now: Decimal, index_before: Decimal) -> Decimal:
    """CU provisional N = CU N-1 × (index N ÷ index N-1), until the notified unit cost exists."""
    if as_decimal(index_before) <= 0:
        raise EngineError("L'indice de référence de l'année précédente doit être positif.")
    return round_cents(as_decimal(previous) * as_decimal(index_now) / as_decimal(index_before))


def notification_deadline(
    year: int,
    *,
    renewal_years: Iterable[int],
    signature_date: date | None = None,
    usual: tuple[int, int] = (4, 15),
    renewal: tuple[int, int] = (4, 30),
) -> date:
    """Date by which the unit cost of ``year`` must be notified (D5211-16, L1612-2): before the
    budget deadline (15 April; 30 April in a year of renewal of the assemblies); in the year of
    signature, within three months of the signature."""
    if signature_date is not None and signature_date.year == year:
        carry, month_index = divmod(signature_date.month - 1 + 3, 12)
        target_year, target_month = signature_date.year + carry, month_index + 1
        last_day = calendar.monthrange(target_year, target_month)[1]
        return date(target_year, target_month, min(signature_date.day, last_day))
    month, day = renewal if year in set(renewal_years) else usual
    return date(year, month, day)


# --- 2 to 6. a year of reimbursements ----------------------------------------------------------


@dataclass(frozen=True)
class Party:
    id: int
    siren: str
    name: str
    is_epci: bool = False


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Usage:
    payer_id: int
    service: str
    day: date
    units: Decimal  # already weighted (équivalents permis, …)
    reference: str = ""


@dataclass(frozen=True)
class ServiceInput:
    code: str
    name: str
    unit_cost: Decimal | None  # None: no unit cost for the year (a finding, no line)
    unit_cost_provisional: bool = False
    allocation_key: str = ""  # "" for a mise à disposition (units used)
    key_weights: Mapping[int, Decimal] = field(default_factory=dict)  # payer id → population or %
    total_cost: Decimal | None = None  # the eligible cost shared by a population or fixed key


@dataclass(frozen=True)
class ConventionInput:
    reference: str
    payee: Party  # the provider, or the organisation managing the service commun
    payers: tuple[Party, ...]  # beneficiaries, or the other members of the service commun
    services: tuple[ServiceInput, ...]
    periods: tuple[Period, ...]  # reimbursement periods of the year (periodicity ≤ 12 months)
    usages: tuple[Usage, ...] = ()
    forecasts: Mapping[tuple[int, str], Decimal] = field(default_factory=dict)
    instalment_count: int = 0
    settlement_mode: str = SETTLEMENT_TITRE


@dataclass(frozen=True)
class Line:
    """One reimbursement: ``payer`` owes ``amount`` to ``payee``."""

    convention: str
    payer: Party
    payee: Party
    service: str
    service_name: str
    period: Period
    basis: str  # KEY_UNITS (unit cost × units) or the allocation key used
    units: Decimal
    unit_cost: Decimal | None
    amount: Decimal
    usage_count: int = 0
    unit_cost_provisional: bool = False
    key_weight: Decimal | None = None
    key_total: Decimal | None = None
    shared_cost: Decimal | None = None


@dataclass(frozen=True)
class Settlement:
    """A payer's year under one convention: forecast, instalments, actual, balance."""

    convention: str
    payer: Party
    payee: Party
    actual: Decimal  # Σ lines
    forecast: Decimal  # Σ services round(unit cost × forecast units)
    instalments: tuple[Decimal, ...]  # add up to the forecast
    regularisation: Decimal  # actual − Σ instalments (positive: to collect; negative: refund)
    ac_deduction: Decimal  # forecast deducted from the attribution de compensation
    ac_balance: Decimal  # actual − AC deduction, settled at year end
    settlement_mode: str

    @property
    def instalments_total(self) -> Decimal:
        return sum(self.instalments, Decimal("0.00"))


@dataclass(frozen=True)
class Position:
    """An organisation's net position for the year across every convention."""

    party: Party
    receivable: Decimal  # owed to it
    payable: Decimal  # owed by it
    net: Decimal  # receivable − payable: positive, it is owed money


@dataclass(frozen=True)
class Finding:
    convention: str
    code: str
    message: str


@dataclass(frozen=True)
class YearResult:
    year: int
    lines: tuple[Line, ...]
    borne_by_payee: tuple[Line, ...]  # the managing organisation's own share of a service commun
    settlements: tuple[Settlement, ...]
    positions: tuple[Position, ...]
    findings: tuple[Finding, ...]
    total: Decimal


def unit_lines(convention: ConventionInput, service: ServiceInput) -> list[Line]:
    """Unit cost × units used, per payer and period, rounded to the cent per line."""
    lines = []
    for payer in convention.payers:
        for period in convention.periods:
            usages = [
                u
                for u in convention.usages
                if u.payer_id == payer.id and u.service == service.code and period.contains(u.day)
            ]
            if not usages:
                continue
            units = sum((as_decimal(u.units) for u in usages), Decimal(0))
            if units < 0:
                raise EngineError(
                    f"Unités négatives pour {payer.name} ({service.name}) : vérifiez l'état des recours."
                )
            lines.append(
                Line(
                    convention=convention.reference,
                    payer=payer,
                    payee=convention.payee,
                    service=service.code,
                    service_name=service.name,
                    period=period,
                    basis=KEY_UNITS,
                    units=units,
                    unit_cost=service.unit_cost,
                    amount=round_cents(service.unit_cost * units),
                    usage_count=len(usages),
                    unit_cost_provisional=service.unit_cost_provisional,
                )
            )
    return lines


def key_lines(convention: ConventionInput, service: ServiceInput) -> list[Line]:
    """A service commun's eligible cost shared by population or fixed percentages over the year:
    the rounded shares add up exactly to the cost (largest remainder, ties to the smaller SIREN)."""
    members = [convention.payee, *convention.payers]
    weighted = [m for m in members if m.id in service.key_weights]
    if service.total_cost is None:
        raise EngineError(
            f"Coût du service « {service.name} » inconnu : la répartition est impossible."
        )
    weights = [as_decimal(service.key_weights[m.id]) for m in weighted]
    try:
        shares = allocate(service.total_cost, weights, [m.siren for m in weighted])
    except MoneyError as error:
        raise EngineError(f"{convention.reference}, « {service.name} » : {error}") from error
    year = Period(min(p.start for p in convention.periods), max(p.end for p in convention.periods))
    total_weight = sum(weights, Decimal(0))
    return [
        Line(
            convention=convention.reference,
            payer=member,
            payee=convention.payee,
            service=service.code,
            service_name=service.name,
            period=year,
            basis=service.allocation_key,
            units=Decimal(0),
            unit_cost=None,
            amount=share,
            key_weight=weight,
            key_total=total_weight,
            shared_cost=round_cents(service.total_cost),
        )
        for member, weight, share in zip(weighted, weights, shares, strict=True)
    ]


def forecast_amount(convention: ConventionInput, payer: Party) -> Decimal:
    total = Decimal("0.00")
    for service in convention.services:
        units = convention.forecasts.get((payer.id, service.code))
        if units is not None and service.unit_cost is not None:
            total += round_cents(service.unit_cost * as_decimal(units))
    return total


def settle(convention: ConventionInput, payer: Party, actual: Decimal) -> Settlement:
    forecast = forecast_amount(convention, payer)
    on_ac = convention.settlement_mode in (SETTLEMENT_AC, SETTLEMENT_MIXED)
    if on_ac:
        instalments: tuple[Decimal, ...] = ()
    elif convention.instalment_count > 0:
        instalments = tuple(split_evenly(forecast, convention.instalment_count))
    else:
        instalments = ()
    called = sum(instalments, Decimal("0.00"))  # the same as Settlement.instalments_total
    return Settlement(
        convention=convention.reference,
        payer=payer,
        payee=convention.payee,
        actual=actual,
        forecast=forecast,
        instalments=instalments,
        regularisation=actual - called if not on_ac else Decimal("0.00"),
        ac_deduction=forecast if on_ac else Decimal("0.00"),
        ac_balance=actual - forecast if on_ac else Decimal("0.00"),
        settlement_mode=convention.settlement_mode,
    )


def line_order(line: Line):
    return (line.convention, line.payer.siren, line.service, line.period.start)


def convention_year(
    year: int, convention: ConventionInput
) -> tuple[list[Line], list[Line], list[Finding]]:
    """The lines of one convention for the year, and the managing organisation's own share."""
    if not convention.periods:
        raise EngineError(
            f"Aucune période de remboursement en {year} : la convention ne couvre pas l'exercice."
        )
    lines: list[Line] = []
    borne: list[Line] = []
    findings: list[Finding] = []
    for service in sorted(convention.services, key=lambda s: s.code):
        if service.allocation_key in (KEY_POPULATION, KEY_FIXED_SHARES):
            produced = key_lines(convention, service)
        elif service.unit_cost is None:
            if any(u.service == service.code for u in convention.usages):
                findings.append(
                    Finding(
                        convention.reference,
                        "NO_UNIT_COST",
                        f"Aucun coût unitaire {year} pour « {service.name} » : les recours ne "
                        "peuvent être valorisés.",
                    )
                )
            continue
        else:
            produced = unit_lines(convention, service)
        for line in produced:
            (borne if line.payer.id == convention.payee.id else lines).append(line)
    return lines, borne, findings


def compute_year(year: int, conventions: Iterable[ConventionInput]) -> YearResult:
    """Every reimbursement of ``year``; the result does not depend on the order of the inputs."""
    lines: list[Line] = []
    borne: list[Line] = []
    settlements: list[Settlement] = []
    findings: list[Finding] = []
    for convention in sorted(conventions, key=lambda c: c.reference):
        try:
            convention_lines, convention_borne, convention_findings = convention_year(
                year, convention
            )
        except EngineError as error:
            # One convention's missing data never blocks the others: it becomes a finding.
            findings.append(Finding(convention.reference, "NOT_COMPUTED", str(error)))
            continue
        lines.extend(convention_lines)
        borne.extend(convention_borne)
        findings.extend(convention_findings)
        for payer in sorted(convention.payers, key=lambda p: p.siren):
            if payer.id == convention.payee.id:
                continue
            actual = sum(
                (x.amount for x in convention_lines if x.payer.id == payer.id), Decimal("0.00")
            )
            settlements.append(settle(convention, payer, actual))
    lines.sort(key=line_order)
    borne.sort(key=line_order)
    return YearResult(
        year=year,
        lines=tuple(lines),
        borne_by_payee=tuple(borne),
        settlements=tuple(settlements),
        positions=tuple(net_positions(lines)),
        findings=tuple(findings),
        total=sum((line.amount for line in lines), Decimal("0.00")),
    )


def net_positions(lines: Iterable[Line]) -> list[Position]:
    """For each organisation: what it is owed, what it owes, and the net (who owes whom)."""
    receivable: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    payable: dict[int, Decimal] = defaultdict(lambda: Decimal("0.00"))
    parties: dict[int, Party] = {}
    for line in lines:
        receivable[line.payee.id] += line.amount
        payable[line.payer.id] += line.amount
        parties[line.payee.id] = line.payee
        parties[line.payer.id] = line.payer
    return [
        Position(party, receivable[pid], payable[pid], receivable[pid] - payable[pid])
        for pid, party in sorted(parties.items(), key=lambda item: item[1].siren)
    ]


# --- compliance (D5211-16) ---------------------------------------------------------------------


@dataclass(frozen=True)
class ComplianceInput:
    convention: str
    is_mise_a_disposition: bool
    unit_cost_method: str
    periodicity_months: int
    payers_without_forecast: tuple[str, ...] = ()
    cost_lines: tuple[CostLineInput, ...] = ()
    # (service name, date the unit cost was notified or None, notification deadline), per service
    notifications: tuple[tuple[str, date | None, date], ...] = ()
    amounts_without_usage: tuple[str, ...] = ()


def compliance_findings(facts: ComplianceInput) -> list[Finding]:
    """What D5211-16 requires and the file lacks, per convention and year."""
    ref = facts.convention
    found = []
    if not facts.unit_cost_method.strip():
        found.append(
            Finding(
                ref,
                "NO_METHOD",
                "Méthode de détermination du coût unitaire absente de la convention.",
            )
        )
    if facts.is_mise_a_disposition and facts.payers_without_forecast:
        found.append(
            Finding(
                ref,
                "NO_FORECAST",
                "Prévision d'utilisation absente pour : "
                + ", ".join(facts.payers_without_forecast)
                + ".",
            )
        )
    if facts.periodicity_months > 12:
        found.append(
            Finding(
                ref,
                "PERIODICITY",
                f"Périodicité de {facts.periodicity_months} mois : au plus 12 mois.",
            )
        )
    for line in facts.cost_lines:
        if not line.eligible:
            found.append(
                Finding(
                    ref, "INELIGIBLE_LINE", f"Ligne de coût non éligible exclue : « {line.label} »."
                )
            )
        elif line.category in NEEDS_JUSTIFICATION and not line.justification.strip():
            found.append(
                Finding(
                    ref,
                    "UNJUSTIFIED_LINE",
                    f"Ligne « {line.label} » sans justification du lien strict avec le service.",
                )
            )
        elif line.category == OVERHEAD and facts.is_mise_a_disposition:
            found.append(
                Finding(
                    ref,
                    "OVERHEAD_MAD",
                    f"Frais de structure « {line.label} » : juridiquement fragiles pour une mise à disposition (D5211-16).",
                )
            )
    for service, notified_on, deadline in facts.notifications:
        if notified_on is None:
            found.append(
                Finding(
                    ref,
                    "NOT_NOTIFIED",
                    f"Coût unitaire de « {service} » non notifié aux bénéficiaires.",
                )
            )
        elif notified_on > deadline:
            found.append(
                Finding(
                    ref,
                    "LATE_NOTIFICATION",
                    f"Coût unitaire de « {service} » notifié le {notified_on:%d/%m/%Y}, après la date limite du {deadline:%d/%m/%Y}.",
                )
            )
    for name in facts.amounts_without_usage:
        found.append(Finding(ref, "NO_USAGE", f"Montant sans état des recours pour : {name}."))
    return found


# --- cost base sources and M57 accounts (D5211-16, issue 11) ------------------------------------

SOURCE_CA = "CA"
SOURCE_CFU = "CFU"
SOURCE_NAMES = {SOURCE_CA: "compte administratif", SOURCE_CFU: "compte financier unique"}
# The compte financier unique replaces the compte administratif from this exercise on.
CFU_FIRST_EXERCISE = 2026
# The latest accounts available when the budget of N is voted: those of N-1, at worst N-2.
OLDEST_SOURCE_OFFSET = 2
INVESTMENT_ACCOUNT_PREFIX = "2"  # class 2: investment
FINANCIAL_CHARGES_PREFIX = "66"  # charges financières
OPERATING_EXPENSES_PREFIX = "6"  # class 6: charges (de fonctionnement)
ACCOUNT_DIGITS = (2, 10)


def is_account_number(account: str) -> bool:
    """An M57 account as written in the accounts: digits only, 2 to 10 of them (e.g. 6411)."""
    low, high = ACCOUNT_DIGITS
    return account.isascii() and account.isdigit() and low <= len(account) <= high


def is_investment_account(account: str) -> bool:
    return account.startswith(INVESTMENT_ACCOUNT_PREFIX)


def is_financial_charge_account(account: str) -> bool:
    return account.startswith(FINANCIAL_CHARGES_PREFIX)


def is_outside_operating_expenses(account: str) -> bool:
    """Neither a class 6 charge nor refused outright (investment, financial): an eligible line
    on such an account needs a justification of its strict link with the service."""
    return bool(account) and not (
        account.startswith(OPERATING_EXPENSES_PREFIX)
        or is_investment_account(account)
        or is_financial_charge_account(account)
    )


def cost_base_findings(
    year: int,
    source: str,
    source_year: int,
    lines: Sequence[CostLineInput],
    *,
    convention: str = "",
) -> list[Finding]:
    """What a cost base of ``year`` lacks against D5211-16: built from the latest accounts (CA, or
    CFU from the 2026 exercise on; older than N-2 is not the latest), eligible lines on
    operating expenses (class 6), never on investment (class 2) nor financial charges (66);
    any other account justified."""
    found = []
    document = SOURCE_NAMES.get(source, source)
    if source == SOURCE_CA and source_year >= CFU_FIRST_EXERCISE:
        found.append(
            Finding(
                convention,
                "CA_AFTER_CFU",
                f"Base de coûts {year} établie sur un compte administratif {source_year} : à "
                f"partir de l'exercice {CFU_FIRST_EXERCISE}, le compte financier unique le "
                "remplace.",
            )
        )
    if source_year < year - OLDEST_SOURCE_OFFSET:
        found.append(
            Finding(
                convention,
                "OLD_SOURCE",
                f"Base de coûts {year} établie sur le {document} {source_year} : antérieur à "
                f"l'exercice {year - OLDEST_SOURCE_OFFSET} (N-2), ce ne sont pas les derniers "
                "comptes disponibles (D5211-16).",
            )
        )
    for line in lines:
        if not line.eligible:
            continue
        account = line.account.strip()
        if not account:
            found.append(
                Finding(
                    convention,
                    "NO_ACCOUNT",
                    f"Ligne « {line.label} » sans compte M57 : son imputation ne peut être "
                    "vérifiée.",
                )
            )
        elif is_investment_account(account):
            found.append(
                Finding(
                    convention,
                    "ACCOUNT_NOT_ELIGIBLE",
                    f"Ligne « {line.label} » au compte {account} : une dépense d'investissement "
                    "(classe 2) ne peut être une charge éligible au coût de fonctionnement.",
                )
            )
        elif is_financial_charge_account(account):
            found.append(
                Finding(
                    convention,
                    "ACCOUNT_NOT_ELIGIBLE",
                    f"Ligne « {line.label} » au compte {account} : une charge financière (66) ne "
                    "peut être une charge éligible au coût de fonctionnement.",
                )
            )
        elif is_outside_operating_expenses(account) and not line.justification.strip():
            found.append(
                Finding(
                    convention,
                    "ACCOUNT_OUTSIDE_OPERATING",
                    f"Ligne « {line.label} » au compte {account}, hors des charges de "
                    "fonctionnement (classe 6), retenue sans justification du lien strict avec "
                    "le service.",
                )
            )
    return found
