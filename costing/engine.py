"""The reimbursement engine (CGCT D5211-16): pure Python, ``Decimal`` only, frozen dataclasses
in and out. No Django import (checked by import-linter in CI); costing/services.py loads the
inputs from the database and stores what comes out. The rules are explained, with worked
examples that are also tests, in docs/costing.md.

1. unit cost = eligible cost ÷ reference units, rounded half up to the cent;
2. a reimbursement line per convention × payer × service × period = unit cost × units, rounded;
3. a service commun's cost shared by its key (units used, population, fixed %), by largest
   remainder, for the covered part of the year only (by days), each part of the year under the
   key in force then; the managing organisation's own part as the terms state it;
4. the forecast of each payer (unit cost × forecast units, or the forecast cost shared by the
   same key), the acomptes planned on it and the ones actually called;
5. the settlement: what is imputed on the attribution de compensation (AC), what was called,
   the balance, its direction and its channel (titre, mandat, or carried into next year's AC);
6. each organisation's net position across all conventions, gross and still to settle.
Every output carries what it was computed from.
"""

import calendar
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cached_property
from itertools import pairwise
from typing import NamedTuple

from costing.money import ZERO, MoneyError, allocate, as_decimal, round_cents, split_evenly

# The codes below are the values of the Django choices (conventions.models.AllocationKey,
# SettlementMode, ManagingShare; costing.models.CostCategory): tests/costing/test_codes.py
# keeps them equal. The engine may not import Django, so they are written here once.

# Allocation keys of a service commun; a mise à disposition has none (unit cost × units).
KEY_UNITS = "UNITS"
KEY_POPULATION = "POPULATION"
KEY_FIXED_SHARES = "FIXED_SHARES"
ALLOCATION_KEYS = (KEY_UNITS, KEY_POPULATION, KEY_FIXED_SHARES)
# The basis of a line that is unit cost × units (D5211-16); a keyed line names its key.
BASIS_UNIT_COST = "UNIT_COST"

# How a payer settles: by titre (with acomptes on the forecast), on the AC alone (the balance is
# carried into next year's AC), or mixed (the forecast on the AC, the balance by titre/mandat).
SETTLEMENT_TITRE = "TITRE"
SETTLEMENT_AC = "AC_IMPUTATION"
SETTLEMENT_MIXED = "MIXED"
SETTLEMENT_MODES = (SETTLEMENT_TITRE, SETTLEMENT_AC, SETTLEMENT_MIXED)
# Where the year-end balance goes.
CHANNEL_TITRE = "TITRE"  # to collect: a titre de recettes
CHANNEL_MANDAT = "MANDAT"  # to refund: a mandat or a réduction de titre, never a negative titre
CHANNEL_AC_NEXT_YEAR = "AC_N_PLUS_1"  # AC only: carried into next year's AC
CHANNEL_NONE = "NONE"  # nothing left to settle
CHANNELS = (CHANNEL_TITRE, CHANNEL_MANDAT, CHANNEL_AC_NEXT_YEAR, CHANNEL_NONE)

# The largest amounts stored: a unit cost has 12 digits (2 decimals), a cost 14 (2 decimals).
MAX_UNIT_COST = Decimal("9999999999.99")
MAX_COST = Decimal("999999999999.99")

# How the organisation managing a service commun bears its own part of a keyed cost.
MANAGING_NONE = "NONE"  # no part: the whole cost is shared among the other members
MANAGING_FIXED_PERCENT = "FIXED_PERCENT"  # a fixed %, the rest shared by the key among the others
MANAGING_WEIGHT = "WEIGHT"  # a weight entered for it in the key (e.g. an equivalent population)
MANAGING_SHARES = (MANAGING_NONE, MANAGING_FIXED_PERCENT, MANAGING_WEIGHT)

# Cost categories (D5211-16: personnel, fournitures, renouvellement des biens, contrats de
# services rattachés; any other cost must be strictly linked to the service).
PERSONNEL = "PERSONNEL"
SUPPLIES = "SUPPLIES"
ASSET_RENEWAL = "ASSET_RENEWAL"
SERVICE_CONTRACTS = "SERVICE_CONTRACTS"
OTHER_LINKED = "OTHER_LINKED"
OVERHEAD = "OVERHEAD"
COST_CATEGORIES = (PERSONNEL, SUPPLIES, ASSET_RENEWAL, SERVICE_CONTRACTS, OTHER_LINKED, OVERHEAD)
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
    if eligible > MAX_COST or eligible / reference_units > MAX_UNIT_COST:
        raise EngineError(
            "Le coût unitaire dépasserait 9 999 999 999,99 € (ou le coût éligible "
            "999 999 999 999,99 €) : vérifiez les montants et les unités de référence."
        )
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
    amount = as_decimal(previous) * as_decimal(index_now) / as_decimal(index_before)
    if amount > MAX_UNIT_COST:
        raise EngineError(
            "Le coût unitaire provisoire dépasserait 9 999 999 999,99 € : vérifiez les indices."
        )
    return round_cents(amount)


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

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class Usage(NamedTuple):
    """Units one payer used of one service, dated (its period's first day covered). A value
    record, immutable: a year reads two hundred thousand of them, built three times faster as
    a named tuple than as a frozen dataclass."""

    payer_id: int
    service: str
    day: date
    units: Decimal  # already weighted (équivalents permis, …)
    reference: str = ""
    count: int = 1  # how many usage records these units add up (the same payer, service, month)


NO_USAGE = (Decimal(0), 0)  # the units and usage count of a period without usage


@dataclass(frozen=True)
class KeySegment:
    """A part of the covered year under one set of terms: its key weights (population, fixed
    shares; for a key by units, the forecast units) and how the managing organisation takes
    part. An avenant that changes the key starts a new segment."""

    period: Period
    weights: Mapping[int, Decimal] = field(default_factory=dict)  # party id → weight
    managing_mode: str = ""  # one of MANAGING_SHARES, "" when the terms do not say
    managing_value: Decimal | None = None  # the % or the weight of MANAGING_FIXED_PERCENT/WEIGHT
    # The members during the segment (party ids; None: every party): a key by units shares
    # the segment's forecast among them only (a member that left forecasts nothing after).
    members: frozenset[int] | None = None


@dataclass(frozen=True)
class ServiceInput:
    code: str
    name: str
    unit_cost: Decimal | None  # None: no unit cost for the year (a finding, no line)
    unit_cost_provisional: bool = False
    allocation_key: str = ""  # "" for unit cost × units; one of ALLOCATION_KEYS for a key
    # A keyed service commun: the year's cost shared (the actual cost once known, else the
    # eligible cost of the cost base), the forecast cost (budget), and the key over the year.
    total_cost: Decimal | None = None
    forecast_cost: Decimal | None = None
    segments: tuple[KeySegment, ...] = ()

    @property
    def is_keyed(self) -> bool:
        return self.allocation_key in ALLOCATION_KEYS


@dataclass(frozen=True)
class CalledInstalment:
    """An acompte actually called (recorded), whatever the plan says."""

    rank: int
    due_date: date
    amount: Decimal
    reference: str = ""  # titre number
    status: str = ""


@dataclass(frozen=True)
class PlannedInstalment:
    rank: int
    due_date: date
    amount: Decimal


@dataclass(frozen=True)
class ConventionInput:
    reference: str
    payee: Party  # the provider, or the organisation managing the service commun
    payers: tuple[Party, ...]  # beneficiaries, or the other members of the service commun
    services: tuple[ServiceInput, ...]
    periods: tuple[Period, ...]  # reimbursement periods of the year (periodicity ≤ 12 months)
    usages: tuple[Usage, ...] = ()
    forecasts: Mapping[tuple[int, str], Decimal] = field(default_factory=dict)  # forecast units
    instalment_count: int = 0
    settlement_mode: str = SETTLEMENT_TITRE
    called: Mapping[int, tuple[CalledInstalment, ...]] = field(default_factory=dict)  # payer id
    # The part of the covered days a payer is a party, when an avenant brings it in or takes it
    # out during the year (payer id → Period; absent: every covered day).
    presence: Mapping[int, Period] = field(default_factory=dict)

    def presence_of(self, payer_id: int) -> Period:
        return self.presence.get(payer_id) or self.covered

    def leaves_early(self, payer_id: int) -> bool:
        """A payer that stops being a party before the end of the covered days."""
        span = self.presence.get(payer_id)
        return span is not None and span.end < self.covered.end

    @cached_property
    def covered(self) -> Period:
        return Period(min(p.start for p in self.periods), max(p.end for p in self.periods))

    # The usages indexed once per convention, so that each line or share reads only its own
    # payer's or service's usages (``period_totals``, ``units_used``): the year stays linear in
    # the number of members (a scan of every usage for each payer and period made it quadratic).
    @cached_property
    def usages_by_payer_service(self) -> dict[tuple[int, str], tuple[Usage, ...]]:
        index: dict[tuple[int, str], list[Usage]] = defaultdict(list)
        for u in self.usages:
            index[(u.payer_id, u.service)].append(u)
        return {key: tuple(found) for key, found in index.items()}

    @cached_property
    def usages_by_service(self) -> dict[str, tuple[Usage, ...]]:
        index: dict[str, list[Usage]] = defaultdict(list)
        for u in self.usages:
            index[u.service].append(u)
        return {key: tuple(found) for key, found in index.items()}

    def usages_of(self, payer_id: int, service: str, period: Period) -> list[Usage]:
        """The usages of one payer and service dated within ``period``."""
        return [
            u
            for u in self.usages_by_payer_service.get((payer_id, service), ())
            if period.contains(u.day)
        ]

    @cached_property
    def period_starts(self) -> list[date] | None:
        """The periods' first days when the periods follow one another without overlapping
        (as the services make them), else None."""
        periods = self.periods
        if all(p.start <= p.end for p in periods) and all(
            a.end < b.start for a, b in pairwise(periods)
        ):
            return [p.start for p in periods]
        return None

    @cached_property
    def period_totals(self) -> dict[tuple[int, str], dict[int, tuple[Decimal, int]]]:
        """Per payer and service, the units and the usage count of each period that has usages
        (by the period's index), added up in the usages' order, in one pass over the
        convention's usages: each usage is placed in its period by bisection, instead of
        testing every period against every usage (a monthly convention made it twelve tests
        per usage)."""
        totals: dict[tuple[int, str], dict[int, tuple[Decimal, int]]] = {}
        periods, starts = self.periods, self.period_starts
        for u in self.usages:
            if starts is None:
                indexes = [i for i, period in enumerate(periods) if period.contains(u.day)]
            else:
                index = bisect_right(starts, u.day) - 1
                if index < 0 or u.day > periods[index].end:
                    continue
                indexes = (index,)
            per_period = totals.get((u.payer_id, u.service))
            if per_period is None:
                per_period = totals[(u.payer_id, u.service)] = {}
            for index in indexes:
                units, count = per_period.get(index, NO_USAGE)
                per_period[index] = (units + as_decimal(u.units), count + u.count)
        return totals


class Line(NamedTuple):
    """One reimbursement: ``payer`` owes ``amount`` to ``payee``. A value record, immutable, as
    the settlements and positions below: a year makes a hundred and forty thousand lines, built
    in less than half the time as named tuples than as frozen dataclasses. The engine builds
    them (and the settlements) with positional arguments, in the fields' order: naming each
    argument made their construction four times slower."""

    convention: str
    payer: Party
    payee: Party
    service: str
    service_name: str
    period: Period
    basis: str  # BASIS_UNIT_COST (unit cost × units) or the allocation key used
    units: Decimal
    unit_cost: Decimal | None
    amount: Decimal
    usage_count: int = 0
    unit_cost_provisional: bool = False
    key_weight: Decimal | None = None
    key_total: Decimal | None = None
    shared_cost: Decimal | None = None  # the cost of the period shared by the key


class Settlement(NamedTuple):
    """A payer's year under one convention: forecast, AC, acomptes, actual and balance."""

    convention: str
    payer: Party
    payee: Party
    settlement_mode: str
    actual: Decimal  # Σ lines: the gross annual cost
    forecast: Decimal  # unit cost × forecast units, or the forecast cost shared by the key
    ac_deduction: Decimal  # the forecast imputed on the AC (AC or mixed mode)
    planned: tuple[PlannedInstalment, ...]  # acomptes to call on the forecast (titre mode)
    called: tuple[CalledInstalment, ...]  # acomptes actually called

    @property
    def instalments_total(self) -> Decimal:
        return sum((i.amount for i in self.called), ZERO)

    @property
    def balance(self) -> Decimal:
        """What remains to settle at year end: positive, the payer owes it; negative, it is
        refunded (or, AC only, carried into next year's AC)."""
        return self.actual - self.ac_deduction - self.instalments_total

    @property
    def channel(self) -> str:
        if self.balance == 0:
            return CHANNEL_NONE
        if self.settlement_mode == SETTLEMENT_AC:
            return CHANNEL_AC_NEXT_YEAR
        return CHANNEL_TITRE if self.balance > 0 else CHANNEL_MANDAT


class Position(NamedTuple):
    """An organisation's position for the year across every convention."""

    party: Party
    receivable: Decimal  # gross: owed to it
    payable: Decimal  # gross: owed by it
    settled: Decimal  # already settled in its favour (AC imputed and acomptes called), net
    net: Decimal = ZERO  # receivable − payable: positive, it is owed money

    @property
    def remaining(self) -> Decimal:
        """Still to settle after the AC and the acomptes: positive, to receive; negative, to pay."""
        return self.net - self.settled


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
    totals = convention.period_totals
    periods = convention.periods
    for payer in convention.payers:
        per_period = totals.get((payer.id, service.code))
        if per_period is None:
            continue
        for index in sorted(per_period):  # the periods' order
            units, count = per_period[index]
            if units < 0:
                raise EngineError(
                    f"Unités négatives pour {payer.name} ({service.name}) : vérifiez l'état des recours."
                )
            lines.append(
                Line(
                    convention.reference,
                    payer,
                    convention.payee,
                    service.code,
                    service.name,
                    periods[index],
                    BASIS_UNIT_COST,
                    units,
                    service.unit_cost,
                    round_cents(service.unit_cost * units),  # amount
                    count,  # usage_count
                    service.unit_cost_provisional,
                )
            )
    return lines


def year_period(year: int) -> Period:
    return Period(date(year, 1, 1), date(year, 12, 31))


def prorated(cost: Decimal, year: int, segments: Sequence[KeySegment]) -> list[Decimal]:
    """The cost of each segment: the year's cost × its days ÷ the days of the year, so that the
    parts of a fully covered year add up exactly to the cost (largest remainder); the part of
    the year the convention does not cover is not billed."""
    days = [s.period.days for s in segments]
    uncovered = year_period(year).days - sum(days)
    if uncovered < 0:
        raise EngineError("Les périodes de répartition se chevauchent ou débordent de l'année.")
    if uncovered == 0 and len(segments) == 1:
        return [round_cents(cost)]  # the whole year under one key: the whole cost, as allocated
    parts = allocate(
        cost,
        [Decimal(d) for d in days] + [Decimal(uncovered)],
        [s.period.start.isoformat() for s in segments] + ["~"],
    )
    return parts[:-1]


def segment_shares(
    convention: ConventionInput,
    service: ServiceInput,
    segment: KeySegment,
    cost: Decimal,
    weights: Mapping[int, Decimal],
) -> list[tuple[Party, Decimal, Decimal, Decimal]]:
    """(member, weight, total weight, share) of a segment's cost, the managing organisation's
    own part taken as the terms state it. The shares add up exactly to the cost."""
    payee = convention.payee
    mode = segment.managing_mode
    weights = {pid: as_decimal(w) for pid, w in weights.items()}
    if mode == MANAGING_NONE:
        weights.pop(payee.id, None)
    elif mode == MANAGING_WEIGHT:
        weights[payee.id] = as_decimal(segment.managing_value or 0)
    out: list[tuple[Party, Decimal, Decimal, Decimal]] = []
    if mode == MANAGING_FIXED_PERCENT:
        percent = as_decimal(segment.managing_value or 0)
        own, cost = allocate(cost, [percent, Decimal(100) - percent], ["0", "1"])
        out.append((payee, percent, Decimal(100), own))
        weights.pop(payee.id, None)
    members = [m for m in (payee, *convention.payers) if m.id in weights]
    member_weights = [weights[m.id] for m in members]
    if cost == 0 and not any(member_weights):
        return out
    try:
        shares = allocate(cost, member_weights, [m.siren for m in members])
    except MoneyError as error:
        raise EngineError(
            f"{convention.reference}, « {service.name} », du {segment.period.start:%d/%m/%Y} au "
            f"{segment.period.end:%d/%m/%Y} : {error}"
        ) from error
    total = sum(member_weights, Decimal(0))
    out += [(m, w, total, s) for m, w, s in zip(members, member_weights, shares, strict=True)]
    return out


def units_used(
    convention: ConventionInput, service: ServiceInput, period: Period
) -> tuple[dict[int, Decimal], dict[int, int]]:
    """Per payer, the units it used of ``service`` within ``period``, and how many usage
    records they add up: one pass over the service's usages."""
    used: dict[int, Decimal] = defaultdict(Decimal)
    counts: dict[int, int] = defaultdict(int)
    for u in convention.usages_by_service.get(service.code, ()):
        if period.contains(u.day):
            used[u.payer_id] += as_decimal(u.units)
            counts[u.payer_id] += u.count
    return dict(used), dict(counts)


def key_lines(year: int, convention: ConventionInput, service: ServiceInput) -> list[Line]:
    """A service commun's cost shared by its key, segment by segment (see ``prorated``): by
    population or fixed shares, or by the units each member used (its own usage included);
    the rounded shares of a segment add up exactly to its cost."""
    if service.total_cost is None:
        raise EngineError(
            f"Coût du service « {service.name} » inconnu : la répartition est impossible."
        )
    costs = prorated(service.total_cost, year, service.segments)
    by_units = service.allocation_key == KEY_UNITS
    lines = []
    for segment, cost in zip(service.segments, costs, strict=True):
        used, counts = units_used(convention, service, segment.period)
        if by_units:
            if any(units < 0 for units in used.values()):
                raise EngineError(
                    f"Unités négatives pour « {service.name} » : vérifiez l'état des recours."
                )
        else:
            used = {}  # a key by population or fixed shares: the units are not its weights
        weights = used if by_units else segment.weights
        for member, weight, total, share in segment_shares(
            convention, service, segment, cost, weights
        ):
            lines.append(
                Line(
                    convention.reference,
                    member,  # payer
                    convention.payee,
                    service.code,
                    service.name,
                    segment.period,
                    service.allocation_key,  # basis
                    used.get(member.id, Decimal(0)),  # units
                    None,  # unit_cost
                    share,  # amount
                    counts.get(member.id, 0),  # usage_count
                    False,  # unit_cost_provisional
                    weight,  # key_weight
                    total,  # key_total
                    cost,  # shared_cost
                )
            )
    return lines


def keyed_forecast(year: int, convention: ConventionInput, service: ServiceInput) -> dict:
    """Each member's share of the forecast cost, by the same key and segments as the actual
    shares (for a key by units: by the forecast units)."""
    if service.forecast_cost is None:
        return {}
    costs = prorated(service.forecast_cost, year, service.segments)
    forecast: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for segment, cost in zip(service.segments, costs, strict=True):
        weights = segment.weights
        if service.allocation_key == KEY_UNITS:
            weights = {
                payer_id: units
                for (payer_id, code), units in convention.forecasts.items()
                if code == service.code and (segment.members is None or payer_id in segment.members)
            }
            if not any(weights.values()):
                return {}  # no forecast units: nothing forecast (a compliance finding)
        for member, _weight, _total, share in segment_shares(
            convention, service, segment, cost, weights
        ):
            forecast[member.id] += share
    return dict(forecast)


def forecast_amounts(
    year: int, convention: ConventionInput, lines: Sequence[Line] | None = None
) -> dict[int, Decimal]:
    """Each payer's forecast for the year: unit cost × forecast units, or its keyed share of
    the forecast cost. ``lines``: the convention's lines of the year (``convention_year``,
    its managing organisation's own share included), when already computed."""
    totals: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for service in convention.services:
        if (
            lines is not None
            and service.is_keyed
            and service.allocation_key != KEY_UNITS
            and service.forecast_cost == service.total_cost
        ):
            # The forecast cost is the actual cost, shared by the same key over the same
            # segments: each member's forecast share is its actual shares, already computed.
            for line in lines:
                if line.service == service.code:
                    totals[line.payer.id] += line.amount
            continue
        if service.is_keyed:
            try:
                shares = keyed_forecast(year, convention, service)
            except EngineError:
                continue  # a key that cannot be shared: its actual lines say why (a finding)
            for payer_id, share in shares.items():
                totals[payer_id] += share
            continue
        if service.unit_cost is None:
            continue
        for payer in convention.payers:
            units = convention.forecasts.get((payer.id, service.code))
            if units is None:
                continue
            amount = service.unit_cost * as_decimal(units)
            if convention.leaves_early(payer.id):
                # Its forecast was stated for the year: it counts for the days it is a party.
                present = convention.presence_of(payer.id)
                amount = amount * present.days / convention.covered.days
            totals[payer.id] += round_cents(amount)
    return dict(totals)


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def instalment_plan(
    covered: Period, forecast: Decimal, count: int
) -> tuple[PlannedInstalment, ...]:
    """``count`` acomptes on the forecast, due on the first day of each of ``count`` equal runs
    of months of the covered part of the year (the first one on its first day); they add up
    exactly to the forecast (``split_evenly``)."""
    if count < 1 or forecast <= 0:
        return ()
    first_month = date(covered.start.year, covered.start.month, 1)
    months = (covered.end.year - first_month.year) * 12 + covered.end.month - first_month.month + 1
    amounts = split_evenly(forecast, count)
    return tuple(
        PlannedInstalment(
            rank,
            max(covered.start, add_months(first_month, (rank - 1) * months // count)),
            amount,
        )
        for rank, amount in enumerate(amounts, start=1)
    )


def settle(
    convention: ConventionInput, payer: Party, actual: Decimal, forecast: Decimal
) -> Settlement:
    on_ac = convention.settlement_mode in (SETTLEMENT_AC, SETTLEMENT_MIXED)
    planned = (
        ()
        if on_ac or convention.instalment_count < 1 or forecast <= 0  # most: nothing to plan
        else instalment_plan(
            convention.presence_of(payer.id), forecast, convention.instalment_count
        )
    )
    called = convention.called.get(payer.id)  # most payers have none called yet
    return Settlement(
        convention.reference,
        payer,
        convention.payee,
        convention.settlement_mode,
        actual,
        forecast,
        forecast if on_ac else ZERO,  # ac_deduction
        planned,
        tuple(sorted(called, key=lambda i: i.rank)) if called else (),  # called
    )


def line_order(line: Line):
    return (line.convention, line.payer.siren, line.service, line.period.start)


def service_lines(
    year: int, convention: ConventionInput, service: ServiceInput, findings: list[Finding]
) -> list[Line]:
    """The lines of one service of a convention (keyed shares or unit cost × units); adds the
    findings it notices. Raises EngineError when the service cannot be computed."""
    if service.is_keyed:
        if (
            convention.payee.is_epci
            and service.allocation_key == KEY_POPULATION
            and any(not s.managing_mode for s in service.segments)
        ):
            findings.append(
                Finding(
                    convention.reference,
                    "MANAGING_SHARE_UNSTATED",
                    f"« {service.name} » : les conditions ne disent pas comment l'EPCI, sans "
                    "population propre, participe au coût ; il ne supporte aucune part.",
                )
            )
        return key_lines(year, convention, service)
    if service.unit_cost is None:
        if service.code in convention.usages_by_service:
            findings.append(
                Finding(
                    convention.reference,
                    "NO_UNIT_COST",
                    f"Aucun coût unitaire {year} pour « {service.name} » : les recours ne "
                    "peuvent être valorisés.",
                )
            )
        return []
    return unit_lines(convention, service)


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
        try:
            produced = service_lines(year, convention, service, findings)
        except EngineError as error:
            # One service that cannot be shared never drops the convention's other services.
            findings.append(Finding(convention.reference, "NOT_COMPUTED", str(error)))
            continue
        for line in produced:
            (borne if line.payer.id == convention.payee.id else lines).append(line)
    return lines, borne, findings


def compute_year(year: int, conventions: Iterable[ConventionInput]) -> YearResult:
    """Every reimbursement of ``year``; the result does not depend on the order of the inputs.
    A convention, or one service of it, that cannot be computed is a finding (NOT_COMPUTED);
    the rest of the year is computed."""
    lines: list[Line] = []
    borne: list[Line] = []
    settlements: list[Settlement] = []
    findings: list[Finding] = []
    for convention in sorted(conventions, key=lambda c: c.reference):
        try:
            convention_lines, convention_borne, convention_findings = convention_year(
                year, convention
            )
            forecasts = forecast_amounts(year, convention, convention_lines + convention_borne)
        except EngineError as error:
            # One convention's missing data never blocks the others: it becomes a finding.
            findings.append(Finding(convention.reference, "NOT_COMPUTED", str(error)))
            continue
        lines.extend(convention_lines)
        borne.extend(convention_borne)
        findings.extend(convention_findings)
        if any(f.code == "NOT_COMPUTED" for f in convention_findings):
            # Its other services' lines stand, but no settlement (hence no état annuel) is
            # made on an incomplete year: it would call or refund the wrong balance.
            continue
        actual_by_payer: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for x in convention_lines:
            actual_by_payer[x.payer.id] += x.amount
        for payer in sorted(convention.payers, key=lambda p: p.siren):
            if payer.id == convention.payee.id:
                continue
            actual = actual_by_payer[payer.id]
            forecast = forecasts.get(payer.id, ZERO)
            settlements.append(settle(convention, payer, actual, forecast))
    lines.sort(key=line_order)
    borne.sort(key=line_order)
    return YearResult(
        year=year,
        lines=tuple(lines),
        borne_by_payee=tuple(borne),
        settlements=tuple(settlements),
        positions=tuple(net_positions(settlements)),
        findings=tuple(findings),
        total=sum((line.amount for line in lines), Decimal("0.00")),
    )


def net_positions(settlements: Iterable[Settlement]) -> list[Position]:
    """For each organisation: what it is owed and what it owes over the year (gross), and what
    of it is already settled on the AC or by acomptes; ``remaining`` is what is left."""
    receivable: dict[int, Decimal] = defaultdict(lambda: ZERO)
    payable: dict[int, Decimal] = defaultdict(lambda: ZERO)
    settled: dict[int, Decimal] = defaultdict(lambda: ZERO)
    parties: dict[int, Party] = {}
    for s in settlements:
        if s.actual == 0 and s.ac_deduction == 0 and not s.called:
            continue
        # Most payers have no acompte called yet: their sum is not added up.
        already = s.ac_deduction + (s.instalments_total if s.called else ZERO)
        receivable[s.payee.id] += s.actual
        payable[s.payer.id] += s.actual
        settled[s.payee.id] += already
        settled[s.payer.id] -= already
        parties[s.payee.id] = s.payee
        parties[s.payer.id] = s.payer
    return [
        Position(
            party,
            receivable[pid],
            payable[pid],
            settled[pid],
            receivable[pid] - payable[pid],
        )
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
