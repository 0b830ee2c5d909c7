"""États annuels de remboursement: prepared as drafts from the engine, reviewed by the communes,
issued (numbered without gaps, frozen, PDF stored with its SHA-256), corrected by a new
statement that cites the one it cancels."""

import hashlib
import io
import zipfile
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import Convention
from costing import services
from costing.models import (
    AccountMapping,
    BatchJob,
    FlowDirection,
    FlowType,
    Side,
    Statement,
    StatementCounter,
    StatementLine,
    StatementRemark,
    StatementStatus,
    UnitCost,
)
from mutualisation.documents import render_pdf
from mutualisation.models import Organisation, Service

SNAPSHOT_VERSION = 1


class StatementRefused(Exception):
    """An action refused on a statement; ``reasons`` are French sentences."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


def review_days() -> int:
    return getattr(settings, "MUTUALIS_STATEMENT_REVIEW_DAYS", 15)


# --- accounts ----------------------------------------------------------------------------------


def account_table() -> dict:
    return {
        (m.flow, m.direction, m.side): m for m in AccountMapping.objects.filter(is_current=True)
    }


def accounts_for(
    payee: Organisation, table: dict
) -> tuple[AccountMapping | None, AccountMapping | None]:
    """(provider's revenue account, beneficiary's expense account) for a service reimbursement."""
    direction = FlowDirection.EPCI_PROVIDES if payee.is_epci else FlowDirection.COMMUNE_PROVIDES
    return (
        table.get((FlowType.SERVICE_REIMBURSEMENT, direction, Side.PROVIDER)),
        table.get((FlowType.SERVICE_REIMBURSEMENT, direction, Side.BENEFICIARY)),
    )


# --- drafts ------------------------------------------------------------------------------------


def organisation_snapshot(org: Organisation) -> dict:
    return {
        "name": org.name,
        "siren": org.siren,
        "kind": org.get_kind_display(),
        "representative_title": org.representative_title,
        "representative_name": org.representative_name,
    }


def build_snapshot(*, convention, payer, payee, year, lines, settlement, unit_costs, table) -> dict:
    revenue, expense = accounts_for(payee, table)
    return {
        "version": SNAPSHOT_VERSION,
        "year": year,
        "convention": {
            "reference": convention.reference,
            "title": convention.title,
            "kind": convention.get_kind_display(),
            "legal_basis": list(convention.legal_basis),
        },
        "payer": organisation_snapshot(payer),
        "payee": organisation_snapshot(payee),
        "accounts": {
            "nomenclature": (revenue or expense).nomenclature if (revenue or expense) else "",
            "revenue": {"account": revenue.account, "label": revenue.label} if revenue else None,
            "expense": {"account": expense.account, "label": expense.label} if expense else None,
        },
        "lines": [
            {
                "service": line.service,
                "service_name": line.service_name,
                "period_start": line.period.start.isoformat(),
                "period_end": line.period.end.isoformat(),
                "basis": line.basis,
                "units": str(line.units),
                "unit_cost": None if line.unit_cost is None else str(line.unit_cost),
                "unit_cost_provisional": line.unit_cost_provisional,
                "unit_cost_notified_on": (
                    unit_costs[line.service].notified_on.isoformat()
                    if line.service in unit_costs and unit_costs[line.service].notified_on
                    else None
                ),
                "key_weight": None if line.key_weight is None else str(line.key_weight),
                "key_total": None if line.key_total is None else str(line.key_total),
                "shared_cost": None if line.shared_cost is None else str(line.shared_cost),
                "usage_count": line.usage_count,
                "amount": str(line.amount),
            }
            for line in lines
        ],
        "total": str(sum((line.amount for line in lines), Decimal("0.00"))),
        "settlement": None
        if settlement is None
        else {
            "mode": settlement.settlement_mode,
            "forecast": str(settlement.forecast),
            "instalments": [str(i) for i in settlement.instalments],
            "actual": str(settlement.actual),
            "regularisation": str(settlement.regularisation),
            "ac_deduction": str(settlement.ac_deduction),
            "ac_balance": str(settlement.ac_balance),
        },
    }


@transaction.atomic
def statements_prepare(year: int, conventions=None, payer_id=None) -> list[Statement]:
    """Create or refresh the draft statements of the year (one per convention and payer) from the
    engine; only ``payer_id``'s when given. Pairs already issued (and not being corrected) are
    left alone."""
    lock_year(year)
    computed = services.compute_reimbursements(year, conventions)
    result = computed.result
    table = account_table()
    unit_costs = {
        u.service.code: u
        for u in UnitCost.objects.current().filter(year=year).select_related("service")
    }
    services_by_code = {s.code: s for s in Service.objects.all()}
    organisations = Organisation.objects.in_bulk(
        {s.payer.id for s in result.settlements} | {s.payee.id for s in result.settlements}
    )
    by_pair = defaultdict(list)
    for line in result.lines:
        by_pair[(line.convention, line.payer.id)].append(line)
    issued = set(
        Statement.objects.filter(
            year=year, status=StatementStatus.ISSUED, cancelled_by__isnull=True
        ).values_list("convention__reference", "payer_id")
    )
    prepared = []
    now = timezone.now()
    for settlement in result.settlements:
        if payer_id is not None and settlement.payer.id != payer_id:
            continue
        key = (settlement.convention, settlement.payer.id)
        lines = by_pair.get(key, [])
        convention = computed.conventions[settlement.convention]
        draft = Statement.objects.filter(
            convention=convention,
            payer_id=settlement.payer.id,
            year=year,
            status=StatementStatus.DRAFT,
        ).first()
        if draft is None and (key in issued or (not lines and settlement.forecast == 0)):
            continue  # already issued, or nothing to state; an existing draft is brought to zero
        payer, payee = organisations[settlement.payer.id], organisations[settlement.payee.id]
        if draft is None:
            draft = Statement(
                convention=convention,
                payer=payer,
                payee=payee,
                year=year,
                review_until=timezone.localdate() + timedelta(days=review_days()),
            )
        snapshot = build_snapshot(
            convention=convention,
            payer=payer,
            payee=payee,
            year=year,
            lines=lines,
            settlement=settlement,
            unit_costs=unit_costs,
            table=table,
        )
        draft.snapshot = snapshot
        draft.total = Decimal(snapshot["total"])
        called = (
            settlement.ac_deduction
            if settlement.settlement_mode != "TITRE"
            else sum(settlement.instalments, Decimal("0.00"))
        )
        draft.instalments_called = called
        draft.balance = draft.total - called
        draft.computed_at = now
        draft.save()
        draft.lines.all().delete()
        revenue, expense = accounts_for(payee, table)
        StatementLine.objects.bulk_create(
            StatementLine(
                statement=draft,
                position=index,
                service=services_by_code[line.service],
                period_start=line.period.start,
                period_end=line.period.end,
                basis=line.basis,
                units=line.units,
                unit_cost=line.unit_cost,
                unit_cost_notified_on=unit_costs[line.service].notified_on
                if line.service in unit_costs
                else None,
                key_weight=line.key_weight,
                key_total=line.key_total,
                shared_cost=line.shared_cost,
                amount=line.amount,
                revenue_account=revenue.account if revenue else "",
                expense_account=expense.account if expense else "",
                usage_count=line.usage_count,
            )
            for index, line in enumerate(lines, start=1)
        )
        prepared.append(draft)
    return prepared


# --- issuing -----------------------------------------------------------------------------------


def lock_year(year: int) -> StatementCounter:
    """Lock the year's counter row until the transaction ends. Preparing and issuing a year's
    statements take this lock first, so they run one after the other (no duplicate drafts, no
    gaps in numbers, no deadlock)."""
    try:
        with transaction.atomic():
            StatementCounter.objects.get_or_create(year=year)
    except IntegrityError:
        pass  # created meanwhile by a concurrent transaction
    return StatementCounter.objects.select_for_update().get(year=year)


def next_number(year: int) -> str:
    """EA-<year>-<nnnn>: consecutive, without gaps, even when two people issue at once."""
    counter = lock_year(year)
    counter.last_number = F("last_number") + 1
    counter.save(update_fields=["last_number"])
    counter.refresh_from_db()
    return f"EA-{year}-{counter.last_number:04d}"


def statement_context(statement: Statement) -> dict:
    """What the statement PDF shows, read from its snapshot (frozen once issued)."""
    snapshot = statement.snapshot
    lines = [
        {
            **line,
            "period_start": date.fromisoformat(line["period_start"]),
            "period_end": date.fromisoformat(line["period_end"]),
            "unit_cost_notified_on": line["unit_cost_notified_on"]
            and date.fromisoformat(line["unit_cost_notified_on"]),
        }
        for line in snapshot.get("lines", [])
    ]
    return {
        "statement": statement,
        "s": snapshot,
        "lines": lines,
        "number": statement.number,
        "draft": not statement.is_issued,
        "cancels": statement.cancels,
    }


def render_statement_pdf(statement: Statement) -> bytes:
    return render_pdf("costing/statement_pdf.html", statement_context(statement))


@transaction.atomic
def statement_issue(statement: Statement, *, user=None) -> Statement:
    """Issue a draft: recompute it, number it, freeze its snapshot and PDF (bytes + SHA-256)."""
    lock_year(statement.year)  # first, as statements_prepare does
    statement = Statement.objects.select_for_update().get(pk=statement.pk)
    if statement.is_issued:
        raise StatementRefused(
            [_("Cet état est déjà émis (%(number)s).") % {"number": statement.number}]
        )
    # Recompute this draft only (other drafts of the convention may be issued concurrently).
    statements_prepare(
        statement.year,
        Convention.objects.filter(pk=statement.convention_id),
        payer_id=statement.payer_id,
    )
    statement.refresh_from_db()
    if not statement.lines.exists() and statement.balance == 0 and statement.cancels_id is None:
        raise StatementRefused(
            [_("Cet état ne comporte aucune ligne ni aucun solde : rien à émettre.")]
        )
    statement.number = next_number(statement.year)
    statement.issued_at = timezone.now()
    statement.issued_by = user if user is not None and user.is_authenticated else None
    statement.snapshot = {
        **statement.snapshot,
        "number": statement.number,
        "issued_at": statement.issued_at.isoformat(),
    }
    statement.status = StatementStatus.ISSUED
    pdf = render_statement_pdf(statement)
    statement.pdf = pdf
    statement.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    statement.save()
    return statement


@transaction.atomic
def statement_correct(statement: Statement, *, reason: str) -> Statement:
    """Start the correction of an issued statement: a new draft that cites the one it cancels."""
    lock_year(statement.year)
    reasons = []
    if not statement.is_issued:
        reasons.append(_("Seul un état émis se corrige ; un projet se recalcule."))
    if Statement.objects.filter(cancels=statement).exists():
        reasons.append(_("Cet état est déjà annulé et remplacé."))
    if not reason.strip():
        reasons.append(_("Indiquez le motif de la correction."))
    if reasons:
        raise StatementRefused(reasons)
    draft = Statement.objects.create(
        convention=statement.convention,
        payer=statement.payer,
        payee=statement.payee,
        year=statement.year,
        cancels=statement,
        correction_reason=reason.strip(),
        review_until=timezone.localdate() + timedelta(days=review_days()),
    )
    statements_prepare(
        statement.year,
        Convention.objects.filter(pk=statement.convention_id),
        payer_id=statement.payer_id,
    )
    draft.refresh_from_db()
    return draft


@transaction.atomic
def remark_add(statement: Statement, *, author, text: str) -> StatementRemark:
    reasons = []
    if statement.is_issued:
        reasons.append(_("L'état est émis : les remarques ne sont plus possibles."))
    elif statement.review_until and timezone.localdate() > statement.review_until:
        reasons.append(
            _("La période de remarques s'est achevée le %(date)s.")
            % {"date": statement.review_until.strftime("%d/%m/%Y")}
        )
    if not text.strip():
        reasons.append(_("La remarque est vide."))
    if reasons:
        raise StatementRefused(reasons)
    return StatementRemark.objects.create(statement=statement, author=author, text=text.strip())


def statement_state(statement: Statement) -> str:
    """« Projet », « Émis », or « Annulé » when an issued statement cancels it. List pages
    annotate ``is_cancelled`` (``Statement.objects.with_state()``) to spare a query per row."""
    cancelled = getattr(statement, "is_cancelled", None)
    if cancelled is None:
        cancelled = Statement.objects.filter(
            cancels=statement, status=StatementStatus.ISSUED
        ).exists()
    if statement.is_issued and cancelled:
        return _("Annulé")
    return statement.get_status_display()


# --- batches: issue and/or export a year's statements as one ZIP -------------------------------


def current_statements(year: int):
    """The statements that stand for the year: issued and not cancelled, plus the drafts (but
    not a draft correction: the statement it would cancel still stands until it is issued)."""
    return (
        Statement.objects.filter(year=year)
        .exclude(status=StatementStatus.ISSUED, cancelled_by__status=StatementStatus.ISSUED)
        .exclude(status=StatementStatus.DRAFT, cancels__isnull=False)
        .select_related("convention", "payer", "payee", "cancels")
        .order_by("status", "number", "convention__reference", "payer__siren")
    )


def batch_start(*, year: int, action: str, user) -> BatchJob:
    """Record the job and hand it to Celery once the transaction commits."""
    from costing.tasks import run_statement_batch

    job = BatchJob.objects.create(year=year, action=action, created_by=user)
    transaction.on_commit(lambda: run_statement_batch.delay(job.pk))
    return job


def batch_run(job_id: int) -> BatchJob:
    job = BatchJob.objects.get(pk=job_id)
    BatchJob.objects.filter(pk=job.pk).update(status=BatchJob.JobStatus.RUNNING)
    try:
        statements_prepare(job.year)
        drafts = list(Statement.objects.filter(year=job.year, status=StatementStatus.DRAFT))
        to_issue = drafts if job.action == BatchJob.Action.ISSUE_AND_EXPORT else []
        exported = list(current_statements(job.year))
        total = len(to_issue) + len(exported) + 1
        BatchJob.objects.filter(pk=job.pk).update(total=total, done=0)
        for draft in to_issue:
            if draft.lines.exists():
                statement_issue(draft, user=job.created_by)
            BatchJob.objects.filter(pk=job.pk).update(done=F("done") + 1)
        archive = build_archive(job)
        BatchJob.objects.filter(pk=job.pk).update(
            archive=archive, done=total, status=BatchJob.JobStatus.DONE, finished_at=timezone.now()
        )
    except Exception as error:  # the job records why it failed; the worker keeps running
        BatchJob.objects.filter(pk=job.pk).update(
            status=BatchJob.JobStatus.FAILED,
            error=f"{type(error).__name__} : {error}",
            finished_at=timezone.now(),
        )
        raise
    job.refresh_from_db()
    return job


def build_archive(job: BatchJob) -> bytes:
    """ZIP: one PDF per statement (the stored bytes of issued ones), a summary PDF, a CSV of
    every statement line with its imputations."""
    statements = list(current_statements(job.year))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for statement in statements:
            if statement.is_issued:
                name, content = f"{statement.number}.pdf", bytes(statement.pdf)
            else:
                name = f"PROJET-{statement.year}-{statement.convention.reference}-{statement.payer.siren}.pdf"
                content = render_statement_pdf(statement)
            archive.writestr(name, content)
            BatchJob.objects.filter(pk=job.pk).update(done=F("done") + 1)
        archive.writestr(f"recapitulatif-{job.year}.pdf", render_summary_pdf(job.year, statements))
        archive.writestr(f"lignes-{job.year}.csv", statement_lines_csv(statements))
    return buffer.getvalue()


def summary_context(year: int, statements, organisation=None) -> dict:
    """Totals of a list of statements; for one organisation, what it is owed and what it owes."""
    context = {
        "year": year,
        "statements": statements,
        "total": sum((s.total for s in statements), Decimal("0.00")),
        "balance": sum((s.balance for s in statements), Decimal("0.00")),
    }
    if organisation is not None:
        receivable = sum(
            (s.total for s in statements if s.payee_id == organisation.pk), Decimal("0.00")
        )
        payable = sum(
            (s.total for s in statements if s.payer_id == organisation.pk), Decimal("0.00")
        )
        context.update(
            organisation=organisation,
            receivable=receivable,
            payable=payable,
            net=receivable - payable,
        )
    return context


def render_summary_pdf(year: int, statements) -> bytes:
    return render_pdf("costing/statement_summary_pdf.html", summary_context(year, statements))


def statement_lines_csv(statements) -> str:
    from import_export.formats.base_formats import CSV

    from costing.resources import StatementLineResource

    lines = (
        StatementLine.objects.filter(statement__in=statements)
        .select_related("statement__convention", "statement__payer", "statement__payee", "service")
        .order_by(
            "statement__number",
            "statement__convention__reference",
            "statement__payer__siren",
            "position",
        )
    )
    dataset = StatementLineResource().export(queryset=lines)
    return CSV().export_data(dataset)
