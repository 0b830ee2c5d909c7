"""Acomptes (D5211-16: a periodicity of at most a year): calling the ones the engine plans on the
forecast, recording their titre and their payment. The year-end regularisation uses the
acomptes recorded here, never a recomputation of the plan (costing/services.py loads them)."""

from datetime import date

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import Convention, Status
from costing import services
from costing.models import (
    Instalment,
    InstalmentStatus,
    ReimbursementResult,
    Statement,
    StatementStatus,
)
from costing.statements import convention_territories, lock_year


class InstalmentRefused(Exception):
    """An action refused on an acompte; ``reasons`` are French sentences."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


def planned_not_called(year: int, conventions=None) -> list[tuple]:
    """The acomptes the engine plans for ``year`` that are not recorded yet (a called or
    cancelled rank is never called again), as (convention id, settlement, planned instalment),
    by due date; none for a pair whose état annuel is issued: the year is regularised. Read from
    the year's stored results (``services.year_results``: computed again only for the
    conventions whose inputs changed), of ``conventions`` only."""
    stored = services.year_results(year, conventions)
    chosen = [row.convention_id for row in stored.rows]
    recorded = set(
        Instalment.objects.filter(year=year, convention_id__in=chosen).values_list(
            "convention_id", "payer_id", "rank"
        )
    )
    regularised = set(
        Statement.objects.filter(
            year=year,
            convention_id__in=chosen,
            status=StatementStatus.ISSUED,
            cancelled_by__isnull=True,
        ).values_list("convention_id", "payer_id")
    )
    pending = []
    for convention_id, settlements in ReimbursementResult.objects.filter(
        pk__in=[row.pk for row in stored.rows]
    ).values_list("convention_id", "settlements"):
        for value in settlements:
            if not value["planned"]:
                continue  # most settlements plan no acompte (on the AC, or none forecast)
            settlement = services.settlement_from_json(value)
            if (convention_id, settlement.payer.id) in regularised:
                continue
            pending += [
                (convention_id, settlement, planned)
                for planned in settlement.planned
                if (convention_id, settlement.payer.id, planned.rank) not in recorded
            ]
    return sorted(
        pending,
        key=lambda item: (item[2].due_date, item[1].convention, item[1].payer.name),
    )


@transaction.atomic
def instalments_call(year: int, *, up_to: date, conventions=None) -> list[Instalment]:
    """Record the planned acomptes of ``year`` due on or before ``up_to`` and not recorded yet.
    Idempotent: an acompte already called (or cancelled) is never called again nor changed."""
    # the same lock as preparing and issuing the year's statements
    lock_year(year, convention_territories(conventions))
    pending = planned_not_called(year, conventions)
    # An acompte is called by a titre, which rests on an enforceable convention: none while it
    # is only signed (« en vigueur » is the step that checks it).
    only_signed = set(
        Convention.objects.filter(
            pk__in={convention_id for convention_id, _s, _p in pending}, status=Status.SIGNED
        ).values_list("pk", flat=True)
    )
    called = [
        Instalment(
            convention_id=convention_id,
            payer_id=settlement.payer.id,
            payee_id=settlement.payee.id,
            year=year,
            rank=planned.rank,
            due_date=planned.due_date,
            amount=planned.amount,
        )
        for convention_id, settlement, planned in pending
        if planned.due_date <= up_to and convention_id not in only_signed
    ]
    for instalment in called:
        instalment.save()  # one by one, so that the history records each call
    return called


def statement_issued(instalment: Instalment) -> Statement | None:
    return Statement.objects.filter(
        convention_id=instalment.convention_id,
        payer_id=instalment.payer_id,
        year=instalment.year,
        status=StatementStatus.ISSUED,
    ).first()


def locked_reasons(instalment: Instalment) -> list[str]:
    """Why an acompte can no longer change: cancelled, or its year's état annuel is issued
    (the regularisation was computed from it)."""
    reasons = []
    if instalment.status == InstalmentStatus.CANCELLED:
        reasons.append(_("Cet acompte est annulé."))
    issued = statement_issued(instalment)
    if issued is not None:
        reasons.append(
            _(
                "L'état annuel n° %(number)s, émis, a régularisé cet acompte : il ne se modifie "
                "plus."
            )
            % {"number": issued.number}
        )
    return reasons


@transaction.atomic
def instalment_record_titre(instalment: Instalment, number: str) -> Instalment:
    instalment = Instalment.objects.select_for_update().get(pk=instalment.pk)
    reasons = locked_reasons(instalment)
    if instalment.status == InstalmentStatus.PAID:
        reasons.append(_("Cet acompte est déjà encaissé."))
    if not number.strip():
        reasons.append(_("Indiquez le numéro du titre émis."))
    if reasons:
        raise InstalmentRefused(reasons)
    instalment.titre_number = number.strip()
    instalment.status = InstalmentStatus.TITRE_ISSUED
    instalment.save(update_fields=["titre_number", "status"])
    return instalment


@transaction.atomic
def instalment_record_payment(instalment: Instalment, paid_on: date) -> Instalment:
    instalment = Instalment.objects.select_for_update().get(pk=instalment.pk)
    # An encaissement is recorded even after the état annuel is issued: it only follows the
    # titre the comptable already holds.
    reasons = []
    if instalment.status == InstalmentStatus.CANCELLED:
        reasons.append(_("Cet acompte est annulé."))
    if instalment.status == InstalmentStatus.CALLED:
        reasons.append(_("Enregistrez d'abord le numéro du titre de cet acompte."))
    if instalment.status == InstalmentStatus.PAID:
        reasons.append(_("Cet acompte est déjà encaissé."))
    if paid_on > timezone.localdate():
        reasons.append(_("La date d'encaissement ne peut être dans le futur."))
    if reasons:
        raise InstalmentRefused(reasons)
    instalment.status = InstalmentStatus.PAID
    instalment.paid_on = paid_on
    instalment.save(update_fields=["status", "paid_on"])
    return instalment


@transaction.atomic
def instalment_cancel(instalment: Instalment, *, reason: str) -> Instalment:
    """Cancel a call made in error (before it is paid and before the état annuel is issued);
    the reason is kept in the acompte's history. A cancelled rank is not called again."""
    instalment = Instalment.objects.select_for_update().get(pk=instalment.pk)
    reasons = locked_reasons(instalment)
    if instalment.status == InstalmentStatus.PAID:
        reasons.append(
            _("Un acompte encaissé ne s'annule pas : la régularisation en tiendra compte.")
        )
    if not reason.strip():
        reasons.append(_("Indiquez le motif de l'annulation."))
    if reasons:
        raise InstalmentRefused(reasons)
    instalment.status = InstalmentStatus.CANCELLED
    instalment._change_reason = reason.strip()  # simple-history keeps it with the change
    instalment.save(update_fields=["status"])
    return instalment
