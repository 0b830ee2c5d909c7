"""Costing services: load from the database, call the pure engine, store in a transaction.

- unit costs computed from cost bases (with their trace), or provisional by indexation;
- usage (état des recours) entered in a grid or imported;
- a year of reimbursements, with settlements, net positions and compliance findings;
- the simulation of a draft convention or avenant.
"""

import gc
import hashlib
import textwrap
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db import IntegrityError, connections, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    IntegerField,
    Max,
    Sum,
    Value,
    When,
    prefetch_related_objects,
)
from django.db.models.functions import Cast, ExtractMonth, Round
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from conventions.models import (
    AllocationKey,
    Amendment,
    Convention,
    ConventionKind,
    ConventionService,
    PartyRole,
    SettlementMode,
    Status,
    Termination,
    Terms,
    UsageForecast,
)
from conventions.models import Party as ConventionParty
from conventions.services.in_force import (
    ALWAYS,
    add_months,
    coverage,
    first_day_present,
    parties_during,
    parties_on,
    presence,
    presence_between,
    present_in_month,
    terms_in_force,
    terms_segments,
)
from costing import engine
from costing.models import (
    BalanceChannel,
    CostBase,
    CostLine,
    Instalment,
    InstalmentStatus,
    ReimbursementResult,
    UnitCost,
    UsageRecord,
    UsageSource,
)
from mutualisation.french import of
from mutualisation.models import Organisation, OrganisationKind, PopulationRecord, Service
from mutualisation.services import last_change

# Conventions whose reimbursements run: signed at least (a terminated or expired one still owes
# for the part of the year it covered).
BILLED_STATUSES = (Status.SIGNED, Status.IN_FORCE, Status.TERMINATED, Status.EXPIRED)


# --- unit costs --------------------------------------------------------------------------------


def deadline_for(year: int, signature_date: date | None = None) -> date:
    return engine.notification_deadline(
        year,
        renewal_years=settings.MUTUALIS_RENEWAL_YEARS,
        signature_date=signature_date,
        usual=tuple(settings.MUTUALIS_NOTIFICATION_DEADLINE),
        renewal=tuple(settings.MUTUALIS_NOTIFICATION_DEADLINE_RENEWAL),
    )


def convention_deadline(convention: Convention, year: int) -> date:
    """The date by which a convention's unit costs of ``year`` are due to its beneficiaries:
    the budget deadline, or three months after the signature in the year of signature. One rule
    for the compliance page and the statements' « notifié tardivement »."""
    signature = convention.signature_date
    return deadline_for(year, signature if signature and signature.year == year else None)


def cost_line_input(line) -> engine.CostLineInput:
    """A cost line as the engine reads it."""
    return engine.CostLineInput(
        label=line.label,
        category=line.category,
        accounts_amount=line.accounts_amount,
        budget_adjustment=line.budget_adjustment,
        eligible=line.eligible,
        justification=line.justification,
        account=line.account,
    )


def cost_line_inputs(cost_base: CostBase) -> list[engine.CostLineInput]:
    return [cost_line_input(line) for line in cost_base.lines.all()]


def cost_base_findings_for(
    base: CostBase, convention_reference: str, lines: list | None = None
) -> list[engine.Finding]:
    """The compliance findings of a cost base (source document and exercise, M57 accounts of its
    lines), attributed to the convention that bills its service; ``lines``: its lines already
    read (``cost_line_inputs``)."""
    return engine.cost_base_findings(
        base.year,
        base.source,
        base.source_year,
        cost_line_inputs(base) if lines is None else lines,
        convention=convention_reference,
    )


class UnitCostRefused(engine.EngineError):
    """An action refused on a unit cost (a notified version is frozen); the message is French."""


def unit_cost_trace(cost_base: CostBase, result: engine.UnitCostResult) -> dict:
    return {
        "formula": "coût éligible ÷ unités de référence, arrondi au centime (demi supérieur)",
        "source": f"{cost_base.get_source_display()} {cost_base.source_year}, budget primitif {cost_base.year}",
        "reference_basis": cost_base.get_reference_basis_display(),
        "lines": [
            {
                "label": line.label,
                "category": line.category,
                "account": line.account,
                "accounts_amount": str(line.accounts_amount),
                "budget_adjustment": str(line.budget_adjustment),
                "eligible": line.eligible,
            }
            for line in result.lines
        ],
        "eligible_cost": str(result.eligible_cost),
        "excluded_cost": str(result.excluded_cost),
        "reference_units": str(result.reference_units),
        "unit_cost": str(result.unit_cost),
    }


def current_unit_cost(service: Service, year: int, *, lock: bool = False) -> UnitCost | None:
    """The current version of the unit cost of (service, year), or None; locked if asked."""
    queryset = UnitCost.objects.current().filter(service=service, year=year)
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def lock_unit_costs(service: Service) -> None:
    """Lock the service's row until the transaction ends; every write of its unit costs takes
    this lock first. Two computations at once (a double click) then run one after the other,
    the second seeing the first's version, instead of both writing version 1 (or n + 1) and the
    second failing on the unique key."""
    list(Service.objects.select_for_update(no_key=True).filter(pk=service.pk).values_list("pk"))


def refuse_if_notified(unit_cost: UnitCost, action: str) -> None:
    if unit_cost.is_notified:
        raise UnitCostRefused(
            _(
                "Le coût unitaire %(year)s de « %(service)s » (version %(version)s) a été notifié "
                "le %(date)s : %(action)s. Créez une version corrigée en indiquant son motif."
            )
            % {
                "year": unit_cost.year,
                "service": unit_cost.service.name,
                "version": unit_cost.version,
                "date": f"{unit_cost.notified_on:%d/%m/%Y}",
                "action": action,
            }
        )


@transaction.atomic
def unit_cost_compute(cost_base: CostBase) -> UnitCost:
    """Compute and store the unit cost of the cost base's service and year, with its trace.

    The current version is recomputed in place while it is not notified (a provisional one is
    replaced, its history kept); a notified version is frozen: refused, correct it instead
    (``unit_cost_correct``)."""
    lock_unit_costs(cost_base.service)
    result = engine.compute_unit_cost(cost_line_inputs(cost_base), cost_base.reference_units)
    unit_cost = current_unit_cost(cost_base.service, cost_base.year, lock=True)
    if unit_cost is None:
        unit_cost = UnitCost(service=cost_base.service, year=cost_base.year, version=1)
    else:
        refuse_if_notified(unit_cost, _("il ne peut plus être recalculé"))
    unit_cost.amount = result.unit_cost
    unit_cost.is_provisional = False
    unit_cost.eligible_cost = result.eligible_cost
    unit_cost.reference_units = result.reference_units
    unit_cost.trace = unit_cost_trace(cost_base, result)
    if unit_cost.supersedes_id:
        unit_cost.trace["corrects_version"] = unit_cost.supersedes.version
        unit_cost.trace["correction_reason"] = unit_cost.correction_reason
    unit_cost.notification_deadline = deadline_for(cost_base.year)
    unit_cost.computed_at = timezone.now()
    unit_cost.save()
    return unit_cost


@transaction.atomic
def unit_cost_correct(cost_base: CostBase, reason: str, user=None) -> UnitCost:
    """Correct the notified unit cost of the cost base's service and year: a new version n + 1,
    computed from the cost base, citing the version it supersedes and the reason. It has its own
    notification deadline and is notified separately; the notified version is left untouched."""
    reason = (reason or "").strip()
    if not reason:
        raise UnitCostRefused(_("Indiquez le motif de la correction."))
    lock_unit_costs(cost_base.service)
    previous = current_unit_cost(cost_base.service, cost_base.year, lock=True)
    if previous is None:
        raise UnitCostRefused(
            _("Aucun coût unitaire %(year)s à corriger : calculez-le d'abord.")
            % {"year": cost_base.year}
        )
    if not previous.is_notified:
        raise UnitCostRefused(
            _(
                "La version %(version)s du coût unitaire %(year)s n'est pas encore notifiée : "
                "recalculez-la plutôt que de la corriger."
            )
            % {"version": previous.version, "year": cost_base.year}
        )
    result = engine.compute_unit_cost(cost_line_inputs(cost_base), cost_base.reference_units)
    if result.unit_cost == previous.amount and not previous.is_provisional:
        raise UnitCostRefused(
            _(
                "La base de coûts donne le coût unitaire de la version %(version)s notifiée "
                "(%(amount)s €) : rien à corriger. Modifiez d'abord la base de coûts."
            )
            % {
                "version": previous.version,
                "amount": number_format(previous.amount, 2, force_grouping=True),
            }
        )
    trace = unit_cost_trace(cost_base, result)
    trace["corrects_version"] = previous.version
    trace["correction_reason"] = reason
    unit_cost = UnitCost(
        service=cost_base.service,
        year=cost_base.year,
        version=previous.version + 1,
        supersedes=previous,
        correction_reason=reason,
        amount=result.unit_cost,
        is_provisional=False,
        eligible_cost=result.eligible_cost,
        reference_units=result.reference_units,
        trace=trace,
        notification_deadline=deadline_for(cost_base.year),
        computed_at=timezone.now(),
    )
    if user is not None:
        unit_cost._history_user = user  # simple_history: who corrected
    unit_cost.save()
    return unit_cost


@transaction.atomic
def unit_cost_provisional(
    *, service: Service, year: int, index_now: Decimal, index_before: Decimal
) -> UnitCost:
    """CU N-1 × index ratio, marked provisional; refused when the computed one exists or when
    the current version is notified. Raises UnitCost.DoesNotExist without a unit cost N-1."""
    lock_unit_costs(service)
    previous = UnitCost.objects.current().get(service=service, year=year - 1)
    unit_cost = current_unit_cost(service, year, lock=True)
    if unit_cost is not None:
        refuse_if_notified(unit_cost, _("une valeur provisoire ne peut le remplacer"))
        if not unit_cost.is_provisional:
            raise UnitCostRefused(
                _("Le coût unitaire de l'année est déjà calculé : pas de valeur provisoire.")
            )
    else:
        unit_cost = UnitCost(service=service, year=year, version=1)
    unit_cost.amount = engine.provisional_unit_cost(previous.amount, index_now, index_before)
    unit_cost.is_provisional = True
    unit_cost.eligible_cost = None
    unit_cost.reference_units = None
    unit_cost.trace = {
        "formula": "coût unitaire N-1 × (indice N ÷ indice N-1), arrondi au centime",
        "previous": str(previous.amount),
        "previous_version": previous.version,
        "index_now": str(index_now),
        "index_before": str(index_before),
    }
    unit_cost.notification_deadline = deadline_for(year)
    unit_cost.computed_at = timezone.now()
    unit_cost.save()
    return unit_cost


@transaction.atomic
def unit_cost_notify(unit_cost: UnitCost, notified_on: date) -> UnitCost:
    """Record the date the version was notified to the beneficiaries, once: the computation date
    (« calculé le ») is left as it is."""
    lock_unit_costs(Service(pk=unit_cost.service_id))  # first, as every unit cost write
    locked = (
        UnitCost.objects.select_for_update(of=("self",))
        .select_related("service")
        .get(pk=unit_cost.pk)
    )
    if locked.is_notified:
        raise UnitCostRefused(
            _(
                "La version %(version)s du coût unitaire %(year)s est déjà notifiée le %(date)s : "
                "pour la modifier, créez une version corrigée."
            )
            % {
                "version": locked.version,
                "year": locked.year,
                "date": f"{locked.notified_on:%d/%m/%Y}",
            }
        )
    if notified_on > timezone.localdate():
        raise UnitCostRefused(
            _("La date de notification (%(date)s) ne peut être dans le futur.")
            % {"date": f"{notified_on:%d/%m/%Y}"}
        )
    locked.notified_on = notified_on
    locked.save(update_fields=["notified_on"])
    unit_cost.notified_on = notified_on
    return locked


# --- usage -------------------------------------------------------------------------------------


UNITS_QUANTUM = Decimal("0.001")


def weighted_units(quantity: Decimal, weight) -> Decimal:
    """Quantity × weight (1 without weighting), rounded half up to the thousandth of a unit."""
    factor = weight.weight if weight is not None else Decimal(1)
    return (quantity * factor).quantize(UNITS_QUANTUM, rounding=ROUND_HALF_UP)


def month_bounds(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    return start, add_months(start, 1) - timedelta(days=1)


class UsageConflict(Exception):
    """Cells changed by someone else since the grid was shown (optimistic locking per cell)."""

    def __init__(self, cells, current):
        self.cells = sorted(cells)
        self.current = current
        super().__init__(str(self.cells))


@transaction.atomic
def usage_grid_save(
    *,
    convention: Convention,
    service: Service,
    year: int,
    values: dict,
    user=None,
    loaded: dict | None = None,
) -> int:
    """Store a grid of quantities {(beneficiary id, month): Decimal or None} for one service and
    year; an emptied cell removes its record. Returns the number of records written. Refused
    (nothing written) when a changed cell belongs to a year whose statement is issued and not
    under correction.

    With ``loaded`` (the grid as shown to the person), only the cells changed from it are
    written, and if one of them was changed meanwhile by someone else, UsageConflict is raised
    and nothing is written: a grid opened earlier never overwrites nor empties a later entry."""
    # Locked until the end: two saves of this grid at once run one after the other, and the
    # second compares with what the first wrote (a conflict, never a second record of a cell).
    line = (
        convention.services.select_for_update(of=("self",))
        .select_related("unit_type")
        .get(service=service)
    )
    current = usage_grid_values(convention=convention, service=service, year=year)
    if loaded is not None:
        changed = {key for key, quantity in values.items() if loaded.get(key) != quantity}
        conflicts = {key for key in changed if current.get(key) != loaded.get(key)}
        if conflicts:
            raise UsageConflict(conflicts, current)
    else:
        changed = {key for key, quantity in values.items() if current.get(key) != quantity}
    locks = usage_lock_reasons(
        convention_id=convention.pk, beneficiary_ids={b for b, _month in changed}, year=year
    )
    reasons = {reason for reason in locks.values() if reason}
    if reasons:
        raise UsageRefused(sorted(reasons))
    outside = months_not_party(convention, line, year, changed, values)
    if outside:
        raise UsageRefused(
            [
                _(
                    "Recours saisis pour un mois où la commune n'est pas partie à la convention, "
                    "ou le service pas couvert (entrée ou sortie par avenant) : ils ne seraient "
                    "pas facturés et empêcheraient le calcul de la convention. Videz ces cases : "
                    "%(cells)s."
                )
                % {"cells": ", ".join(outside)}
            ]
        )
    written = 0
    for (beneficiary_id, month), quantity in values.items():
        if (beneficiary_id, month) not in changed:
            continue
        start, end = month_bounds(year, month)
        lookup = {
            "convention": convention,
            "service": service,
            "beneficiary_id": beneficiary_id,
            "period_start": start,
            "source": UsageSource.GRID,
        }
        if quantity is None:
            UsageRecord.objects.filter(**lookup).delete()
            continue
        UsageRecord.objects.update_or_create(
            **lookup,
            defaults={
                "period_end": end,
                "unit_type": line.unit_type,
                "quantity": quantity,
                "units": quantity,
                "recorded_by": user,
            },
        )
        written += 1
    return written


def months_not_party(convention, line, year: int, changed, values) -> list[str]:
    """The cells filled (« Commune C — juin 2026 ») for a month in which the commune is not a
    party on any day, or the service line not covered (an avenant's entry or exit)."""
    parties = {
        p.organisation_id: p
        for p in convention.parties.select_related("organisation", "joined_by", "left_by")
    }
    found = []
    for beneficiary_id, month in sorted(changed, key=lambda cell: (cell[1], cell[0])):
        if values.get((beneficiary_id, month)) is None:
            continue  # an emptied cell removes its record
        first, _last = month_bounds(year, month)
        party = parties.get(beneficiary_id)
        if party is not None and (
            not present_in_month(party, first, start="joined_by", end="left_by")
            or not present_in_month(line, first, start="added_by", end="removed_by")
        ):
            found.append(f"{party.organisation.name} — {date_format(first, 'F Y')}")
    return found


def usage_other_sources(*, convention: Convention, service: Service, year: int) -> dict:
    """Units recorded outside the grid (imports), per (beneficiary id, month)."""
    totals: dict = {}
    for record in UsageRecord.objects.filter(
        convention=convention, service=service, period_start__year=year
    ).exclude(source=UsageSource.GRID):
        key = (record.beneficiary_id, record.period_start.month)
        totals[key] = totals.get(key, Decimal(0)) + record.units
    return totals


class GridTotals(NamedTuple):
    """Units of the grid's year: per beneficiary (id), per month (January first), in all."""

    rows: dict
    months: list
    total: Decimal


def usage_grid_totals(*, beneficiary_ids, entered: dict, imported: dict) -> GridTotals:
    """The totals a grid shows, from what is recorded: the units of the grid's records and the
    units imported for the same cells, both billed. ``entered`` and ``imported`` map
    (beneficiary id, month) to a Decimal; a beneficiary not shown in the grid is not counted,
    so that the rows add up to the total."""
    rows = {beneficiary_id: Decimal(0) for beneficiary_id in beneficiary_ids}
    months = [Decimal(0)] * 12
    for source in (entered, imported):
        for (beneficiary_id, month), units in source.items():
            if beneficiary_id not in rows or units is None:
                continue
            rows[beneficiary_id] += units
            months[month - 1] += units
    return GridTotals(rows, months, sum(rows.values(), Decimal(0)))


def usage_grid_units(*, convention: Convention, service: Service, year: int) -> dict:
    """Units of the grid's own records, per (beneficiary id, month): what they bill, weighted
    (a record weighted after its entry bills more or less than the quantity its cell shows)."""
    records = UsageRecord.objects.filter(
        convention=convention, service=service, period_start__year=year, source=UsageSource.GRID
    ).only("beneficiary_id", "period_start", "units")
    return {(r.beneficiary_id, r.period_start.month): r.units for r in records}


def usage_grid_values(*, convention: Convention, service: Service, year: int) -> dict:
    records = UsageRecord.objects.filter(
        convention=convention, service=service, period_start__year=year, source=UsageSource.GRID
    )
    return {(r.beneficiary_id, r.period_start.month): r.quantity for r in records}


class UsageRefused(Exception):
    """A change to the état des recours refused; ``reasons`` are French sentences."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


def usage_lock_reason(*, convention_id: int, beneficiary_id: int, year: int) -> str | None:
    """Why the usage of that convention, payer and year cannot change, if it cannot: an issued
    statement covers it and has not been put under correction (statement_correct)."""
    return usage_lock_reasons(
        convention_id=convention_id, beneficiary_ids=[beneficiary_id], year=year
    )[beneficiary_id]


def issued_year_message(issued) -> str:
    """Why the usage an issued statement covers cannot change (and what to do)."""
    return _(
        "L'état n° %(number)s émis couvre les recours %(year)s %(of_payer)s : mettez-le "
        "d'abord en correction, puis modifiez les recours et émettez la correction."
    ) % {"number": issued.number, "year": issued.year, "of_payer": of(issued.payer.name)}


def month_units(*, convention_id, beneficiary_id, service_id, month_start, exclude_pk=None):
    """Units of a payer for a service and month, every source together."""
    records = UsageRecord.objects.filter(
        convention_id=convention_id,
        beneficiary_id=beneficiary_id,
        service_id=service_id,
        period_start=month_start,
    )
    if exclude_pk is not None:
        records = records.exclude(pk=exclude_pk)
    return sum((r.units for r in records), Decimal(0))


def negative_month_reason(record: UsageRecord, units: Decimal, exclude_pk=None) -> str | None:
    total = units + month_units(
        convention_id=record.convention_id,
        beneficiary_id=record.beneficiary_id,
        service_id=record.service_id,
        month_start=record.period_start,
        exclude_pk=exclude_pk,
    )
    return None if total >= 0 else negative_month_message(record, total)


def negative_month_message(record: UsageRecord, total: Decimal) -> str:
    """An adjustment that would bring the month's units of a payer below zero."""
    return _(
        "Les unités %(of_payer)s pour « %(service)s » en %(month)s deviendraient négatives "
        "(%(total)s) : un ajustement ne retire que ce qui a été enregistré."
    ) % {
        "of_payer": of(record.beneficiary.name),
        "service": record.service.name,
        "month": record.period_start.strftime("%m/%Y"),
        "total": format(total.normalize(), "f").replace(".", ","),
    }


@transaction.atomic
def usage_record_edit(
    record: UsageRecord, *, quantity: Decimal, weight, reference: str, reason: str, user=None
) -> UsageRecord:
    """Correct a recorded use (quantity, weighting, reference) with its reason, kept in the
    record's history. Refused while an issued statement that is not under correction covers it."""
    record = UsageRecord.objects.select_for_update().get(pk=record.pk)
    reasons = []
    lock = usage_lock_reason(
        convention_id=record.convention_id,
        beneficiary_id=record.beneficiary_id,
        year=record.period_start.year,
    )
    if lock:
        reasons.append(lock)
    if not reason.strip():
        reasons.append(_("Indiquez le motif de la modification."))
    if quantity < 0 and record.source != UsageSource.ADJUSTMENT:
        reasons.append(
            _("Seul un ajustement peut être négatif : ajoutez un ajustement avec son motif.")
        )
    units = weighted_units(quantity, weight)
    negative = negative_month_reason(record, units, exclude_pk=record.pk)
    if negative:
        reasons.append(negative)
    if reasons:
        raise UsageRefused(reasons)
    record.quantity = quantity
    record.weight = weight
    record.units = units
    record.reference = reference.strip()
    record.reason = reason.strip()
    record.recorded_by = user
    record._change_reason = reason.strip()  # simple-history: the history row's reason
    record.full_clean()
    record.save()
    return record


@transaction.atomic
def usage_adjust(
    *,
    convention: Convention,
    beneficiary: Organisation,
    service: Service,
    month_start: date,
    quantity: Decimal,
    weight=None,
    reference: str = "",
    reason: str,
    user=None,
) -> UsageRecord:
    """Add a justified adjustment (possibly negative) to a payer's usage of a month."""
    line = convention.services.select_related("unit_type").get(service=service)
    start, end = month_bounds(month_start.year, month_start.month)
    record = UsageRecord(
        convention=convention,
        beneficiary=beneficiary,
        service=service,
        unit_type=line.unit_type,
        weight=weight,
        period_start=start,
        period_end=end,
        quantity=quantity,
        units=weighted_units(quantity, weight),
        reference=reference.strip(),
        reason=reason.strip(),
        source=UsageSource.ADJUSTMENT,
        recorded_by=user,
    )
    reasons = []
    lock = usage_lock_reason(
        convention_id=convention.pk, beneficiary_id=beneficiary.pk, year=start.year
    )
    if lock:
        reasons.append(lock)
    if not record.reason:
        reasons.append(_("Un ajustement indique son motif."))
    if quantity == 0:
        reasons.append(_("Un ajustement porte sur une quantité non nulle."))
    negative = negative_month_reason(record, record.units)
    if negative:
        reasons.append(negative)
    if reasons:
        raise UsageRefused(reasons)
    record._change_reason = record.reason
    record.full_clean()
    record.save()
    return record


def usage_state(*, convention: Convention, year: int):
    """The état des recours of a convention and year: every record, oldest month first, with
    the lock reason of each payer (None when its usage may change)."""
    records = list(
        UsageRecord.objects.filter(convention=convention, period_start__year=year)
        .select_related("beneficiary", "service", "weight", "recorded_by")
        .order_by("beneficiary__name", "service__name", "period_start", "pk")
    )
    return records, usage_lock_reasons(
        convention_id=convention.pk, beneficiary_ids={r.beneficiary_id for r in records}, year=year
    )


def usage_lock_reasons(*, convention_id: int, beneficiary_ids, year: int) -> dict:
    """``usage_lock_reason`` of each of ``beneficiary_ids`` (payer id → reason or None), in one
    query: a service commun's état des recours has a hundred payers."""
    from costing.models import Statement, StatementStatus

    issued = {
        statement.payer_id: statement
        for statement in Statement.objects.filter(
            convention_id=convention_id,
            payer_id__in=beneficiary_ids,
            year=year,
            status=StatementStatus.ISSUED,
            cancelled_by__isnull=True,
        )
        .select_related("payer")
        .only("number", "year", "payer__name")
        .order_by("payer_id", "pk")
    }
    return {pk: issued_year_message(issued[pk]) if pk in issued else None for pk in beneficiary_ids}


# --- a year of reimbursements ------------------------------------------------------------------


def party(organisation: Organisation) -> engine.Party:
    return engine.Party(
        organisation.pk, organisation.siren, organisation.name, is_epci=organisation.is_epci
    )


def periods_for(convention: Convention, first: date, last: date) -> tuple[engine.Period, ...]:
    """Reimbursement periods from ``first`` to ``last``: each as long as the periodicity of the
    terms in force, cut where an avenant changes the terms."""
    return segments_periods(terms_segments(convention, first, last))


def segments_periods(segments) -> tuple[engine.Period, ...]:
    """``periods_for`` over the terms' segments (``terms_segments``) already read."""
    periods = []
    for run_start, run_end, terms in segments:
        periods += run_periods(run_start, run_end, terms.periodicity_months)
    return tuple(periods)


@lru_cache(maxsize=1024)
def run_periods(run_start: date, run_end: date, months: int) -> tuple[engine.Period, ...]:
    """The reimbursement periods of a run of days under one periodicity. Made once for the many
    conventions that share a run (most cover the whole year), the periods are shared: they are
    immutable values."""
    periods = []
    cursor = run_start
    while cursor <= run_end:
        month_start = date(cursor.year, cursor.month, 1)
        stop = engine.add_months(month_start, months)
        stop -= timedelta(days=1)
        stop = min(stop, run_end)
        periods.append(engine.Period(cursor, stop))
        cursor = stop + timedelta(days=1)
    return tuple(periods)


class YearParty(NamedTuple):
    """A party of a convention as the year's computation reads it: values, not a model object
    (a year has a hundred thousand parties)."""

    organisation_id: int
    role: str


def year_parties(
    conventions: list, chosen=None
) -> tuple[dict[int, tuple], dict[int, engine.Party]]:
    """The parties of the conventions as the year's computation reads them, as values:
    convention id → its parties, each as (YearParty, Presence), in the parties' order (that of
    ``convention.parties.all()``: by role, then by their organisation's name); and organisation
    id → ``party(organisation)``, of every party and managing organisation. One query for the
    parties, one for their organisations, one for the few avenants by which a party joined or
    left. The organisations are read in the order of their names, which orders each
    convention's parties (the database's collation decides; ordering all the parties by name
    there took most of a second). ``chosen``: the conventions' ids as a subquery
    (``chosen_ids``), when the caller has one."""
    rows = driver_rows(
        ConventionParty.objects.filter(
            convention_id__in=[c.pk for c in conventions] if chosen is None else chosen
        )
        .order_by()
        .values_list("convention_id", "organisation_id", "role", "joined_by_id", "left_by_id")
    )
    organisations = {
        pk: engine.Party(pk, siren, name, is_epci=kind == OrganisationKind.EPCI)
        for pk, siren, name, kind in driver_rows(
            Organisation.objects.filter(
                pk__in={row[1] for row in rows}
                | {c.managing_organisation_id for c in conventions if c.managing_organisation_id}
            )
            .order_by("name")
            .values_list("pk", "siren", "name", "kind")
        )
    }
    by_name = {pk: rank for rank, pk in enumerate(organisations)}
    avenants = Amendment.objects.in_bulk(
        {row[3] for row in rows if row[3]} | {row[4] for row in rows if row[4]}
    )
    parties: dict[int, list] = defaultdict(list)
    for convention_id, organisation_id, role, joined_by_id, left_by_id in rows:
        parties[convention_id].append(
            (
                (role, by_name[organisation_id]),  # roles: capitals only
                YearParty(organisation_id, role),
                presence_between(avenants.get(joined_by_id), avenants.get(left_by_id))
                if joined_by_id or left_by_id
                else ALWAYS,  # most parties: no avenant moved them
            )
        )
    # Each convention's parties sorted on their own (a few each): sorting the hundred thousand
    # rows at once compared each of them seventeen times.
    return {
        pk: tuple((party, span) for _order, party, span in sorted(found, key=itemgetter(0)))
        for pk, found in parties.items()
    }, organisations


class CoveredYear(NamedTuple):
    """A convention's part of a year, read once for every reader: the days covered, the runs
    of days under one set of terms (``terms_segments``), the reimbursement periods, and when
    each party and service line is present (``presence``: every day without avenant)."""

    first: date
    last: date
    segments: list  # (start, end, Terms)
    periods: tuple  # engine.Period
    parties: tuple  # (YearParty, Presence), in the parties' order
    lines: tuple  # (ConventionService, Presence), in the service lines' order


def covered_year(
    convention: Convention, year: int, parties: tuple, terms=None, lines=None
) -> CoveredYear | None:
    """The convention's ``CoveredYear`` of ``year``, or None when it covers none of it;
    ``parties``: the convention's, as ``year_parties`` reads them; ``terms`` and ``lines``:
    its terms and service lines, when already read."""
    terms = convention.terms.all() if terms is None else terms
    span = coverage(convention, year, terms)
    if span is None:
        return None
    segments = terms_segments(convention, *span, terms)
    return CoveredYear(
        *span,
        segments,
        segments_periods(segments),
        parties,
        tuple(
            (line, presence(line, start="added_by", end="removed_by"))
            for line in (convention.services.all() if lines is None else lines)
        ),
    )


def billed_conventions(year: int, conventions=None):
    return billed_in(year, conventions).prefetch_related("parties__organisation")


def billed_in(year: int, conventions=None):
    """``billed_conventions`` but their parties, which the year's computation reads as values
    (``year_parties``)."""
    queryset = conventions if conventions is not None else Convention.objects.all()
    return (
        queryset.filter(status__in=BILLED_STATUSES, start_date__lte=date(year, 12, 31))
        .select_related("managing_organisation", "termination", "territory")
        .prefetch_related("services__service", "terms")
        .order_by("reference")
    )


def prefetch_avenants(lines, terms) -> None:
    """Read the avenants by which the service lines ``lines`` were added or removed and the
    ``terms`` were set, in one query each, on the records that name one: an empty link reads
    nothing, and most records have none (a prefetch through every record visited each empty
    link)."""
    prefetch_related_objects(
        [s for s in lines if s.added_by_id or s.removed_by_id], "added_by", "removed_by"
    )
    prefetch_related_objects([t for t in terms if t.amendment_id], "amendment")


class UsageTotal(NamedTuple):
    """The usage records of one convention, payer, service and period (a month) added up in the
    database: their weighted units, exactly, and how many they are."""

    beneficiary_id: int
    service_id: int
    service_code: str
    period_start: date
    period_end: date
    units: Decimal
    count: int


# Weighted units are stored to the thousandth (UsageRecord.units, weighted and rounded per
# record when written). The database adds them up as whole thousandths: exact on PostgreSQL
# (numeric) and on SQLite (which stores a decimal as a float: × 1000 then rounded to the
# nearest integer gives back the stored thousandths exactly), then Decimal(n) × 10⁻³.
MILLI_UNITS = Sum(Cast(Round(F("units") * 1000), BigIntegerField()))


def scaled(milli: int) -> Decimal:
    """Whole thousandths of a unit as units, to the thousandth: 1234 → 1.234, 5000 → 5.000."""
    return Decimal(milli).scaleb(-3)


def summed_units(alias: str):
    """The sum of usage records' weighted units as the year's computation reads it: on
    PostgreSQL, the numeric sum itself, exact and to the thousandth (the driver gives the same
    Decimal as ``scaled``; summing the stored numbers costs the database less than rounding each
    to thousandths); elsewhere ``MILLI_UNITS``, read by ``scaled``."""
    return Sum("units") if connections[alias].vendor == "postgresql" else MILLI_UNITS


def driver_rows(queryset) -> list[tuple]:
    """The rows of a ``values_list`` queryset as the database driver returns them: plain
    tuples, without the per-row converters Django applies (on a year's million grouped rows,
    they took more time than the query). Integers come back as integers on every backend;
    a date comes back as a ``date`` from PostgreSQL, as its ISO text from SQLite (``as_day``)."""
    try:
        sql, params = queryset.query.sql_with_params()
    except EmptyResultSet:
        return []  # ``pk__in=[]``: Django knows the answer without asking
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def as_day(value) -> date:
    """A date column read by ``driver_rows``: a ``date``, or its ISO text (SQLite)."""
    return value if isinstance(value, date) else date.fromisoformat(value)


def summed_periods(covered: CoveredYear | None) -> tuple[int, tuple] | None:
    """(periodicity in months, reimbursement periods) of a convention whose usage of the year
    ``covered`` the database may add up per reimbursement period rather than per month, else
    None.

    Of a convention's usage, the engine reads, per payer and service, the units and record
    counts summed within each reimbursement period (a key segment is a run of whole periods),
    and which services have any; ``usages_of_year`` reads each month's day only to compare it
    with the first day covered and, when an avenant moves a party or a service line, with
    their presence. So when no avenant moves one, and the convention covers the whole year
    under one set of terms, the periods are runs of ``periodicity`` months from 1 January: a
    record starting in month m (the year's records start within it, and end no earlier:
    ``usage_period_ordered``) falls in period (m - 1) // periodicity, and the period's sums
    are the engine's, exactly. Any other convention is read per month."""
    if covered is None or len(covered.segments) != 1:
        return None
    year = covered.first.year
    if (covered.first, covered.last) != (date(year, 1, 1), date(year, 12, 31)):
        return None
    if any(span != ALWAYS for _record, span in covered.parties + covered.lines):
        return None  # an avenant moves a party or a service line
    return covered.segments[0][2].periodicity_months, covered.periods


def service_codes(service_ids) -> dict[int, str]:
    """service id → its code: read once for the many usage rows (joined, each row would carry
    its service's code)."""
    return dict(Service.objects.filter(pk__in=set(service_ids)).values_list("pk", "code"))


def usage_totals(year: int, convention_ids) -> dict[int, list[UsageTotal]]:
    """convention id → its usage of ``year`` summed per payer, service and month, as values
    (not model objects): one query, and one for the services' codes."""
    rows = driver_rows(
        UsageRecord.objects.filter(period_start__year=year, convention_id__in=convention_ids)
        .order_by()
        .values_list("convention_id", "beneficiary_id", "service_id", "period_start", "period_end")
        .annotate(milli=MILLI_UNITS, count=Count("pk"))
    )
    codes = service_codes(row[2] for row in rows)
    days: dict = {}  # a few distinct days (the months' bounds) among the many rows: read once
    totals: dict[int, list[UsageTotal]] = defaultdict(list)
    for convention_id, beneficiary_id, service_id, start, end, milli, count in rows:
        if start not in days:
            days[start] = as_day(start)
        if end not in days:
            days[end] = as_day(end)
        totals[convention_id].append(
            UsageTotal(
                beneficiary_id,
                service_id,
                codes[service_id],
                days[start],
                days[end],
                scaled(milli),
                count,
            )
        )
    return dict(totals)


def period_usages(
    year: int, periods_of: Mapping[int, tuple[int, tuple]]
) -> dict[int, tuple[engine.Usage, ...]]:
    """convention id → its usage of ``year`` summed per payer, service and reimbursement
    period, as the engine reads it, for the conventions of ``periods_of`` (convention id →
    ``summed_periods``: a whole year without avenant moving a party or a service line, so
    each usage is dated by its period's first day). One query for every periodicity (one per
    periodicity read the table once each): a convention's month falls in its period by a
    division by its periodicity, told by a CASE, the most common one by default. The
    conventions are named in a list: read through a subquery (``chosen_ids``), PostgreSQL
    plans a parallel join, slower here than the list, which its index reads in order."""
    by_periodicity: dict[int, list[int]] = defaultdict(list)
    for pk, (months, _periods) in periods_of.items():
        by_periodicity[months].append(pk)
    if not by_periodicity:
        return {}
    *listed, (usual, _ids) = sorted(by_periodicity.items(), key=lambda item: len(item[1]))
    periodicity = Case(
        *(When(convention_id__in=ids, then=Value(months)) for months, ids in listed),
        default=Value(usual),
        output_field=IntegerField(),
    )
    month = Cast(ExtractMonth("period_start"), IntegerField())
    records = UsageRecord.objects.filter(
        period_start__year=year, convention_id__in=list(periods_of)
    )
    rows = driver_rows(
        records.order_by()
        .annotate(period=(month - 1) / periodicity)
        .values_list("convention_id", "beneficiary_id", "service_id", "period")
        .annotate(summed=summed_units(records.db), count=Count("pk"))
    )
    codes = service_codes(row[2] for row in rows)
    starts = {pk: [p.start for p in periods] for pk, (_months, periods) in periods_of.items()}
    # Whole thousandths (not on PostgreSQL): the same sums recur, each made a Decimal once.
    units_of: dict[int, Decimal] = {}
    usage = engine.Usage
    usages: dict[int, list[engine.Usage]] = defaultdict(list)
    for convention_id, beneficiary_id, service_id, index, units, count in rows:
        if type(units) is int:
            if units not in units_of:
                units_of[units] = scaled(units)
            units = units_of[units]
        usages[convention_id].append(
            usage(beneficiary_id, codes[service_id], starts[convention_id][index], units, "", count)
        )
    return {pk: tuple(found) for pk, found in usages.items()}


class UsageRecords(Mapping):
    """convention id → [UsageRecord] of the year, loaded in one query the first time it is
    read: the statements print every record, the computation reads ``usage_totals`` only."""

    def __init__(self, year: int, convention_ids):
        self.year = year
        self.convention_ids = list(convention_ids)
        self._records: dict[int, list] | None = None

    def loaded(self) -> dict[int, list]:
        if self._records is None:
            records: dict[int, list] = defaultdict(list)
            for record in UsageRecord.objects.filter(
                convention_id__in=self.convention_ids, period_start__year=self.year
            ).select_related("service", "weight"):
                records[record.convention_id].append(record)
            self._records = dict(records)
        return self._records

    def __getitem__(self, convention_id):
        return self.loaded()[convention_id]

    def __iter__(self):
        return iter(self.loaded())

    def __len__(self):
        return len(self.loaded())


@dataclass(frozen=True)
class YearData:
    """Everything a year's computation reads from the database, loaded once (a bounded number
    of queries) and reused by the engine inputs, the compliance checks and the statements."""

    year: int
    conventions: list  # Convention, prefetched
    unit_costs: dict  # service id → the current UnitCost (latest version) of the year
    cost_bases: dict  # service id → CostBase of the year (its lines: ``base_lines``)
    usages: Mapping  # convention id → [UsageRecord], loaded when first read (UsageRecords)
    populations: dict  # (organisation id, vintage) → municipal population
    called: dict  # (convention id, payer id) → [Instalment] not cancelled
    # convention id → [UsageTotal]: what the engine reads (values summed in the database),
    # per month, of the conventions not read per period
    usage_totals: dict = field(default_factory=dict)
    # convention id → its CoveredYear (None: not covered), read once for every reader
    covered: dict = field(default_factory=dict)
    # terms id → [Forecast] of the year; None: read each terms' own (``year_forecasts``)
    forecasts: dict | None = None
    # organisation id → engine.Party, of every party and managing organisation
    engine_parties: dict = field(default_factory=dict)
    # Built once per computation, then shared by the conventions that read them: cost base id
    # → what a keyed service shares (``keyed_costs``).
    base_costs: dict = field(default_factory=dict)
    # cost base id → its lines as the engine reads them, in CostLine's order
    base_lines: dict = field(default_factory=dict)
    # convention id → its terms, its service lines (their service read), in their models'
    # order: what ``convention.terms.all()`` and ``convention.services.all()`` would give,
    # read once for every convention of the year (the conventions are not prefetched).
    terms_of: dict = field(default_factory=dict)
    lines_of: dict = field(default_factory=dict)
    # convention id → its usage summed per reimbursement period (``period_usages``), ready for
    # the engine: a whole year without avenant moving a party or a service line
    period_usages: dict = field(default_factory=dict)

    def terms(self, convention: Convention) -> list:
        return self.terms_of.get(convention.pk, [])

    def lines(self, convention: Convention) -> list:
        return self.lines_of.get(convention.pk, [])


class Forecast(NamedTuple):
    """A usage forecast (UsageForecast) as the year's computation reads it: values, not model
    objects (a year has one per convention, payer and service: a hundred thousand of them)."""

    service_id: int  # the ConventionService
    beneficiary_id: int
    year: int
    units: Decimal
    fixed_share_percent: Decimal | None


def load_forecasts(year: int, terms_ids) -> dict[int, list[Forecast]]:
    """terms id → its forecasts of ``year``: one query. Every reader of a year's forecasts
    reads that year's only.

    Unordered: a set of terms has at most one forecast per service line, beneficiary and year
    (UsageForecast's unique constraint), and every reader looks one up by them, so the order
    changes nothing; sorting them by service and beneficiary name made the database join and
    sort every forecast of the year, half of the reading."""
    forecasts: dict[int, list[Forecast]] = defaultdict(list)
    for terms_id, *values in (
        UsageForecast.objects.filter(terms_id__in=terms_ids, year=year)
        .order_by()
        .values_list(
            "terms_id", "service_id", "beneficiary_id", "year", "units", "fixed_share_percent"
        )
    ):
        forecasts[terms_id].append(Forecast(*values))
    return dict(forecasts)


def year_forecasts(terms, data: YearData):
    """The forecasts of ``terms`` a computation reads: those loaded with its year (only the
    year's), or, for inputs built without them (a simulation), the terms' own."""
    if data.forecasts is None:
        return terms.forecasts.all()
    return data.forecasts.get(terms.id, ())


def chosen_ids(year: int, conventions=None):
    """The ids of the conventions ``load_year`` reads, as a subquery: the database selects
    them again in each query that reads their records, faster than it reads a list of nine
    thousand ids (which Django also prepares one by one, for each query)."""
    return billed_in(year, conventions).order_by().prefetch_related(None).values("pk")


def load_year(year: int, conventions=None) -> YearData:
    loaded = list(
        billed_in(year, conventions)
        .select_related(None)
        .select_related("termination")
        .prefetch_related(None)
    )
    # The territories and managing organisations, a few hundred shared by thousands of
    # conventions: each read once (joined, each convention built its own copies).
    organisations = Organisation.objects.in_bulk(
        ({c.territory_id for c in loaded} | {c.managing_organisation_id for c in loaded}) - {None}
    )
    for c in loaded:
        c.territory = organisations[c.territory_id]
        if c.managing_organisation_id is not None:
            c.managing_organisation = organisations[c.managing_organisation_id]
    # Each convention's terms and service lines: one query each, grouped here and read by
    # every rule below. A prefetch built a queryset per convention and relation, and each
    # read of ``convention.terms.all()`` a related manager: together, a second.
    convention_ids = [c.pk for c in loaded]
    chosen = chosen_ids(year, conventions)
    terms_of: dict[int, list] = {pk: [] for pk in convention_ids}
    all_terms = list(Terms.objects.filter(convention_id__in=chosen))
    for terms in all_terms:
        terms_of[terms.convention_id].append(terms)
    lines_of: dict[int, list] = {pk: [] for pk in convention_ids}
    all_lines = list(ConventionService.objects.filter(convention_id__in=chosen))
    services_by_id = Service.objects.in_bulk({line.service_id for line in all_lines})
    for line in all_lines:
        line.service = services_by_id[line.service_id]  # a few thousand services, shared
        lines_of[line.convention_id].append(line)
    prefetch_avenants(all_lines, all_terms)
    parties, engine_parties = year_parties(loaded, chosen)
    service_ids = {line.service_id for line in all_lines}
    unit_costs = {}
    for unit_cost in (
        UnitCost.objects.current()
        .filter(year=year, service_id__in=service_ids)
        .defer("trace")  # how it was computed: shown on its own page, never read here
    ):
        unit_cost.service = services_by_id[unit_cost.service_id]  # the services read above
        unit_costs[unit_cost.service_id] = unit_cost
    cost_bases = {
        b.service_id: b for b in CostBase.objects.filter(year=year, service_id__in=service_ids)
    }
    # Their lines as values, in one query (a prefetch built a queryset per cost base).
    base_lines: dict[int, list[engine.CostLineInput]] = defaultdict(list)
    for base_id, *values in CostLine.objects.filter(
        cost_base_id__in=[b.pk for b in cost_bases.values()]
    ).values_list(
        "cost_base_id",
        "label",
        "category",
        "accounts_amount",
        "budget_adjustment",
        "eligible",
        "justification",
        "account",
    ):
        base_lines[base_id].append(engine.CostLineInput(*values))
    vintages = {
        line.population_vintage
        for line in all_lines
        if line.allocation_key == AllocationKey.POPULATION
    }
    populations = {
        (organisation_id, vintage): municipal
        for organisation_id, vintage, municipal in PopulationRecord.objects.filter(
            vintage__in=vintages
        ).values_list("organisation_id", "vintage", "municipal")
    }
    called: dict[tuple[int, int], list] = defaultdict(list)
    for instalment in Instalment.objects.filter(convention_id__in=chosen, year=year).exclude(
        status=InstalmentStatus.CANCELLED
    ):
        called[(instalment.convention_id, instalment.payer_id)].append(instalment)
    covered = {
        c.pk: covered_year(c, year, parties.get(c.pk, ()), terms_of[c.pk], lines_of[c.pk])
        for c in loaded
    }
    periods_of = {
        pk: found
        for pk, of_year in covered.items()
        if (found := summed_periods(of_year)) is not None
    }
    return YearData(
        year,
        loaded,
        unit_costs,
        cost_bases,
        UsageRecords(year, convention_ids),
        populations,
        called,
        usage_totals(year, [pk for pk in convention_ids if pk not in periods_of]),
        covered,
        load_forecasts(year, Terms.objects.filter(convention_id__in=chosen).values("pk")),
        engine_parties,
        base_lines=dict(base_lines),
        terms_of=terms_of,
        lines_of=lines_of,
        period_usages=period_usages(year, periods_of),
    )


def sides(
    convention: Convention, first: date | None = None, last: date | None = None
) -> tuple[Organisation, list[Organisation]]:
    """(payee, payers): the provider and its beneficiaries, or the organisation managing the
    service commun and its other members; from ``first`` to ``last``, the parties present on
    one of those days (a commune joining or leaving by avenant), else those present today."""
    if first is None:
        parties = parties_on(convention, timezone.localdate())
    else:
        parties = parties_during(convention, first, last)
    return sides_among(convention, parties)


def sides_among(convention: Convention, parties: list) -> tuple[Organisation, list[Organisation]]:
    """``sides`` among the parties given (those present on the days that matter)."""
    if convention.kind == ConventionKind.SERVICE_COMMUN:
        payee = convention.managing_organisation
        return payee, [p.organisation for p in parties if p.organisation_id != payee.pk]
    payee = next(p.organisation for p in parties if p.role == PartyRole.PROVIDER)
    return payee, [p.organisation for p in parties if p.role == PartyRole.BENEFICIARY]


def year_sides(
    convention: Convention, parties: list, data: YearData
) -> tuple[engine.Party, list[engine.Party]]:
    """``sides_among`` the parties given (YearParty), as the engine's parties."""
    organisations = data.engine_parties
    if convention.kind == ConventionKind.SERVICE_COMMUN:
        payee_id = convention.managing_organisation_id
        return organisations[payee_id], [
            organisations[p.organisation_id] for p in parties if p.organisation_id != payee_id
        ]
    payee_id = next(p.organisation_id for p in parties if p.role == PartyRole.PROVIDER)
    return organisations[payee_id], [
        organisations[p.organisation_id] for p in parties if p.role == PartyRole.BENEFICIARY
    ]


def members_on(covered: CoveredYear, members: list, on: date) -> list:
    """``members`` (engine.Party, payee first) restricted to the parties present on ``on``."""
    present = {p.organisation_id for p, span in covered.parties if span.on(on)}
    return [m for m in members if m.id in present or m.id == members[0].id]


def key_weights(line, terms, members, data: YearData) -> dict:
    """The key weights of a service line under a set of terms (population of the named vintage,
    or the fixed shares of these terms); a key by units takes the units used instead.
    ``members`` (engine.Party) starts with the managing organisation."""
    if line.allocation_key == AllocationKey.POPULATION:
        # Every member but the managing organisation (whose part the terms state) needs its
        # population: a member left out would silently pay nothing, the others paying for it.
        payee, others = members[0], members[1:]
        lacking = [m for m in others if (m.id, line.population_vintage) not in data.populations]
        if lacking:
            raise engine.EngineError(
                _(
                    "« %(service)s » : population municipale du millésime %(vintage)s inconnue "
                    "pour %(names)s ; la répartition par population est impossible (un EPCI "
                    "membre n'a pas de population : la clé doit lui donner une part)."
                )
                % {
                    "service": line.service.name,
                    "vintage": line.population_vintage,
                    "names": ", ".join(m.name for m in lacking),
                }
            )
        return {
            m.id: Decimal(data.populations[(m.id, line.population_vintage)])
            for m in (payee, *others)
            if (m.id, line.population_vintage) in data.populations
        }
    if line.allocation_key == AllocationKey.FIXED_SHARES:
        return {
            f.beneficiary_id: f.fixed_share_percent
            for f in year_forecasts(terms, data)
            if f.year == data.year and f.service_id == line.id and f.fixed_share_percent is not None
        }
    return {}


def keyed_costs(base: CostBase, lines: list) -> dict:
    """What a keyed service commun shares: the actual cost of the year once entered, else the
    eligible cost of the cost base (its ``lines``, as the engine reads them); and the forecast
    cost (entered, else the eligible cost)."""
    eligible = engine.compute_unit_cost(lines, base.reference_units).eligible_cost
    return {
        "total_cost": base.actual_cost if base.actual_cost is not None else eligible,
        "forecast_cost": base.forecast_cost if base.forecast_cost is not None else eligible,
    }


def keyed_service_input(line, covered: CoveredYear, members, data: YearData):
    """The cost a keyed service line shares and its key over each of the terms' ``segments``."""
    base = data.cost_bases.get(line.service_id)
    if base is None:
        raise engine.EngineError(
            _("Aucune base de coûts %(year)s pour « %(service)s » : la répartition est impossible.")
            % {"year": data.year, "service": line.service.name}
        )
    key_segments = []
    for start, end, terms in covered.segments:
        present = members_on(covered, members, start)
        key_segments.append(
            engine.KeySegment(
                engine.Period(start, end),
                key_weights(line, terms, present, data),
                terms.managing_share_mode,
                terms.managing_share_value,
                frozenset(m.id for m in present),
            )
        )
    key_segments = tuple(key_segments)
    if base.id not in data.base_costs:  # many conventions share one service's cost base
        data.base_costs[base.id] = keyed_costs(base, data.base_lines.get(base.id, []))
    return {**data.base_costs[base.id], "segments": key_segments}


def usages_of_year(
    convention: Convention, data: YearData, covered: CoveredYear, lines_of_year: list
) -> tuple[engine.Usage, ...]:
    """The convention's usage totals as the engine reads them. A usage record covers a month;
    the one of the month the convention starts (dated the 1st) counts from the start date.
    A payer is billed for the use made while it is a party of the convention and the service
    is covered (a commune joining or leaving, a service added or withdrawn by avenant): a
    usage dated outside is an error, the convention is not computed. ``lines_of_year``: the
    service lines present in the year, each with its presence."""
    summed = data.period_usages.get(convention.id)
    if summed is not None:
        return summed  # summed per period by the database, each dated by its period's start
    # Each party's and service line's presence (the last record of an organisation or service
    # counts); without avenant, present every day.
    first = covered.first
    parties_by_org = {}
    party_spans = {}
    if any(span != ALWAYS for _p, span in covered.parties):  # most conventions: none
        parties_by_org = {p.organisation_id: (p, span) for p, span in covered.parties}
        party_spans = {
            organisation_id: span
            for organisation_id, (_p, span) in parties_by_org.items()
            if span != ALWAYS
        }
    line_by_service = {line.service_id: span for line, span in lines_of_year}
    line_spans = {
        service_id: span for service_id, span in line_by_service.items() if span != ALWAYS
    }
    totals = data.usage_totals.get(convention.id, ())
    usage = engine.Usage
    outside = []
    if not party_spans and not line_spans:
        # No avenant changes who is a party or what is covered: only the dates are read.
        usages = [
            usage(
                t.beneficiary_id, t.service_code, max(t.period_start, first), t.units, "", t.count
            )
            for t in totals
            if t.period_end >= first
        ]
    else:
        usages = []
        for total in totals:
            if total.period_end < first:
                continue
            # A record of the month an avenant brings the commune or the service in counts
            # from that day; one of a month it was never present, nowhere.
            day = max(total.period_start, first)
            for span in (party_spans.get(total.beneficiary_id), line_spans.get(total.service_id)):
                if span is not None and day is not None:
                    day = first_day_present(span, day, total.period_end)
            if day is None:
                outside.append(total)
                continue
            usages.append(
                usage(total.beneficiary_id, total.service_code, day, total.units, "", total.count)
            )
    if outside:
        parties_by_org = {p.organisation_id: (p, span) for p, span in covered.parties}

        def record_owner(total: UsageTotal) -> str:
            if total.beneficiary_id in parties_by_org:
                return data.engine_parties[total.beneficiary_id].name
            return str(total.beneficiary_id)

        # One mention per record, in the records' order (month, then payer).
        outside = sorted(
            (t for t in outside for _ in range(t.count)),
            key=lambda t: (t.period_start, record_owner(t)),
        )
        raise engine.EngineError(
            _(
                "%(count)s recours datés hors de la période où la commune est partie ou le "
                "service couvert (avenant d'entrée ou de sortie) : %(references)s. Corrigez-les "
                "avant le calcul."
            )
            % {
                "count": len(outside),
                "references": ", ".join(
                    f"{record_owner(t)} {t.period_start:%m/%Y}" for t in outside[:5]
                ),
            }
        )
    return tuple(usages)


def convention_input(convention: Convention, data: YearData) -> engine.ConventionInput | None:
    """The engine's input for one convention, or None when it covers nothing of the year.
    Raises ``engine.EngineError`` when its data cannot be computed (e.g. a negative cost)."""
    covered = data.covered[convention.id]
    if covered is None:
        return None
    segments = covered.segments
    # The parties and service lines present on one of the days the terms' segments start
    # (``present_during``).
    starts = [start for start, _end, _terms in segments]
    parties_of_year = [
        p for p, span in covered.parties if span is ALWAYS or any(span.on(day) for day in starts)
    ]
    payee, payers = year_sides(convention, parties_of_year, data)
    terms = segments[0][2]  # applicable_terms(convention, first)
    # The year's forecast of each payer and service: from the first terms of the year that
    # state one (a commune joining by avenant has its forecast in the avenant's terms).
    forecasts_of_year = {}
    for _start, _end, segment_terms in segments:
        for forecast in year_forecasts(segment_terms, data):
            if forecast.year == data.year:
                forecasts_of_year.setdefault(
                    (forecast.beneficiary_id, forecast.service_id), forecast
                )
    spans_of_year = [
        (line, span)
        for line, span in covered.lines
        if span is ALWAYS or any(span.on(day) for day in starts)
    ]
    lines_of_year = [line for line, _span in spans_of_year]
    services = []
    for line in lines_of_year:
        unit_cost = data.unit_costs.get(line.service_id)
        keyed = {}
        if line.allocation_key in engine.ALLOCATION_KEYS:
            keyed = keyed_service_input(line, covered, [payee, *payers], data)
        services.append(
            engine.ServiceInput(
                code=line.service.code,
                name=line.service.name,
                unit_cost=unit_cost.amount if unit_cost else None,
                unit_cost_provisional=bool(unit_cost and unit_cost.is_provisional),
                allocation_key=line.allocation_key,
                **keyed,
            )
        )
    usages = usages_of_year(convention, data, covered, spans_of_year)
    code_by_line = {line.id: line.service.code for line in lines_of_year}
    # The acomptes called from the payers who have some (most have none yet).
    pk = convention.id
    called = {
        payer.id: tuple(
            engine.CalledInstalment(
                i.rank, i.due_date, i.amount, i.titre_number, i.get_status_display()
            )
            for i in data.called[(pk, payer.id)]
        )
        for payer in payers
        if (pk, payer.id) in data.called
    }
    # The days each payer brought in or taken out by avenant during the year is a party.
    presence = {}
    for party, span in covered.parties:
        if span is ALWAYS or span.never:
            continue
        start = max(covered.first, span.since) if span.since else covered.first
        end = min(covered.last, span.until - timedelta(days=1)) if span.until else covered.last
        if start <= end and (start, end) != (covered.first, covered.last):
            presence[party.organisation_id] = engine.Period(start, end)
    payer_ids = {payer.id for payer in payers}
    return engine.ConventionInput(
        reference=convention.reference,
        payee=payee,
        payers=tuple(payers),
        services=tuple(services),
        periods=covered.periods,
        usages=usages,
        forecasts={
            (f.beneficiary_id, code_by_line[f.service_id]): f.units
            for f in forecasts_of_year.values()
            if f.service_id in code_by_line
        },
        instalment_count=terms.instalment_count,
        settlement_mode=terms.settlement_mode,
        called={payer_id: items for payer_id, items in called.items() if items},
        presence={pid: span for pid, span in presence.items() if pid in payer_ids},
    )


@dataclass(frozen=True)
class YearInputs:
    conventions: list  # engine.ConventionInput
    by_reference: dict  # reference → Convention
    findings: list  # engine.Finding raised while loading (missing cost base, …)
    data: YearData


def year_inputs(year: int, conventions=None) -> YearInputs:
    """Everything the engine needs for a year. A convention whose data cannot be computed
    becomes a finding; the others are computed."""
    data = load_year(year, conventions)
    inputs, by_reference, findings = [], {}, []
    for convention in data.conventions:
        try:
            convention_in = convention_input(convention, data)
        except engine.EngineError as error:
            findings.append(engine.Finding(convention.reference, "NOT_COMPUTED", str(error)))
            continue
        if convention_in is not None:
            inputs.append(convention_in)
            by_reference[convention.reference] = convention
    return YearInputs(inputs, by_reference, findings, data)


@dataclass(frozen=True)
class Reimbursements:
    year: int
    result: engine.YearResult
    findings: tuple  # engine findings, loading findings and compliance findings
    conventions: dict  # reference → Convention
    data: YearData | None = None


@contextmanager
def collector_paused():
    """Python's cyclic garbage collector paused for the block, then resumed (left alone when
    it was already paused). A year's computation allocates hundreds of thousands of objects
    that all live until it ends: the collections it would trigger free nothing and took a
    third of its time. Reference counting still frees everything else as usual."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        if gc.get_freeze_count() == 0:
            # What the block allocated and still lives (the year's results, a million
            # objects) goes straight to the oldest generation: the young generations'
            # collections would each walk it once more, for nothing (a third of a second
            # each); the next full collection examines it as usual. Not in a gunicorn worker,
            # which froze what it loaded (gunicorn.conf.py): thawing it would undo that.
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def compute_reimbursements(year: int, conventions=None) -> Reimbursements:
    """The year's reimbursements of every billed convention, with the compliance findings."""
    with collector_paused():
        # The engine's inputs (a usage per payer, service and period, indexed) are freed when
        # ``computed_year`` returns, before the collector resumes: its first collection would
        # go through them all, for nothing.
        return computed_year(year, conventions)


def computed_year(year: int, conventions=None) -> Reimbursements:
    inputs = year_inputs(year, conventions)
    result = engine.compute_year(year, inputs.conventions)
    findings = list(inputs.findings) + list(result.findings)
    findings += compliance(year, inputs, result)
    return Reimbursements(year, result, tuple(findings), inputs.by_reference, inputs.data)


def compliance(year: int, inputs: YearInputs, result: engine.YearResult) -> list[engine.Finding]:
    """What D5211-16 requires and each convention's file lacks, from the data already loaded."""
    data = inputs.data
    billed_payers = {(line.convention, line.payer.id) for line in result.lines}
    # A cost base's lines as the engine reads them, and its findings, made once in this call:
    # many conventions bill the same service.
    base_lines: dict[int, list[engine.CostLineInput]] = {}
    base_findings: dict[int, list[engine.Finding]] = {}
    found = []
    for convention_input in inputs.conventions:
        convention = inputs.by_reference[convention_input.reference]
        covered = data.covered[convention.id]
        terms = covered.segments[0][2]  # applicable_terms on the first day covered
        is_mad = convention.kind == ConventionKind.MISE_A_DISPOSITION
        forecast_payers = {payer_id for payer_id, _ in convention_input.forecasts}
        without_forecast = tuple(
            p.name for p in convention_input.payers if p.id not in forecast_payers
        )
        lines = []
        notifications = []
        deadline = convention_deadline(convention, year)
        sources = []
        for service_line, _span in covered.lines:  # convention.services.all()
            base = data.cost_bases.get(service_line.service_id)
            if base is not None:
                if base.id not in base_lines:
                    base_lines[base.id] = data.base_lines.get(base.id, [])
                    base_findings[base.id] = cost_base_findings_for(base, "", base_lines[base.id])
                lines += base_lines[base.id]
                sources += [
                    engine.Finding(convention.reference, f.code, f.message)
                    for f in base_findings[base.id]
                ]
            unit_cost = data.unit_costs.get(service_line.service_id)
            if unit_cost is not None and service_line.allocation_key not in engine.ALLOCATION_KEYS:
                notifications.append((service_line.service.name, unit_cost.notified_on, deadline))
        # A payer with forecast units (so acomptes called) but no usage statement at all.
        unit_based = [s for s in convention_input.services if not s.is_keyed]
        without_usage = tuple(
            p.name
            for p in convention_input.payers
            if (convention_input.reference, p.id) not in billed_payers
            and any(convention_input.forecasts.get((p.id, s.code), 0) > 0 for s in unit_based)
        )
        found += engine.compliance_findings(
            engine.ComplianceInput(
                convention=convention.reference,
                is_mise_a_disposition=is_mad,
                unit_cost_method=terms.unit_cost_method,
                periodicity_months=terms.periodicity_months,
                payers_without_forecast=without_forecast if is_mad else (),
                cost_lines=tuple(lines),
                notifications=tuple(notifications),
                amounts_without_usage=without_usage,
            )
        )
        found += sources
    return found


# --- simulation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationRow:
    year: int
    organisation: Organisation
    current: Decimal
    projected: Decimal
    # with the unit costs and units the person typed (SimulationAdjustment); None without
    simulated: Decimal | None = None

    @property
    def difference(self) -> Decimal:
        return (self.projected if self.simulated is None else self.simulated) - self.current


@dataclass(frozen=True)
class SimulationAdjustment:
    """What the person changes, for the simulation only (nothing is stored): a unit cost per
    line of the convention (ConventionService pk), units a year per (line pk, payer pk) in
    place of the forecast of every projected year."""

    unit_costs: Mapping[int, Decimal] = field(default_factory=dict)
    units: Mapping[tuple[int, int], Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class SimulationInputs:
    """What the simulation form offers: the lines billed by unit (a keyed line's cost is its
    cost base, not a unit cost), the payers, and the current values as its defaults."""

    lines: list
    payers: list
    unit_costs: dict  # line pk → latest unit cost known (None: none yet)
    units: dict  # (line pk, payer pk) → forecast units of the first year forecast


def latest_unit_costs(service_ids) -> dict[int, Decimal]:
    """The amount of each service's latest unit cost (its current version)."""
    latest = {}
    for unit_cost in UnitCost.objects.current().filter(service__in=service_ids).order_by("year"):
        latest[unit_cost.service_id] = unit_cost.amount
    return latest


def projected_terms_of(convention: Convention, amendment=None):
    return (
        amendment.terms if amendment is not None else convention.terms.get(amendment__isnull=True)
    )


def simulation_inputs(convention: Convention, *, amendment=None) -> SimulationInputs:
    """The simulation form's lines, payers and defaults: the latest unit cost, the forecast."""
    lines = [
        line
        for line in convention.services.select_related("service").order_by("pk")
        if line.allocation_key not in engine.ALLOCATION_KEYS
    ]
    try:
        _payee, payers = sides(convention)
    except (StopIteration, AttributeError):
        payers = []  # no provider or managing organisation yet: nothing to project
    costs = latest_unit_costs([line.service_id for line in lines])
    units = {}
    for forecast in projected_terms_of(convention, amendment).forecasts.order_by("year", "pk"):
        units.setdefault((forecast.service_id, forecast.beneficiary_id), forecast.units)
    return SimulationInputs(
        lines=lines,
        payers=list(payers),
        unit_costs={line.pk: costs.get(line.service_id) for line in lines},
        units=units,
    )


def simulate(
    convention: Convention,
    *,
    years: int = 3,
    amendment=None,
    adjustment: SimulationAdjustment | None = None,
) -> list[SimulationRow]:
    """Projected cost per payer and year of a draft convention (or of a draft avenant's terms)
    against the terms in force, by the engine's forecast rule: unit cost of the latest year
    known × forecast units, or for a keyed service commun the latest cost base shared by the
    key and the managing organisation's part stated in the terms. With ``adjustment``, each
    row's ``simulated`` is the projection recomputed by the same rule with the values typed."""
    lines = list(convention.services.all())
    latest_bases = {}
    service_ids = [line.service_id for line in lines]
    latest_costs = latest_unit_costs(service_ids)
    for base in CostBase.objects.filter(service__in=service_ids).prefetch_related("lines"):
        if base.service_id not in latest_bases or base.year > latest_bases[base.service_id].year:
            latest_bases[base.service_id] = base
    initial = convention.terms.get(amendment__isnull=True)
    projected_terms = projected_terms_of(convention, amendment)
    current_terms = None
    if convention.status not in (Status.DRAFT, Status.CONSULTATION, Status.DELIBERATED):
        current_terms = terms_in_force(convention, timezone.localdate()) or initial
    try:
        payee, payers = sides(convention)
    except (StopIteration, AttributeError):
        return []  # no provider or managing organisation yet: nothing to project
    payee_party, payer_parties = party(payee), tuple(party(o) for o in payers)
    vintages = {line.population_vintage for line in lines if line.population_vintage}
    populations = {
        (organisation_id, vintage): municipal
        for organisation_id, vintage, municipal in PopulationRecord.objects.filter(
            vintage__in=vintages
        ).values_list("organisation_id", "vintage", "municipal")
    }

    def amounts(
        terms, adjust: SimulationAdjustment | None = None
    ) -> dict[tuple[int, int], Decimal]:
        totals: dict[tuple[int, int], Decimal] = {}
        if terms is None:
            return totals
        adjust = adjust or SimulationAdjustment()
        start = convention.start_date.year
        for year in sorted({f.year for f in terms.forecasts.all()}) or range(start, start + years):
            data = YearData(year, [], {}, {}, {}, populations, {})
            period = engine.Period(date(year, 1, 1), date(year, 12, 31))
            services = []
            for line in lines:
                keyed = {}
                base = latest_bases.get(line.service_id)
                if line.allocation_key in engine.ALLOCATION_KEYS and base is not None:
                    keyed = {
                        **keyed_costs(base, cost_line_inputs(base)),
                        "segments": (
                            engine.KeySegment(
                                period,
                                key_weights(line, terms, [payee_party, *payer_parties], data),
                                terms.managing_share_mode,
                                terms.managing_share_value,
                            ),
                        ),
                    }
                services.append(
                    engine.ServiceInput(
                        line.service.code,
                        line.service.name,
                        adjust.unit_costs.get(line.pk, latest_costs.get(line.service_id)),
                        allocation_key=line.allocation_key if keyed else "",
                        **keyed,
                    )
                )
            convention_in = engine.ConventionInput(
                reference=convention.reference,
                payee=payee_party,
                payers=payer_parties,
                services=tuple(services),
                periods=(period,),
                forecasts={
                    **{
                        (f.beneficiary_id, f.service.service.code): f.units
                        for f in terms.forecasts.all()
                        if f.year == year
                    },
                    **{
                        (payer_id, codes[line_id]): units
                        for (line_id, payer_id), units in adjust.units.items()
                        if line_id in codes
                    },
                },
            )
            try:
                forecast = engine.forecast_amounts(year, convention_in)
            except engine.EngineError:
                continue  # a key that cannot be shared yet (weights missing)
            for org_id, amount in forecast.items():
                if org_id != payee.pk:
                    totals[(year, org_id)] = amount
        return totals

    codes = {line.pk: line.service.code for line in lines}
    now, then = amounts(current_terms), amounts(projected_terms)
    simulated = amounts(projected_terms, adjustment) if adjustment is not None else {}
    keys = sorted(set(now) | set(then) | set(simulated))
    if keys:
        first_year = keys[0][0]
        keys = [k for k in keys if k[0] < first_year + years]
    organisations = Organisation.objects.in_bulk({k[1] for k in keys})
    return [
        SimulationRow(
            year,
            organisations[org_id],
            now.get((year, org_id), Decimal("0.00")),
            then.get((year, org_id), Decimal("0.00")),
            simulated.get((year, org_id), Decimal("0.00")) if adjustment is not None else None,
        )
        for year, org_id in keys
    ]


def visible_part(computed: Reimbursements, scope) -> dict:
    """What a user may see of the year: everything of the conventions of the territories whose
    staff they are; of any other convention (a commune reader's, or another territory's
    convention their EPCI is party to), only the lines and settlements of their own
    organisation(s). Positions are netted over what is visible."""
    result = computed.result
    own = scope.organisation_ids

    def whole(reference):
        convention = computed.conventions.get(reference)
        return scope.is_superuser or (
            convention is not None and convention.territory_id in scope.territory_ids
        )

    def mine(reference, *parties):
        return whole(reference) or any(p.id in own for p in parties)

    lines = [line for line in result.lines if mine(line.convention, line.payer, line.payee)]
    settlements = [s for s in result.settlements if mine(s.convention, s.payer, s.payee)]
    positions = engine.net_positions(settlements)
    if not scope.is_staff_of_a_territory:
        positions = [p for p in positions if p.party.id in own]
    return {
        "lines": lines,
        "borne": [line for line in result.borne_by_payee if mine(line.convention, line.payee)],
        "settlements": [
            {
                "settlement": s,
                "mode_label": SettlementMode(s.settlement_mode).label,
                "channel_label": BalanceChannel(s.channel).label,
            }
            for s in settlements
        ],
        "positions": positions,
        # Compliance findings are the territory staff's tool; they name other communes.
        "findings": [f for f in computed.findings if whole(f.convention)],
        "total": sum((line.amount for line in lines), Decimal("0.00")),
        "conventions": computed.conventions,
    }


class StaleCostBase(Exception):
    """Someone saved the cost base since the form was opened (optimistic locking)."""


@transaction.atomic
def cost_base_save(*, form, lines) -> CostBase:
    """Save a cost base and its lines, unless another save came since the form was opened: the
    second save is refused and nothing is written (the convention form's rule)."""
    base = form.save(commit=False)
    if base.pk:
        expected = form.cleaned_data.get("version")
        claimed = CostBase.objects.filter(pk=base.pk, version=expected).update(
            version=F("version") + 1
        )
        if not claimed:
            raise StaleCostBase
        base.version = expected + 1
        base.save()
    else:
        try:
            with transaction.atomic():
                base.save()
        except IntegrityError:
            # Someone created the base of this service and year since the form was checked:
            # the model's own check now says so, in French (ValidationError).
            base.validate_constraints()
            raise
    lines.instance = base
    lines.save()
    return base


def stale_cost_base_message(base: CostBase) -> str:
    who, when = last_change(base)
    return _(
        "Cette base de coûts a été modifiée par %(who)s (%(when)s) depuis l'ouverture du "
        "formulaire. Rien n'a été enregistré ; vos saisies sont conservées ci-dessous. Ouvrez la "
        "base dans un autre onglet pour voir la dernière version, puis enregistrez à nouveau."
    ) % {"who": who, "when": when}


def simulation_chart(rows: list[SimulationRow]) -> dict:
    """Chart.js data: per year, the current and projected totals (amounts as strings)."""
    years = sorted({row.year for row in rows})
    current = {year: Decimal("0.00") for year in years}
    projected = {year: Decimal("0.00") for year in years}
    simulated = {year: Decimal("0.00") for year in years}
    for row in rows:
        current[row.year] += row.current
        projected[row.year] += row.projected
        simulated[row.year] += row.simulated or Decimal("0.00")
    chart = {
        "labels": [str(year) for year in years],
        "current": [str(current[year]) for year in years],
        "projected": [str(projected[year]) for year in years],
        "series": {
            "current": _("Situation actuelle"),
            "projected": _("Projeté"),
            "simulated": _("Simulation (vos valeurs)"),
        },
    }
    if any(row.simulated is not None for row in rows):
        chart["simulated"] = [str(simulated[year]) for year in years]
    return chart


# --- the year's computation, stored per convention (issue 11) ----------------------------------

# The code of the rules a stored result depends on: the engine and its rounding, what loads its
# inputs and checks compliance (this module), the days a convention covers.
RULES_MODULES = (
    "costing/engine.py",
    "costing/money.py",
    "costing/services.py",
    "conventions/services/in_force.py",
)


def rules_version(modules=RULES_MODULES) -> str:
    """The version of the rules: the digest of their code. A deployment that changes any of it
    changes every stored result's fingerprint, so each is computed again on its next reading
    (a version to raise by hand was never raised)."""
    digest = hashlib.sha256()
    for module in modules:
        digest.update(module.encode())
        digest.update((Path(settings.BASE_DIR) / module).read_bytes())
    return digest.hexdigest()[:16]


RESULT_RULES_VERSION = rules_version()


def party_as_json(p: engine.Party) -> list:
    return [p.id, p.siren, p.name, p.is_epci]


def party_from_json(value) -> engine.Party:
    return engine.Party(value[0], value[1], value[2], is_epci=value[3])


def text_or_none(value):
    return None if value is None else str(value)


def decimal_or_none(value):
    return None if value is None else Decimal(value)


def line_as_json(line: engine.Line) -> dict:
    return {
        "convention": line.convention,
        "payer": party_as_json(line.payer),
        "payee": party_as_json(line.payee),
        "service": line.service,
        "service_name": line.service_name,
        "period": [line.period.start.isoformat(), line.period.end.isoformat()],
        "basis": line.basis,
        "units": str(line.units),
        "unit_cost": text_or_none(line.unit_cost),
        "amount": str(line.amount),
        "usage_count": line.usage_count,
        "unit_cost_provisional": line.unit_cost_provisional,
        "key_weight": text_or_none(line.key_weight),
        "key_total": text_or_none(line.key_total),
        "shared_cost": text_or_none(line.shared_cost),
    }


def line_from_json(value: dict) -> engine.Line:
    return engine.Line(
        convention=value["convention"],
        payer=party_from_json(value["payer"]),
        payee=party_from_json(value["payee"]),
        service=value["service"],
        service_name=value["service_name"],
        period=engine.Period(*(date.fromisoformat(day) for day in value["period"])),
        basis=value["basis"],
        units=Decimal(value["units"]),
        unit_cost=decimal_or_none(value["unit_cost"]),
        amount=Decimal(value["amount"]),
        usage_count=value["usage_count"],
        unit_cost_provisional=value["unit_cost_provisional"],
        key_weight=decimal_or_none(value["key_weight"]),
        key_total=decimal_or_none(value["key_total"]),
        shared_cost=decimal_or_none(value["shared_cost"]),
    )


def settlement_as_json(s: engine.Settlement) -> dict:
    return {
        "convention": s.convention,
        "payer": party_as_json(s.payer),
        "payee": party_as_json(s.payee),
        "settlement_mode": s.settlement_mode,
        "actual": str(s.actual),
        "forecast": str(s.forecast),
        "ac_deduction": str(s.ac_deduction),
        "planned": [[i.rank, i.due_date.isoformat(), str(i.amount)] for i in s.planned],
        "called": [
            [i.rank, i.due_date.isoformat(), str(i.amount), i.reference, i.status] for i in s.called
        ],
    }


def settlement_from_json(value: dict) -> engine.Settlement:
    return engine.Settlement(
        convention=value["convention"],
        payer=party_from_json(value["payer"]),
        payee=party_from_json(value["payee"]),
        settlement_mode=value["settlement_mode"],
        actual=Decimal(value["actual"]),
        forecast=Decimal(value["forecast"]),
        ac_deduction=Decimal(value["ac_deduction"]),
        planned=tuple(
            engine.PlannedInstalment(rank, date.fromisoformat(day), Decimal(amount))
            for rank, day, amount in value["planned"]
        ),
        called=tuple(
            engine.CalledInstalment(rank, date.fromisoformat(day), Decimal(amount), ref, status)
            for rank, day, amount, ref, status in value["called"]
        ),
    )


def empty_result() -> dict:
    return {"lines": [], "borne": [], "settlements": [], "findings": []}


def result_as_json(computed: Reimbursements) -> dict[str, dict]:
    """convention reference → what its stored result holds."""
    by_reference: dict[str, dict] = defaultdict(empty_result)
    result = computed.result
    for line in result.lines:
        by_reference[line.convention]["lines"].append(line_as_json(line))
    for line in result.borne_by_payee:
        by_reference[line.convention]["borne"].append(line_as_json(line))
    for s in result.settlements:
        by_reference[s.convention]["settlements"].append(settlement_as_json(s))
    for f in computed.findings:
        by_reference[f.convention]["findings"].append([f.convention, f.code, f.message])
    return by_reference


def position_as_json(p: engine.Position) -> list:
    return [party_as_json(p.party), str(p.receivable), str(p.payable), str(p.settled)]


def summed_positions(parts) -> list[engine.Position]:
    """Each organisation's position summed over the conventions' parts of it: the figures
    ``engine.net_positions`` gives over all their settlements at once (sums of the same
    amounts), in its order."""
    totals: dict[int, list] = {}
    for party, receivable, payable, settled in parts:
        entry = totals.setdefault(party[0], [party, *(Decimal("0.00"),) * 3])
        entry[1] += Decimal(receivable)
        entry[2] += Decimal(payable)
        entry[3] += Decimal(settled)
    positions = [
        engine.Position(party_from_json(party), r, p, settled, r - p)
        for party, r, p, settled in totals.values()
    ]
    return sorted(positions, key=lambda position: position.party.siren)


def result_summary(lines: list) -> dict:
    """What the pages select and sum a convention's lines by, without reading them: the
    direction (its lines share one payee), the SIRENs and services they name, the amount per
    service."""
    by_service: dict[str, list] = {}
    for line in lines:
        entry = by_service.setdefault(line["service"], [line["service_name"], Decimal("0.00")])
        entry[1] += Decimal(line["amount"])
    payee = lines[0]["payee"] if lines else None
    by_payer, by_payee = amounts_by_party(lines)
    return {
        "direction": "" if payee is None else "EPCI_PROVIDES" if payee[3] else "COMMUNE_PROVIDES",
        "sirens": sorted({line[side][1] for line in lines for side in ("payer", "payee")}),
        "by_service": [[code, name, str(amount)] for code, (name, amount) in by_service.items()],
        "by_payer": {siren: str(amount) for siren, amount in by_payer.items()},
        "by_payee": {siren: str(amount) for siren, amount in by_payee.items()},
    }


def amounts_by_party(lines) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """The amounts of these stored lines summed by payer's SIREN and by payee's SIREN."""
    by_payer: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    by_payee: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for line in lines:
        by_payer[line["payer"][1]] += Decimal(line["amount"])
        by_payee[line["payee"][1]] += Decimal(line["amount"])
    return dict(by_payer), dict(by_payee)


def history_marks(model, key: str, **filters) -> dict:
    """key → (number of history rows, latest change) of a model's history: any save or
    deletion through the application adds a row, so the pair changes with the data."""
    return {
        row[0]: (row[1], row[2].isoformat() if row[2] else "")
        for row in model.history.model.objects.filter(**filters)
        .order_by()
        .values_list(key)
        .annotate(Count("history_id"), Max("history_date"))
    }


def input_fingerprints(year: int, conventions: list[tuple[int, tuple]]) -> dict[int, str]:
    """convention id → a digest of everything its computation of ``year`` reads: the
    convention's row and the history of its parties, services, terms, forecasts, avenants,
    termination and acomptes; its usage records of the year (count, latest write, units);
    the unit costs, cost bases and names of its services; its organisations and their
    populations; the notification settings and the rules' version. A bounded number of grouped queries,
    whatever the number of conventions. ``conventions``: (id, the row's own values)."""
    ids = [pk for pk, _values in conventions]
    per_convention = [
        history_marks(Convention, "id", id__in=ids),
        history_marks(ConventionParty, "convention_id", convention_id__in=ids),
        history_marks(ConventionService, "convention_id", convention_id__in=ids),
        history_marks(Terms, "convention_id", convention_id__in=ids),
        history_marks(UsageForecast, "terms__convention_id", terms__convention_id__in=ids),
        history_marks(Amendment, "convention_id", convention_id__in=ids),
        history_marks(Termination, "convention_id", convention_id__in=ids),
        history_marks(Instalment, "convention_id", convention_id__in=ids, year=year),
        {
            row[0]: row[1:]
            for row in UsageRecord.objects.filter(convention_id__in=ids, period_start__year=year)
            .order_by()
            .values_list("convention_id")
            .annotate(
                records=Count("pk"), latest=Max("recorded_at"), milli=MILLI_UNITS, last=Max("pk")
            )
        },
    ]
    services_of: dict[int, set] = defaultdict(set)
    for convention_id, service_id in (
        ConventionService.objects.filter(convention_id__in=ids)
        .order_by()
        .values_list("convention_id", "service_id")
    ):
        services_of[convention_id].add(service_id)
    service_ids = set().union(*services_of.values()) if services_of else set()
    per_service = [
        history_marks(Service, "id", id__in=service_ids),
        history_marks(UnitCost, "service_id", service_id__in=service_ids, year=year),
        history_marks(CostBase, "service_id", service_id__in=service_ids, year=year),
        history_marks(
            CostLine,
            "cost_base__service_id",
            cost_base__service_id__in=service_ids,
            cost_base__year=year,
        ),
    ]
    # The organisations a convention's computation reads (its parties, its managing
    # organisation, its territory) and their populations: a change elsewhere leaves it be.
    organisations_of: dict[int, set] = defaultdict(set)
    for convention_id, organisation_id in (
        ConventionParty.objects.filter(convention_id__in=ids)
        .order_by()  # the parties' ordering joins the organisations: not needed here
        .values_list("convention_id", "organisation_id")
    ):
        organisations_of[convention_id].add(organisation_id)
    for convention_id, *others in Convention.objects.filter(id__in=ids).values_list(
        "id", "managing_organisation_id", "territory_id"
    ):
        organisations_of[convention_id].update(o for o in others if o is not None)
    organisation_ids = set().union(*organisations_of.values()) if organisations_of else set()
    per_organisation = [
        history_marks(Organisation, "id", id__in=organisation_ids),
        history_marks(PopulationRecord, "organisation_id", organisation_id__in=organisation_ids),
    ]
    shared = [
        RESULT_RULES_VERSION,
        year,
        settings.MUTUALIS_RENEWAL_YEARS,
        settings.MUTUALIS_NOTIFICATION_DEADLINE,
        settings.MUTUALIS_NOTIFICATION_DEADLINE_RENEWAL,
    ]
    fingerprints = {}
    for pk, values in conventions:
        parts = [
            shared,
            values,
            [marks.get(pk) for marks in per_convention],
            [
                [service_id, [marks.get(service_id) for marks in per_service]]
                for service_id in sorted(services_of.get(pk, ()))
            ],
            [
                [organisation_id, [marks.get(organisation_id) for marks in per_organisation]]
                for organisation_id in sorted(organisations_of.get(pk, ()))
            ],
        ]
        fingerprints[pk] = hashlib.sha256(repr(parts).encode()).hexdigest()
    return fingerprints


@dataclass(frozen=True)
class StoredYear:
    """The year's computation of some conventions, as stored: their rows (lines left in the
    database until a page reads some), settlements, own shares and findings decoded; what a
    page sums for any scope."""

    year: int
    rows: list  # ReimbursementResult, ``lines`` deferred, in the order of the references
    borne: list  # engine.Line
    positions: list  # engine.Position of every organisation, over all these conventions
    findings: list  # engine.Finding
    total: Decimal
    computed_at: object  # the oldest computation shown (datetime), or None
    recomputed: int  # how many conventions were computed for this view


class StoredRows(Sequence):
    """Stored lines (or settlements) of some results, in the engine's order, decoded only when
    read: a page reads the stored rows of the conventions its slice covers (one query)."""

    def __init__(self, results: list, column: str, decode, selected: list | None = None):
        self.column = column
        self.decode = decode
        self.results = [r for r in results if self.count_of(r)]
        self.selected = selected  # the stored rows a filter kept, or None for all of them
        self.starts = []
        start = 0
        for result in self.results:
            self.starts.append(start)
            start += self.count_of(result)
        self.count = start if selected is None else len(selected)

    def count_of(self, result) -> int:
        return result.line_count if self.column == "lines" else result.settlement_count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.decode(row) for row in self.stored(*index.indices(self.count)[:2])]
        if index < 0:
            index += self.count
        if not 0 <= index < self.count:
            raise IndexError(index)
        return self.decode(self.stored(index, index + 1)[0])

    def stored(self, start: int, stop: int) -> list:
        if self.selected is not None:
            return self.selected[start:stop]
        if start >= stop:
            return []
        first = bisect_right(self.starts, start) - 1
        last = bisect_right(self.starts, stop - 1) - 1
        covering = self.results[first : last + 1]
        found = read_stored(covering, self.column)
        offset = self.starts[first]
        return found[start - offset : stop - offset]


def read_stored(results: list, column: str) -> list:
    """The stored lines (or settlements) of these results, in their order: one query."""
    read = dict(
        ReimbursementResult.objects.filter(pk__in=[r.pk for r in results]).values_list("pk", column)
    )
    return [row for r in results for row in read[r.pk]]


def settlement_row(stored: dict) -> dict:
    s = settlement_from_json(stored)
    return {
        "settlement": s,
        "mode_label": SettlementMode(s.settlement_mode).label,
        "channel_label": BalanceChannel(s.channel).label,
    }


def billed_convention_rows(year: int, conventions=None) -> list[tuple[int, tuple]]:
    """(id, the row's values a computation reads) of the conventions billed in ``year``."""
    queryset = conventions if conventions is not None else Convention.objects.all()
    return [
        (row[0], tuple(str(value) for value in row[1:]))
        for row in queryset.filter(status__in=BILLED_STATUSES, start_date__lte=date(year, 12, 31))
        .order_by("reference")
        .values_list(
            "pk",
            "reference",
            "kind",
            "status",
            "start_date",
            "signature_date",
            "managing_organisation_id",
            "version",  # raised by every change made through the conventions' services
        )
    ]


@transaction.atomic
def store_results(year: int, convention_ids: list[int], fingerprints: dict[int, str]) -> list:
    """Compute the year of these conventions (``compute_reimbursements``, the one source of
    truth) and store each one's result with the fingerprint of the inputs read."""
    computed = compute_reimbursements(year, Convention.objects.filter(pk__in=convention_ids))
    by_reference = result_as_json(computed)
    references = dict(
        Convention.objects.filter(pk__in=convention_ids).values_list("pk", "reference")
    )
    now = timezone.now()
    rows = []
    for pk in convention_ids:
        result = by_reference.get(references[pk]) or empty_result()
        lines = result.pop("lines")
        settlements = result.pop("settlements")
        result["positions"] = [
            position_as_json(p)
            for p in engine.net_positions(settlement_from_json(s) for s in settlements)
        ]
        rows.append(
            ReimbursementResult(
                convention_id=pk,
                year=year,
                fingerprint=fingerprints[pk],
                computed_at=now,
                total=sum((Decimal(line["amount"]) for line in lines), Decimal("0.00")),
                line_count=len(lines),
                lines=lines,
                settlement_count=len(settlements),
                settlements=settlements,
                data={**result, **result_summary(lines)},
            )
        )
    ReimbursementResult.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["convention", "year"],
        update_fields=[
            "fingerprint",
            "computed_at",
            "total",
            "line_count",
            "lines",
            "settlement_count",
            "settlements",
            "data",
        ],
    )
    return rows


def year_results(year: int, conventions=None, *, recompute: bool = False) -> StoredYear:
    """The year's computation of the conventions of ``conventions`` (a queryset: the ones the
    user may see), read from the stored results; a convention whose inputs changed since (or
    every one, with ``recompute``) is computed and stored first."""
    billed = billed_convention_rows(year, conventions)
    fingerprints = input_fingerprints(year, billed)
    ids = [pk for pk, _values in billed]
    stored = {
        row.convention_id: row
        # Without their lines and settlements, read by those who show them (``read_stored``).
        for row in ReimbursementResult.objects.filter(year=year, convention_id__in=ids).defer(
            "lines", "settlements"
        )
    }
    stale = [
        pk
        for pk in ids
        if recompute or pk not in stored or stored[pk].fingerprint != fingerprints[pk]
    ]
    if stale:
        for row in store_results(year, stale, fingerprints):
            stored[row.convention_id] = row
    rows = [stored[pk] for pk in ids]  # in the order of the references, as the engine's
    return StoredYear(
        year=year,
        rows=rows,
        borne=[line_from_json(line) for row in rows for line in row.data["borne"]],
        positions=summed_positions(part for row in rows for part in row.data["positions"]),
        findings=[engine.Finding(*finding) for row in rows for finding in row.data["findings"]],
        total=sum((row.total for row in rows), Decimal("0.00")),
        computed_at=min((row.computed_at for row in rows), default=None),
        recomputed=len(stale),
    )


def involves(line: dict, organisation_ids) -> bool:
    return line["payer"][0] in organisation_ids or line["payee"][0] in organisation_ids


def select_lines(lines, *, siren: str = "", service: str = "", direction: str = "") -> list:
    """The stored lines behind a figure: of a SIREN, a service, or a direction."""
    selected = list(lines)
    if siren:
        selected = [x for x in selected if siren in (x["payer"][1], x["payee"][1])]
    if service:
        selected = [x for x in selected if x["service"] == service]
    if direction == "EPCI_PROVIDES":
        selected = [x for x in selected if x["payee"][3]]
    elif direction == "COMMUNE_PROVIDES":
        selected = [x for x in selected if not x["payee"][3]]
    return selected


def stored_visible_part(stored: StoredYear, organisation_ids=None, **filters) -> dict:
    """``visible_part`` over the stored results: everything for Métropole staff; for a commune
    reader, the lines, settlements and position of their own organisation(s) only. The net
    positions are the engine's (``net_positions``) over the settlements of the conventions
    shown, as when the whole year is computed."""

    def mine(*parties):
        return organisation_ids is None or any(p.id in organisation_ids for p in parties)

    filtered = any(filters.values())
    if organisation_ids is None and not filtered:
        lines = StoredRows(stored.rows, "lines", line_from_json)
        total = stored.total
    else:
        # Only the conventions that may hold such lines are read.
        rows = [
            row
            for row in stored.rows
            if row.line_count
            and (not filters.get("siren") or filters["siren"] in row.data["sirens"])
            and (
                not filters.get("service")
                or any(code == filters["service"] for code, *_rest in row.data["by_service"])
            )
            and (
                filters.get("direction") not in ("EPCI_PROVIDES", "COMMUNE_PROVIDES")
                or row.data["direction"] == filters["direction"]
            )
        ]
        selected = read_stored(rows, "lines")
        if organisation_ids is not None:
            selected = [line for line in selected if involves(line, organisation_ids)]
        selected = select_lines(selected, **filters)
        lines = StoredRows(rows, "lines", line_from_json, selected)
        total = sum((Decimal(line["amount"]) for line in selected), Decimal("0.00"))
    if organisation_ids is None:
        settlements = StoredRows(stored.rows, "settlements", settlement_row)
    else:
        mine_only = [
            s
            for s in read_stored(stored.rows, "settlements")
            if s["payer"][0] in organisation_ids or s["payee"][0] in organisation_ids
        ]
        settlements = StoredRows(stored.rows, "settlements", settlement_row, mine_only)
    return {
        "lines": lines,
        "borne": [line for line in stored.borne if mine(line.payee)],
        "settlements": settlements,
        "positions": [p for p in stored.positions if mine(p.party)],
        "findings": list(stored.findings) if organisation_ids is None else [],
        "total": total,
        "filtered": filtered,
        "computed_at": stored.computed_at,
    }


def stored_part_by_party(stored: StoredYear, part: dict) -> tuple[dict, dict]:
    """The amounts of a part of the year (``stored_visible_part``) by payer's and by payee's
    SIREN: for the whole year, summed from each convention's stored summary without reading
    its lines; for a part narrowed to some lines, from those lines (already read)."""
    selected = part["lines"].selected
    if selected is not None:
        return amounts_by_party(selected)
    by_payer: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    by_payee: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for row in stored.rows:
        for siren, amount in row.data["by_payer"].items():
            by_payer[siren] += Decimal(amount)
        for siren, amount in row.data["by_payee"].items():
            by_payee[siren] += Decimal(amount)
    return dict(by_payer), dict(by_payee)


def stored_dashboard(stored: StoredYear, conventions=None) -> dict:
    """``dashboard`` over the stored results; its deadlines are those of ``conventions``."""
    from conventions.services.overview import alerts

    by_direction = {"EPCI_PROVIDES": Decimal("0.00"), "COMMUNE_PROVIDES": Decimal("0.00")}
    # by code and name: a code is unique within a territory only (a platform's operator sees
    # several territories' « ads »)
    by_service: dict[tuple, dict] = {}
    for row in stored.rows:
        if row.data["direction"]:
            by_direction[row.data["direction"]] += row.total
        for code, name, amount in row.data["by_service"]:
            entry = by_service.setdefault(
                (code, name), {"code": code, "name": name, "amount": Decimal("0.00")}
            )
            entry["amount"] += Decimal(amount)
    positions = stored.positions
    # The chart shows the largest positions, the EPCI's included (what the communes pay, it
    # receives); the table below lists them all, page by page.
    charted = sorted(positions, key=lambda p: (-abs(p.net), p.party.siren))[:CHART_POSITIONS]
    services_sorted = sorted(by_service.values(), key=lambda e: -e["amount"])
    return {
        "total": stored.total,
        "by_direction": by_direction,
        "by_service": services_sorted,
        "positions": positions,
        "findings": stored.findings,
        "alerts": alerts(within_days=180, conventions=conventions),
        "computed_at": stored.computed_at,
        "charted_communes": len(charted),
        "chart_partial": len(charted) < len(positions),
        "chart": {
            "communes": {
                "labels": [chart_label(p.party.name) for p in charted],
                "net": [str(p.net) for p in charted],
            },
            "services": {
                "labels": [chart_label(e["name"]) for e in services_sorted],
                "amounts": [str(e["amount"]) for e in services_sorted],
            },
        },
    }


CHART_POSITIONS = 30
CHART_LABEL_WIDTH = 28  # characters per line of a chart's label


def chart_label(name: str) -> list[str]:
    """A chart's label on lines of at most CHART_LABEL_WIDTH characters, cut between words
    (Chart.js draws a list as lines): a long service name is wrapped, never truncated."""
    return textwrap.wrap(name, CHART_LABEL_WIDTH, break_on_hyphens=False) or [name]
