"""États annuels de remboursement: prepared as drafts from the engine, reviewed by the communes,
issued (numbered without gaps, frozen, PDF stored with its SHA-256), corrected by a new
statement that cites the one it cancels."""

import hashlib
import json
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import (
    Exists,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    prefetch_related_objects,
)
from django.utils import timezone
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conventions.models import (
    Convention,
    ConventionKind,
    Deliberation,
    SettlementMode,
    Status,
    Vote,
)
from conventions.services.in_force import applicable_terms, coverage
from costing import engine, notifications, services
from costing.exports import line_as_dict, settlement_as_dict
from costing.models import (
    AccountMapping,
    BalanceChannel,
    BatchJob,
    FlowDirection,
    FlowType,
    Side,
    Statement,
    StatementCounter,
    StatementLine,
    StatementRemark,
    StatementStatus,
    UsageRecord,
    UsageSource,
)
from costing.money import ZERO
from mutualisation.database import is_busy
from mutualisation.documents import join_with_page_numbers, render_pdf
from mutualisation.french import of
from mutualisation.models import DEFAULT_STATEMENT_PREFIX, Organisation, numbering_prefix
from mutualisation.rules import scope_of
from mutualisation.services import locked_counter, next_in_sequence

# 2: the document a comptable public and a préfecture accept (recours, convention and its
# deliberations, forecast, unit cost version, acomptes' call dates, the creditor's seat, court and
# comptable). Older snapshots lack these keys and still render.
SNAPSHOT_VERSION = 2

# Beyond this many recours, the list goes to an annex at the end of the état.
RECOURS_INLINE_MAX = 25


class StatementRefused(Exception):
    """An action refused on a statement; ``reasons`` are French sentences."""

    def __init__(self, reasons):
        self.reasons = list(reasons)
        super().__init__("; ".join(self.reasons))


class AlreadyIssued(StatementRefused):
    """The draft was issued meanwhile: by someone else, or by another batch."""


class BatchRefused(StatementRefused):
    """A batch of the year is already pending or running (``job``)."""

    def __init__(self, job: BatchJob):
        self.job = job
        who = job.created_by.get_full_name() or job.created_by.get_username()
        super().__init__(
            [
                _(
                    "Un traitement de l'exercice %(year)s est déjà en cours, lancé par %(who)s "
                    "à %(time)s : attendez qu'il se termine avant d'en lancer un autre."
                )
                % {
                    "year": job.year,
                    "who": who,
                    "time": timezone.localtime(job.created_at).strftime("%H:%M"),
                }
            ]
        )


def review_days(territory=None) -> int:
    """Days a debtor has to read a draft: the territory's own setting, else the platform's."""
    if territory is not None and territory.statement_review_days is not None:
        return territory.statement_review_days
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


def ac_accounts(table: dict) -> tuple[AccountMapping | None, AccountMapping | None]:
    """(EPCI's account, commune's account) of the attribution de compensation, on which what is
    imputed on the AC is booked (reference data, §4 of the domain brief: 739211 / 73211)."""
    return (
        table.get((FlowType.COMPENSATION, FlowDirection.EPCI_PROVIDES, Side.PROVIDER)),
        table.get((FlowType.COMPENSATION, FlowDirection.EPCI_PROVIDES, Side.BENEFICIARY)),
    )


def account_dict(mapping: AccountMapping | None) -> dict | None:
    return {"account": mapping.account, "label": mapping.label} if mapping else None


# --- drafts ------------------------------------------------------------------------------------


def organisation_snapshot(org: Organisation) -> dict:
    return {
        "name": org.name,
        "siren": org.siren,
        "kind": org.get_kind_display(),
        "is_epci": org.is_epci,
        "representative_title": org.representative_title,
        "representative_name": org.representative_name,
        "representative_gender": org.representative_gender,
        "seat": org.seat,
        "administrative_court": org.administrative_court,
        "public_accountant": org.public_accountant,
    }


def convention_snapshot(convention, deliberations) -> dict:
    """The convention as the état cites it: reference, type (its legal basis), signature and the
    deliberations of the assemblies that approved it (organisation, number, date)."""
    return {
        "reference": convention.reference,
        "title": convention.title,
        "kind": convention.get_kind_display(),
        "kind_code": convention.kind,
        "legal_basis": list(convention.legal_basis),
        "signature_date": convention.signature_date.isoformat()
        if convention.signature_date
        else None,
        "deliberations": [
            {
                "organisation": d.organisation.name,
                "assembly": d.assembly,
                "number": d.number,
                "date": d.date.isoformat(),
            }
            for d in deliberations
        ],
    }


def approving_deliberations(conventions) -> dict:
    """Convention id → the adopted deliberations approving the convention itself, by date."""
    found = defaultdict(list)
    for deliberation in (
        Deliberation.objects.filter(
            convention__in=conventions, amendment__isnull=True, vote=Vote.ADOPTED
        )
        .select_related("organisation")
        .order_by("date", "organisation__name", "number")
    ):
        found[deliberation.convention_id].append(deliberation)
    return found


def forecast_units(convention, payer_id: int, year: int, data) -> dict:
    """Service code → the units the convention forecasts for the payer in the year (D5211-16:
    « une prévision d'utilisation du service … exprimée en unités de fonctionnement »), read
    from the year's computation (``data``: services.YearData)."""
    terms = data.terms(convention)
    span = coverage(convention, year, terms)
    if span is None:
        return {}
    lines = {line.pk: line for line in data.lines(convention)}
    return {
        lines[f.service_id].service.code: str(f.units)
        for f in services.year_forecasts(applicable_terms(convention, span[0], terms), data)
        if f.year == year and f.beneficiary_id == payer_id and f.service_id in lines and f.units
    }


def recours_of(line, records, first: date | None) -> list[dict]:
    """The usage records a line counts (the engine's rule: the payer's records of the service
    dated within the line's period, a record of the starting month counting from the start)."""
    chosen = [
        r
        for r in records
        if r.service.code == line.service
        and (first is None or r.period_end >= first)
        and line.period.contains(max(r.period_start, first) if first else r.period_start)
    ]
    return [
        {
            "period_start": r.period_start.isoformat(),
            "period_end": r.period_end.isoformat(),
            "reference": r.reference,
            "weight": r.weight.label if r.weight_id else "",
            "quantity": str(r.quantity),
            "units": str(r.units),
            "adjustment": r.source == UsageSource.ADJUSTMENT,
        }
        for r in sorted(chosen, key=lambda r: (r.period_start, r.reference, r.pk))
    ]


def instalments_snapshot(called: list, instalments) -> list[dict]:
    """The acomptes called, as the engine settled them, with when each was called and paid."""
    by_rank = {i.rank: i for i in instalments}
    result = []
    for item in called:
        recorded = by_rank.get(item["rank"])
        result.append(
            {
                **item,
                "called_on": timezone.localtime(recorded.called_at).date().isoformat()
                if recorded
                else None,
                "paid_on": recorded.paid_on.isoformat() if recorded and recorded.paid_on else None,
            }
        )
    return result


def notification_flags(unit_cost, deadline: date) -> dict:
    """Whether the unit cost was notified after the convention's deadline (D5211-16: before the
    budget adoption date; three months after signature in its year), with the deadline."""
    late = bool(
        unit_cost is not None
        and unit_cost.notified_on is not None
        and unit_cost.notified_on > deadline
    )
    return {
        "unit_cost_late": late,
        "unit_cost_notification_deadline": deadline.isoformat() if late else None,
    }


def snapshot_line(line, unit_costs: dict, deadline: date, details: dict) -> dict:
    unit_cost = unit_costs.get(line.service)
    data = line_as_dict(line)
    for key in ("convention", "payer", "payee"):
        del data[key]  # the statement says them once
    data["recours"] = recours_of(line, details["records"], details["first"])
    data["forecast_units"] = (
        details["forecasts"].get(line.service) if line.unit_cost is not None else None
    )
    data["unit_cost_version"] = (
        unit_cost.version if unit_cost is not None and line.unit_cost is not None else None
    )
    data["unit_cost_notified_on"] = (
        unit_cost.notified_on.isoformat()
        if unit_cost is not None and unit_cost.notified_on and line.unit_cost is not None
        else None
    )
    if line.unit_cost is not None:
        data.update(notification_flags(unit_cost, deadline))
    return data


def build_snapshot(
    *, convention, payer, payee, year, lines, settlement, unit_costs, table, details=None
) -> dict:
    """What the état prints, frozen at issue. ``details``: the payer's usage records of the year
    (``records``), the first day the convention covers (``first``), its forecast units by service
    (``forecasts``), its recorded acomptes (``instalments``) and the approving deliberations."""
    details = {
        "records": [],
        "first": None,
        "forecasts": {},
        "instalments": [],
        "deliberations": [],
        **(details or {}),
    }
    revenue, expense = accounts_for(payee, table)
    ac_epci, ac_commune = ac_accounts(table)
    settled = settlement_as_dict(settlement)
    on_service = (
        ZERO
        if settlement.settlement_mode == engine.SETTLEMENT_AC
        else settlement.actual - settlement.ac_deduction
    )
    return {
        "version": SNAPSHOT_VERSION,
        "year": year,
        "convention": convention_snapshot(convention, details["deliberations"]),
        "payer": organisation_snapshot(payer),
        "payee": organisation_snapshot(payee),
        "accounts": {
            "nomenclature": (revenue or expense).nomenclature if (revenue or expense) else "",
            "revenue": account_dict(revenue),
            "expense": account_dict(expense),
            "ac_epci": account_dict(ac_epci),
            "ac_commune": account_dict(ac_commune),
        },
        "lines": [
            snapshot_line(line, unit_costs, services.convention_deadline(convention, year), details)
            for line in lines
        ],
        "total": str(sum((line.amount for line in lines), Decimal("0.00"))),
        "settlement": {
            **settled,
            # what the état annuel lists: the acomptes called, their dates and titre numbers
            "instalments": instalments_snapshot(
                settled["instalments_called"], details["instalments"]
            ),
            "mode_label": str(SettlementMode(settlement.settlement_mode).label),
            "channel_label": str(BalanceChannel(settlement.channel).label),
            # What is booked where (domain brief §4): the AC imputation on the AC accounts; on
            # the service-reimbursement accounts only what is settled by titre or mandat
            # (acomptes and balance); AC only, the balance waits for next year's AC.
            "on_ac_accounts": str(settlement.ac_deduction),
            "on_service_accounts": str(on_service),
            "service_amount": str(abs(on_service)),  # what the pieces carry: never negative
            "service_refund": on_service < 0,  # a mandat or réduction de titre, not a titre
            "carried_to_next_ac": str(
                settlement.balance if settlement.settlement_mode == engine.SETTLEMENT_AC else ZERO
            ),
        },
    }


def draft_for(settlement, convention, organisations, issued: set, lines, year, drafts: dict):
    """The payer's draft statement for the year (``drafts``: the year's drafts by convention and
    payer id, loaded once), created when there is something to state; None when the pair is
    already issued (and not under correction) or has nothing."""
    draft = drafts.get((convention.pk, settlement.payer.id))
    key = (settlement.convention, settlement.payer.id)
    nothing = not lines and settlement.forecast == 0 and not settlement.called
    if draft is None and (key in issued or nothing):
        return None  # an existing draft is brought to zero instead
    return draft or Statement(
        convention=convention,
        year=year,
        payer=organisations[settlement.payer.id],
        payee=organisations[settlement.payee.id],
        review_until=timezone.localdate() + timedelta(days=review_days(convention.territory)),
    )


def approved_figures(draft: Statement) -> tuple:
    """What the debtor sees and approves on a draft."""
    return (
        draft.snapshot.get("lines", []),
        draft.total,
        draft.ac_deduction,
        draft.instalments_called,
        draft.balance,
        draft.balance_channel,
    )


DRAFT_FIELDS = [
    "snapshot",
    "total",
    "settlement_mode",
    "ac_deduction",
    "instalments_called",
    "balance",
    "balance_channel",
    "computed_at",
    "approved_at",
    "approved_by",
]


def refresh_draft(draft: Statement, *, snapshot: dict, settlement, context) -> bool:
    """Set the recomputed figures on the draft (in memory; statements_prepare writes every draft
    at once). The debtor approved what the draft said: any change of its lines, total, AC
    imputation, acomptes, balance or channel voids the approval. True when the debtor has
    something new to read: a new draft, or one whose figures changed."""
    total = Decimal(snapshot["total"])
    changed = draft.pk is None or approved_figures(draft) != (
        snapshot["lines"],
        total,
        settlement.ac_deduction,
        settlement.instalments_total,
        settlement.balance,
        settlement.channel,
    )
    if draft.pk and changed:
        draft.approved_at, draft.approved_by = None, None
    draft.snapshot = snapshot
    draft.total = total
    draft.settlement_mode = settlement.settlement_mode
    draft.ac_deduction = settlement.ac_deduction
    draft.instalments_called = settlement.instalments_total
    draft.balance = settlement.balance
    draft.balance_channel = settlement.channel
    draft.computed_at = context["now"]
    return changed


def draft_lines(draft: Statement, lines, context) -> list[StatementLine]:
    """The draft's statement lines (unsaved), from the engine's lines."""
    revenue, expense = accounts_for(draft.payee, context["table"])
    unit_costs = context["unit_costs"]
    return [
        StatementLine(
            statement=draft,
            position=index,
            service=context["services"][line.service],
            period_start=line.period.start,
            period_end=line.period.end,
            basis=line.basis,
            units=line.units,
            unit_cost=line.unit_cost,
            unit_cost_notified_on=unit_costs[line.service].notified_on
            if line.service in unit_costs and line.unit_cost is not None
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
    ]


def write_drafts(prepared: list[tuple[Statement, list]], context) -> list[Statement]:
    """Store the recomputed drafts and their lines in a number of queries that does not depend
    on how many there are: the new drafts inserted at once, the others updated at once, their
    old lines deleted at once and the new lines inserted at once."""
    new = [draft for draft, _lines in prepared if draft.pk is None]
    existing = [draft for draft, _lines in prepared if draft.pk is not None]
    if new:
        Statement.objects.bulk_create(new, batch_size=500)
    if existing:
        Statement.objects.bulk_update(existing, DRAFT_FIELDS, batch_size=500)
        StatementLine.objects.filter(statement__in=[d.pk for d in existing]).delete()
    StatementLine.objects.bulk_create(
        [line for draft, lines in prepared for line in draft_lines(draft, lines, context)],
        batch_size=1000,
    )
    return [draft for draft, _lines in prepared]


@transaction.atomic
def statements_prepare(
    year: int, conventions=None, payer_id=None, *, notify: bool = False
) -> list[Statement]:
    """Create or refresh the draft statements of the year (one per convention and payer) from the
    engine; only ``payer_id``'s when given. Pairs already issued (and not being corrected) are
    left alone. ``notify``: finance's « Calculer les projets » (not the recomputation that
    issuing or correcting does), whose communes' readers are told by e-mail once it commits, of
    their new drafts and of those whose figures changed (not again of a draft that did not)."""
    lock_year(year, convention_territories(conventions))
    computed = services.compute_reimbursements(year, conventions)
    result = computed.result
    unit_costs = {u.service.code: u for u in computed.data.unit_costs.values()}
    context = {
        "now": timezone.now(),
        "table": account_table(),
        "unit_costs": unit_costs,
        "services": {
            line.service.code: line.service
            for c in computed.data.conventions
            for line in computed.data.lines(c)
        },
    }
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
    drafts = {
        (d.convention_id, d.payer_id): d
        for d in Statement.objects.filter(year=year, status=StatementStatus.DRAFT).select_related(
            "payer", "payee"
        )
    }
    deliberations = approving_deliberations(computed.data.conventions)
    prepared, news = [], []
    for settlement in result.settlements:
        if payer_id is not None and settlement.payer.id != payer_id:
            continue
        lines = by_pair.get((settlement.convention, settlement.payer.id), [])
        convention = computed.conventions[settlement.convention]
        draft = draft_for(settlement, convention, organisations, issued, lines, year, drafts)
        if draft is None:
            continue
        span = coverage(convention, year, computed.data.terms(convention))
        details = {
            "records": [
                r
                for r in computed.data.usages.get(convention.pk, [])
                if r.beneficiary_id == settlement.payer.id
            ],
            "first": span[0] if span else None,
            "forecasts": forecast_units(convention, settlement.payer.id, year, computed.data),
            "instalments": computed.data.called.get((convention.pk, settlement.payer.id), []),
            "deliberations": deliberations.get(convention.pk, []),
        }
        snapshot = build_snapshot(
            convention=convention,
            payer=draft.payer,
            payee=draft.payee,
            year=year,
            lines=lines,
            settlement=settlement,
            unit_costs=unit_costs,
            table=context["table"],
            details=details,
        )
        if refresh_draft(draft, snapshot=snapshot, settlement=settlement, context=context):
            news.append(draft)
        prepared.append((draft, lines))
    drafts = write_drafts(prepared, context)
    if notify:  # a commune's readers hear of a draft when it is new or its figures changed
        notifications.drafts_ready([draft.pk for draft in news])
    return drafts


# --- issuing -----------------------------------------------------------------------------------


def lock_year(year: int, territories=None) -> None:
    """Lock the year of ``territories`` (EPCIs or their ids; every territory when None) until
    the transaction ends: the row of each one's statement counter of the year (each territory
    numbers with its own prefix, EA for the one without), in the prefixes' order. Preparing and issuing a year's
    statements, calling its acomptes and writing its usage take this lock first, so within a
    territory they run one after the other (no duplicate drafts, no gaps in numbers, no
    deadlock), while other territories work on theirs."""
    for prefix in sorted(year_lock_prefixes(territories)):
        locked_counter(StatementCounter, prefix=prefix, year=year)


def year_lock_prefixes(territories) -> set[str]:
    """The statement prefixes whose counter rows lock the year of ``territories``."""
    prefixes = (
        Organisation.objects.epcis()
        .annotate(prefix=numbering_prefix("statement_prefix"))
        .values_list("prefix", flat=True)
    )
    if territories is None:
        return {DEFAULT_STATEMENT_PREFIX, *prefixes}
    ids = {getattr(territory, "pk", territory) for territory in territories}
    return set(prefixes.filter(pk__in=ids))


def convention_territories(conventions) -> list | None:
    """The territories (ids) of ``conventions`` (a queryset or a list; None: every one)."""
    if conventions is None:
        return None
    if isinstance(conventions, QuerySet):
        return list(conventions.order_by().values_list("territory_id", flat=True).distinct())
    return list({c.territory_id for c in conventions})


def statement_prefix(territory) -> str:
    """The prefix of ``territory``'s statement numbers: its own, or EA for the one EPCI of the
    deployment that has none (Organisation's constraints)."""
    return territory.effective_statement_prefix if territory else DEFAULT_STATEMENT_PREFIX


def last_number_given(territory, prefix: str) -> str | None:
    """The last statement number ``territory`` was given with ``prefix`` (None: none yet;
    drafts carry no number)."""
    return (
        Statement.objects.filter(convention__territory=territory, number__startswith=f"{prefix}-")
        .order_by("-issued_at", "-pk")
        .values_list("number", flat=True)
        .first()
    )


def next_number(year: int, prefix: str = DEFAULT_STATEMENT_PREFIX) -> str:
    """<prefix>-<year>-<nnnn> (EA-2026-0001, or the territory's own prefix): consecutive within
    the territory and the year, without gaps, even when two people issue at once."""
    return f"{prefix}-{year}-{next_in_sequence(StatementCounter, prefix=prefix, year=year):04d}"


def iso_date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def recours_context(recours: list[dict]) -> list[dict]:
    return [
        {
            **r,
            "period_start": date.fromisoformat(r["period_start"]),
            "period_end": date.fromisoformat(r["period_end"]),
        }
        for r in recours
    ]


# What the balance means for the debtor, by its direction and channel (engine.CHANNELS).
BALANCE_DIRECTIONS = {
    ("TO_COLLECT", engine.CHANNEL_AC_NEXT_YEAR): gettext_lazy(
        "à payer par le débiteur, sur l'attribution de compensation de l'exercice suivant"
    ),
    ("TO_REFUND", engine.CHANNEL_AC_NEXT_YEAR): gettext_lazy(
        "à rembourser au débiteur, sur l'attribution de compensation de l'exercice suivant"
    ),
    ("TO_COLLECT", engine.CHANNEL_TITRE): gettext_lazy(
        "à payer par le débiteur, par titre de recettes"
    ),
    ("TO_REFUND", engine.CHANNEL_MANDAT): gettext_lazy(
        "à rembourser au débiteur, par mandat ou réduction de titre"
    ),
}


def balance_direction_label(balance: Decimal, channel: str) -> str:
    if balance == 0:
        return str(_("nul : rien à régler"))
    direction = "TO_COLLECT" if balance > 0 else "TO_REFUND"
    label = BALANCE_DIRECTIONS.get((direction, channel))
    if label is None:
        label = _("à payer par le débiteur") if balance > 0 else _("à rembourser au débiteur")
    return str(label)


def issued_on(statement: Statement) -> date | None:
    """The day the statement was issued (the date of its « Certifié exact »), as frozen."""
    frozen = statement.snapshot.get("issued_at")
    if frozen:
        return timezone.localtime(datetime.fromisoformat(frozen)).date()
    if statement.issued_at:
        return timezone.localtime(statement.issued_at).date()
    return None


def statement_context(statement: Statement) -> dict:
    """What the statement PDF shows, read from its snapshot (frozen once issued). Snapshots of
    version 1 lack the recours, deliberations, seat, court and comptable: they render without."""
    snapshot = statement.snapshot
    lines = [
        {
            **line,
            "period_start": date.fromisoformat(line["period_start"]),
            "period_end": date.fromisoformat(line["period_end"]),
            "unit_cost_notified_on": iso_date(line["unit_cost_notified_on"]),
            "unit_cost_notification_deadline": iso_date(
                line.get("unit_cost_notification_deadline")
            ),
            "recours": recours_context(line.get("recours") or []),
        }
        for line in snapshot.get("lines", [])
    ]
    recours_count = sum(len(line["recours"]) for line in lines)
    settlement = snapshot.get("settlement") or {}
    convention = snapshot.get("convention") or {}
    channel = settlement.get("channel") or statement.balance_channel or channel_of(statement)
    return {
        "statement": statement,
        "s": snapshot,
        "lines": lines,
        "number": statement.number,
        "draft": not statement.is_issued,
        "issued_on": issued_on(statement) if statement.is_issued else None,
        "cancels": statement.cancels,
        "keyed": any(line["unit_cost"] is None for line in lines),
        "instalments": [
            {
                **i,
                "due_date": date.fromisoformat(i["due_date"]),
                "called_on": iso_date(i.get("called_on")),
                "paid_on": iso_date(i.get("paid_on")),
            }
            for i in settlement.get("instalments", [])
        ],
        "correction": correction_context(statement),
        "recours_count": recours_count,
        "recours_in_annex": recours_count > RECOURS_INLINE_MAX,
        "signature_date": iso_date(convention.get("signature_date")),
        "deliberations": [
            {**d, "date": date.fromisoformat(d["date"])}
            for d in convention.get("deliberations", [])
        ],
        "kind_code": convention.get("kind_code", ""),
        "service_commun": convention.get("kind_code") == ConventionKind.SERVICE_COMMUN,
        "mise_a_disposition": convention.get("kind_code") == ConventionKind.MISE_A_DISPOSITION,
        "on_ac": settlement.get("settlement_mode")
        in (engine.SETTLEMENT_AC, engine.SETTLEMENT_MIXED),
        "balance_direction": balance_direction_label(statement.balance, channel),
        "leads_to_titre": channel == engine.CHANNEL_TITRE,
    }


def render_statement_pdf(statement: Statement) -> bytes:
    return render_pdf("costing/statement_pdf.html", statement_context(statement))


# --- guards on issuing ---------------------------------------------------------------------------


def covered_period_end(statement: Statement, facts: dict | None = None) -> date:
    """Last day the statement covers: the end of its last line, else the 31 December of its year
    or the earlier end of the convention."""
    span = coverage(statement.convention, statement.year)  # the same rule as billing
    covered = span[1] if span else date(statement.year, 12, 31)
    if facts is not None:
        last_line = facts["last_line"].get(statement.pk)
    else:
        last_line = statement.lines.aggregate(last=Max("period_end"))["last"]
    return max(covered, last_line) if last_line else covered


def refusal_facts(drafts: list[Statement], today: date) -> dict:
    """What issue_refusals reads from the database, for many drafts at once (a batch): their
    conventions' terms, the end of their last lines, the first usage dated after ``today`` of
    each convention and payer. A few queries, whatever the number of drafts."""
    prefetch_related_objects([d.convention for d in drafts], "terms__amendment", "termination")
    ids = [d.pk for d in drafts]
    future = (
        UsageRecord.objects.filter(
            convention_id__in={d.convention_id for d in drafts},
            beneficiary_id__in={d.payer_id for d in drafts},
            period_start__year__in={d.year for d in drafts},
            period_start__gt=today,
        )
        .values("convention_id", "beneficiary_id", "period_start__year")
        .annotate(first=Min("period_start"))
        .order_by()
    )
    open_remarks = defaultdict(list)
    for remark in (
        StatementRemark.objects.filter(statement_id__in=ids, resolved_at__isnull=True)
        .select_related("author")
        .order_by("created_at")
    ):
        open_remarks[remark.statement_id].append(remark)
    return {
        "today": today,
        "open_remarks": open_remarks,
        "last_line": dict(
            StatementLine.objects.filter(statement_id__in=ids)
            .values("statement_id")
            .annotate(last=Max("period_end"))
            .order_by()
            .values_list("statement_id", "last")
        ),
        "future": {
            (f["convention_id"], f["beneficiary_id"], f["period_start__year"]): f["first"]
            for f in future
        },
    }


def line_signature(statement: Statement) -> list[tuple]:
    return list(
        statement.lines.order_by("position").values_list(
            "service_id",
            "period_start",
            "period_end",
            "basis",
            "units",
            "unit_cost",
            "key_weight",
            "key_total",
            "shared_cost",
            "amount",
        )
    )


def changes_nothing(statement: Statement) -> bool:
    """A correcting draft whose lines, total and balance are those of the statement it cancels."""
    previous = statement.cancels
    return (
        previous is not None
        and statement.total == previous.total
        and statement.balance == previous.balance
        and line_signature(statement) == line_signature(previous)
    )


def issue_refusals(
    statement: Statement, today: date | None = None, facts: dict | None = None
) -> list[str]:
    """Every reason why the draft cannot be issued today (empty when it can), in French.
    ``facts``: refusal_facts of many drafts, loaded at once (a batch)."""
    today = facts["today"] if facts is not None else today or timezone.localdate()
    reasons = []
    # The titre the état supports rests on an enforceable convention (CGCT L2131-1, L2131-2):
    # « en vigueur » is the step that checks it (gates.enforceability_gaps).
    if statement.convention.status == Status.SIGNED:
        reasons.append(
            _(
                "La convention %(reference)s est signée mais pas encore exécutoire : un état, et "
                "le titre qu'il fonde, ne s'émet que sur une convention en vigueur. Enregistrez "
                "sa transmission au contrôle de légalité et sa notification, la transmission et "
                "la publication des délibérations, puis constatez son entrée en vigueur."
            )
            % {"reference": statement.convention.reference}
        )
    end = covered_period_end(statement, facts)
    if today <= end:
        reasons.append(
            _(
                "La période couverte par cet état s'achève le %(end)s : il ne peut être émis "
                "qu'à partir du %(next)s."
            )
            % {
                "end": end.strftime("%d/%m/%Y"),
                "next": (end + timedelta(days=1)).strftime("%d/%m/%Y"),
            }
        )
    if facts is not None:
        first_future = facts["future"].get(
            (statement.convention_id, statement.payer_id, statement.year)
        )
    else:
        future = (
            UsageRecord.objects.filter(
                convention_id=statement.convention_id,
                beneficiary_id=statement.payer_id,
                period_start__year=statement.year,
                period_start__gt=today,
            )
            .order_by("period_start")
            .first()
        )
        first_future = future.period_start if future is not None else None
    if first_future is not None:
        reasons.append(
            _(
                "Des recours sont datés après aujourd'hui (le premier le %(date)s) : un état ne "
                "porte pas sur des recours à venir."
            )
            % {"date": first_future.strftime("%d/%m/%Y")}
        )
    if statement.review_until and today <= statement.review_until and not statement.approved_at:
        reasons.append(
            _(
                "La commune peut formuler des remarques jusqu'au %(date)s : l'état ne peut être "
                "émis qu'après cette date, à moins que le débiteur n'approuve le projet."
            )
            % {"date": statement.review_until.strftime("%d/%m/%Y")}
        )
    # The commune's remarks are the contradictory part of the review: each one is answered and
    # resolved before the état (and the titre it supports) goes out (docs/statements.md).
    if facts is not None:
        open_remarks = facts["open_remarks"].get(statement.pk, [])
    else:
        open_remarks = statement.remarks.filter(resolved_at__isnull=True).select_related("author")
    reasons.extend(open_remarks_refusals(open_remarks))
    # D5211-16: the unit cost is « porté à la connaissance » of the beneficiaries; a statement
    # never bills at a unit cost (computed, corrected or provisional) that was not notified.
    unnotified = {}
    for line in statement.snapshot.get("lines", []):
        if line.get("unit_cost") is not None and not line.get("unit_cost_notified_on"):
            name = line.get("service_name", line.get("service"))
            unnotified.setdefault(name, bool(line.get("unit_cost_provisional")))
    for name, provisional in unnotified.items():
        reasons.append(
            (
                _(
                    "Le coût unitaire provisoire de « %(service)s » n'a jamais été notifié au "
                    "débiteur : notifiez-le avant d'émettre l'état."
                )
                if provisional
                else _(
                    "Le coût unitaire de « %(service)s » appliqué par cet état n'a pas été "
                    "notifié au débiteur (D5211-16) : notifiez-le avant d'émettre l'état."
                )
            )
            % {"service": name}
        )
    # A titre de recettes names the comptable public assignataire who takes it in charge and
    # the voies et délais de recours (CGCT L1617-5): the état printing it must know him.
    if channel_of(statement) == engine.CHANNEL_TITRE and not statement.payee.public_accountant:
        reasons.append(
            _(
                "Le comptable public assignataire %(of_payee)s n'est pas renseigné : le titre de "
                "recettes doit le nommer (L1617-5). Renseignez-le dans le référentiel des "
                "organisations."
            )
            % {"of_payee": of(statement.payee.name)}
        )
    if statement.cancels_id is not None and changes_nothing(statement):
        reasons.append(
            _(
                "La correction ne change rien : ses lignes, son total et son solde sont ceux de "
                "l'état n° %(number)s qu'elle annulerait. Corrigez d'abord l'état des recours ou "
                "le coût unitaire."
            )
            % {"number": statement.cancels.number}
        )
    return reasons


def correction_summary(statement: Statement) -> dict:
    """What a correcting statement changes: the cancelled statement's total and balance, and the
    differences (new minus cancelled), as strings for the snapshot."""
    previous = statement.cancels
    return {
        "cancels_number": previous.number,
        "previous_total": str(previous.total),
        "previous_balance": str(previous.balance),
        "difference_total": str(statement.total - previous.total),
        "difference_balance": str(statement.balance - previous.balance),
    }


def correction_context(statement: Statement) -> dict | None:
    """The frozen correction block of an issued statement, or the live one of a draft."""
    if statement.is_issued:
        return statement.snapshot.get("correction")
    if statement.cancels_id is not None:
        return correction_summary(statement)
    return None


@transaction.atomic
def statement_approve(statement: Statement, *, user) -> Statement:
    """The debtor approves the draft as it stands: it may then be issued before its review window
    closes. A recomputation that changes the total voids the approval (statements_prepare)."""
    lock_year(statement.year, [statement.convention.territory_id])  # after any recomputation
    statement = Statement.objects.select_for_update().get(pk=statement.pk)
    reasons = []
    if statement.is_issued:
        reasons.append(_("L'état est émis : il n'y a plus de projet à approuver."))
    elif statement.approved_at is not None:
        reasons.append(
            _("Ce projet est déjà approuvé (le %(date)s).")
            % {"date": timezone.localtime(statement.approved_at).strftime("%d/%m/%Y")}
        )
    if statement.payer_id not in scope_of(user).organisation_ids:
        reasons.append(_("Seul le débiteur peut approuver le projet de son état."))
    if reasons:
        raise StatementRefused(reasons)
    statement.approved_at = timezone.now()
    statement.approved_by = user
    statement.save(update_fields=["approved_at", "approved_by"])
    return statement


@transaction.atomic
def statement_issue(statement: Statement, *, user=None) -> Statement:
    """Issue a draft: recompute it, number it, freeze its snapshot and PDF (bytes + SHA-256)."""
    lock_year(statement.year, [statement.convention.territory_id])  # first, as preparing does
    statement = Statement.objects.select_for_update().get(pk=statement.pk)
    if statement.is_issued:
        raise AlreadyIssued(
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
    reasons = issue_refusals(statement)
    if reasons:
        raise StatementRefused(reasons)
    return write_issued(
        statement,
        number=next_number(statement.year, statement_prefix(statement.convention.territory)),
        user=user,
    )


def freeze(statement: Statement, *, number: str, issued_at: datetime, user=None) -> Statement:
    """The draft as issuing makes it (in memory): its number, its issue time and the snapshot
    that freezes them, ready to be rendered. A batch renders it so, in parallel chunks, before
    the number is taken (write_issued); the PDF is the same either way."""
    statement.number = number
    statement.issued_at = issued_at
    statement.issued_by = user if user is not None and user.is_authenticated else None
    statement.snapshot = {
        **statement.snapshot,
        "number": statement.number,
        "issued_at": statement.issued_at.isoformat(),
    }
    if statement.cancels_id is not None:
        statement.snapshot["correction"] = correction_summary(statement)
    statement.status = StatementStatus.ISSUED
    return statement


def write_issued(
    statement: Statement,
    *,
    number: str,
    user=None,
    issued_at: datetime | None = None,
    pdf: bytes | None = None,
) -> Statement:
    """Issue the (locked, checked) draft under ``number``, which the year's counter has just
    given: freeze it, store its PDF (``pdf`` when a batch rendered it already) and SHA-256."""
    freeze(statement, number=number, issued_at=issued_at or timezone.now(), user=user)
    pdf = pdf if pdf is not None else render_statement_pdf(statement)
    statement.pdf = pdf
    statement.pdf_sha256 = hashlib.sha256(pdf).hexdigest()
    statement.save()
    return statement


@transaction.atomic
def statement_correct(statement: Statement, *, reason: str) -> Statement:
    """Start the correction of an issued statement: a new draft that cites the one it cancels."""
    lock_year(statement.year, [statement.convention.territory_id])
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
        review_until=timezone.localdate()
        + timedelta(days=review_days(statement.convention.territory)),
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
    """The debtor commune's remark on its draft, within the review window; the territory's
    finance officers are told by e-mail once it is stored."""
    # Under the statement's row lock, as issuing: no remark slips in while the draft is issued.
    statement = Statement.objects.select_for_update().get(pk=statement.pk)
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
    remark = StatementRemark.objects.create(statement=statement, author=author, text=text.strip())
    notifications.remark_added(remark)
    return remark


@transaction.atomic
def remark_answer(remark: StatementRemark, *, user, answer: str, resolved: bool) -> StatementRemark:
    """Finance of the statement's territory answers a remark and marks it resolved, or leaves it
    (or puts it back) open. Every change is kept in the remark's history; the author is told by
    e-mail. An answer that changes nothing writes nothing. Refused on an issued statement:
    issuing needs every remark resolved, and a frozen statement's remarks stay as they were."""
    statement = Statement.objects.select_for_update().get(pk=remark.statement_id)
    remark = StatementRemark.objects.select_for_update().get(pk=remark.pk)
    answer = answer.strip()
    reasons = []
    if statement.is_issued:
        reasons.append(_("L'état est émis : ses remarques sont closes."))
    if not scope_of(user).works_on(statement.convention.territory_id):
        reasons.append(
            _("Seuls les agents des finances du territoire répondent aux remarques des communes.")
        )
    if not answer:
        reasons.append(_("Rédigez la réponse à la commune."))
    if reasons:
        raise StatementRefused(reasons)
    now = timezone.now()
    changed = False
    if answer != remark.answer:
        remark.answer, remark.answered_at, remark.answered_by = answer, now, user
        changed = True
    if resolved != remark.is_resolved:
        remark.resolved_at, remark.resolved_by = (now, user) if resolved else (None, None)
        changed = True
    if changed:
        remark._history_user = user
        remark.save()
        notifications.remark_answered(remark)
    return remark


def open_remarks_refusals(remarks) -> list[str]:
    """One reason per remark not resolved: who wrote it, when, and its first words."""
    return [
        _(
            "La remarque %(of_author)s du %(date)s n'est pas traitée : « %(text)s ». "
            "Répondez-y et marquez-la traitée avant d'émettre l'état."
        )
        % {
            "of_author": of(remark.author.get_full_name() or remark.author.get_username()),
            "date": timezone.localtime(remark.created_at).strftime("%d/%m/%Y"),
            "text": Truncator(remark.text).chars(120),
        }
        for remark in remarks
    ]


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


def current_statements(year: int, conventions=None):
    """The statements that stand for the year: issued and not cancelled, plus the drafts (but
    not a draft correction: the statement it would cancel still stands until it is issued);
    of ``conventions`` only when given. Without their stored PDF and snapshot, nor those of the
    statements they cancel: what lists them (a summary, an export, a batch's ZIP) prints their
    numbers and amounts, and a territory's year is thousands of them (``Statement.pdf`` is read
    one by one where a PDF is served)."""
    statements = Statement.objects.filter(year=year)
    if conventions is not None:
        statements = statements.filter(convention__in=conventions)
    return (
        statements.exclude(
            status=StatementStatus.ISSUED, cancelled_by__status=StatementStatus.ISSUED
        )
        .exclude(status=StatementStatus.DRAFT, cancels__isnull=False)
        .select_related("convention", "payer", "payee", "cancels")
        .defer("pdf", "snapshot", "cancels__pdf", "cancels__snapshot")
        .order_by("status", "number", "convention__reference", "payer__siren")
    )


def batch_stale_minutes() -> int:
    return getattr(settings, "MUTUALIS_BATCH_STALE_MINUTES", 30)


def batch_in_progress(year: int, territory=None) -> BatchJob | None:
    """The year's batch pending or running, if any, of ``territory`` (or covering every
    territory). One started more than MUTUALIS_BATCH_STALE_MINUTES ago no longer counts (its
    worker may have died)."""
    since = timezone.now() - timedelta(minutes=batch_stale_minutes())
    jobs = BatchJob.objects.filter(
        year=year,
        status__in=[BatchJob.JobStatus.PENDING, BatchJob.JobStatus.RUNNING],
        created_at__gte=since,
    )
    if territory is not None:
        jobs = jobs.filter(Q(territory=territory) | Q(territory__isnull=True))
    return jobs.select_related("created_by").order_by("created_at").first()


@transaction.atomic
def batch_start(*, year: int, action: str, user, territory=None) -> BatchJob:
    """Record the job of ``territory``'s statements (every territory's when None: the
    platform's operator) and hand it to Celery once the transaction commits. Refused
    (BatchRefused) while a batch of the year is pending or running for it: a double click, or a
    colleague's batch."""
    from costing.tasks import run_statement_batch

    # two starts at once: the second sees the first's job
    lock_year(year, [territory] if territory is not None else None)
    running = batch_in_progress(year, territory)
    if running is not None:
        raise BatchRefused(running)
    job = BatchJob.objects.create(year=year, action=action, created_by=user, territory=territory)
    transaction.on_commit(lambda: run_statement_batch.delay(job.pk))
    return job


def batch_chunk_size() -> int:
    """How many drafts one chunk of a batch renders (each chunk is a Celery task)."""
    return getattr(settings, "MUTUALIS_BATCH_CHUNK_SIZE", 10)


def rendering_digest(statement: Statement) -> str:
    """What a statement's PDF depends on besides its number and issue time: a part rendered for
    it is used only if the statement still says exactly this."""
    printed = {
        "snapshot": statement.snapshot,
        "figures": [
            str(statement.total),
            str(statement.balance),
            str(statement.ac_deduction),
            str(statement.instalments_called),
            statement.balance_channel,
            statement.correction_reason,
            statement.cancels_id,
        ],
    }
    encoded = json.dumps(printed, sort_keys=True, cls=DjangoJSONEncoder).encode()
    return hashlib.sha256(encoded).hexdigest()


def part_name(job: BatchJob, statement_id: int) -> str:
    return f"batches/parts/{job.pk}/{statement_id}.pdf"


def batch_conventions(job: BatchJob):
    """The conventions a batch covers: its territory's (every one's when it has none)."""
    if job.territory_id is None:
        return Convention.objects.all()
    return Convention.objects.filter(territory_id=job.territory_id)


def batch_territories(job: BatchJob) -> list | None:
    return [job.territory_id] if job.territory_id is not None else None


def drafts_to_issue(year: int, conventions=None):
    """The year's drafts a batch issues, in the order they take their numbers: by convention,
    then payer (a draft without any line is left as it is)."""
    drafts = Statement.objects.filter(year=year, status=StatementStatus.DRAFT)
    if conventions is not None:
        drafts = drafts.filter(convention__in=conventions)
    return (
        drafts.filter(Exists(StatementLine.objects.filter(statement=OuterRef("pk"))))
        .select_related("convention__territory", "payer", "payee", "cancels")
        .defer("pdf", "cancels__pdf")  # drafts have none; the cancelled one's is not read
        .order_by("convention__reference", "payer__siren", "pk")
    )


def skipped_label(statement: Statement, reasons) -> str:
    return f"{statement.convention.reference} — {statement.payer.name} : " + " ".join(reasons)


def batch_failed(job_id: int, error: Exception) -> None:
    """Record why the batch failed, in French; its parts are removed."""
    BatchJob.objects.filter(pk=job_id).update(
        status=BatchJob.JobStatus.FAILED,
        error=_(
            "la base de données est restée occupée par une autre opération ; relancez le "
            "traitement."
        )
        if is_busy(error)
        else _("%(error)s (%(kind)s) ; relancez le traitement.")
        % {"error": error, "kind": type(error).__name__},
        finished_at=timezone.now(),
    )
    remove_parts(BatchJob(pk=job_id))


def batch_plan(job_id: int) -> BatchJob:
    """First step of a batch, under the year's lock: prepare the drafts (once for the whole
    batch), choose the drafts to issue and the number each will take (the counter's next ones,
    in a fixed order), and split the rendering into chunks. Nothing is numbered yet: a batch
    that fails leaves no gap."""
    job = BatchJob.objects.get(pk=job_id)
    try:
        BatchJob.objects.filter(pk=job.pk).update(status=BatchJob.JobStatus.RUNNING)
        conventions = batch_conventions(job)
        with transaction.atomic():
            lock_year(job.year, batch_territories(job))
            statements_prepare(job.year, conventions)
            issued_at = timezone.now()
            to_issue, skipped = [], []
            if job.action == BatchJob.Action.ISSUE_AND_EXPORT:
                drafts = list(drafts_to_issue(job.year, conventions))
                facts = refusal_facts(drafts, timezone.localdate())
                for draft in drafts:
                    reasons = issue_refusals(draft, facts=facts)
                    if reasons:
                        skipped.append(skipped_label(draft, reasons))
                    else:
                        to_issue.append(draft)
            numbers = planned_numbers(job.year, to_issue)
            # "counts": the draft is one of the statements the ZIP holds (a draft correction
            # is rendered, but the statement it would cancel stands in its place)
            items = [
                {
                    "id": d.pk,
                    "number": numbers.get(d.pk),
                    "digest": rendering_digest(d),
                    "counts": d.cancels_id is None,
                }
                for d in Statement.objects.filter(
                    year=job.year, status=StatementStatus.DRAFT, convention__in=conventions
                )
                .select_related("cancels")
                .defer("pdf", "cancels__pdf", "cancels__snapshot")
                .order_by("convention__reference", "payer__siren", "pk")
            ]
        size = batch_chunk_size()
        chunks = [items[i : i + size] for i in range(0, len(items), size)] or [[]]
        summary = summary_plan(job.year, conventions, numbers)
        job.plan = {
            "issued_at": issued_at.isoformat(),
            "issue": [d.pk for d in to_issue],
            "skipped": skipped,
            "chunks": chunks,
            "summary": summary,
        }
        # the drafts' chunks, then the summary's parts: every worker takes a share of both
        job.chunks_total = len(chunks) + len(summary["parts"])
        # The progress counts statements, each once: those of the ZIP; an issued one's PDF is
        # ready already, a draft's once its chunk has rendered it. (Not a step per PDF rendered
        # plus one per PDF written plus the summary: 13 statements read « 26 sur 26 ».)
        current = current_statements(job.year, conventions).order_by()
        job.chunks_done = []
        job.total = current.count()
        job.done = current.filter(status=StatementStatus.ISSUED).count()
        job.save(update_fields=["plan", "chunks_total", "chunks_done", "done", "total"])
    except Exception as error:  # the job records why it failed; the worker keeps running
        batch_failed(job.pk, error)
        raise
    return job


def planned_numbers(year: int, drafts) -> dict:
    """The number each draft will take, in order: the next ones of its territory's counter
    (read under the year's lock, not advanced)."""
    last = dict(StatementCounter.objects.filter(year=year).values_list("prefix", "last_number"))
    numbers = {}
    for draft in drafts:
        prefix = statement_prefix(draft.convention.territory)
        last[prefix] = last.get(prefix, 0) + 1
        numbers[draft.pk] = f"{prefix}-{year}-{last[prefix]:04d}"
    return numbers


def batch_render_chunk(job_id: int, index: int) -> bool:
    """Render one chunk of the batch's drafts (as issued under their planned number, or as
    drafts) to files, in parallel with the other chunks. True when it was the last chunk to
    finish: the caller then assembles the batch (batch_finish). Running it twice is harmless."""
    job = BatchJob.objects.get(pk=job_id)
    if job.status != BatchJob.JobStatus.RUNNING:
        return False  # failed meanwhile, or already assembled
    try:
        if index >= len(job.plan["chunks"]):
            batch_render_summary_part(job, index - len(job.plan["chunks"]))
            return chunk_done(job_id, index)
        items = job.plan["chunks"][index]
        issued_at = datetime.fromisoformat(job.plan["issued_at"])
        found = (
            Statement.objects.select_related("convention", "payer", "payee", "cancels")
            .defer("pdf", "cancels__pdf")
            .in_bulk([item["id"] for item in items])
        )
        for item in items:
            statement = found.get(item["id"])
            if statement is None or statement.is_issued:
                continue  # issued or removed meanwhile: assembling deals with it
            if rendering_digest(statement) != item["digest"]:
                continue  # recomputed meanwhile: assembling renders it
            if item["number"]:
                freeze(statement, number=item["number"], issued_at=issued_at, user=job.created_by)
            name = part_name(job, statement.pk)
            default_storage.delete(name)  # a chunk run twice writes the same file again
            default_storage.save(name, ContentFile(render_statement_pdf(statement)))
        # a chunk delivered twice must not count its drafts twice: counted with the chunk
        return chunk_done(job_id, index, sum(1 for item in items if item.get("counts", True)))
    except Exception as error:
        batch_failed(job_id, error)
        raise


def chunk_done(job_id: int, index: int, statements: int = 0) -> bool:
    """Count the chunk as done, and the ``statements`` it rendered, once; True when it was the
    last."""
    with transaction.atomic():
        job = BatchJob.objects.select_for_update().get(pk=job_id)
        if job.status != BatchJob.JobStatus.RUNNING or index in job.chunks_done:
            return False
        job.chunks_done = [*job.chunks_done, index]
        job.done = min(job.total, job.done + statements)
        job.save(update_fields=["chunks_done", "done"])
        return len(job.chunks_done) == job.chunks_total


def stored_bytes(name: str) -> bytes | None:
    """A part a chunk wrote to the storage, or None when there is none."""
    if not default_storage.exists(name):
        return None
    with default_storage.open(name, "rb") as part:
        return part.read()


def read_part(job: BatchJob, statement_id: int) -> bytes | None:
    return stored_bytes(part_name(job, statement_id))


def remove_parts(job: BatchJob) -> None:
    folder = f"batches/parts/{job.pk}"
    try:
        _folders, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        default_storage.delete(f"{folder}/{name}")


def issue_planned(job: BatchJob) -> tuple[int, list[str]]:
    """Issue the batch's drafts under the year's lock, recomputed once for all: each takes the
    counter's next number, with the PDF its chunk rendered when the number and the figures are
    those planned (else it is rendered now). Returns how many it issued, and why some were not
    issued."""
    issued = 0
    skipped = list(job.plan.get("skipped", []))
    issued_at = datetime.fromisoformat(job.plan["issued_at"])
    with transaction.atomic():
        lock_year(job.year, batch_territories(job))
        statements_prepare(job.year, batch_conventions(job))
        planned = {item["id"]: item for chunk in job.plan["chunks"] for item in chunk}
        drafts = (
            Statement.objects.select_for_update(of=("self",))
            .select_related("convention__territory", "payer", "payee", "cancels")
            .in_bulk(job.plan["issue"])
        )
        facts = refusal_facts(list(drafts.values()), timezone.localdate())
        for statement_id in job.plan["issue"]:
            statement = drafts.get(statement_id)
            if statement is None or statement.is_issued:
                continue  # issued by someone else, or by another batch of the year
            reasons = issue_refusals(statement, facts=facts)
            if reasons:
                skipped.append(skipped_label(statement, reasons))
                continue
            number = next_number(job.year, statement_prefix(statement.convention.territory))
            item = planned.get(statement_id, {})
            as_rendered = item.get("number") == number and item.get("digest") == rendering_digest(
                statement
            )
            pdf = read_part(job, statement_id) if as_rendered else None
            write_issued(
                statement,
                number=number,
                user=job.created_by,
                issued_at=issued_at if pdf is not None else None,
                pdf=pdf,
            )
            issued += 1
    return issued, skipped


def batch_finish(job_id: int) -> BatchJob:
    """Last step of a batch: issue the planned drafts, then write the ZIP to a file."""
    job = BatchJob.objects.select_related("created_by").get(pk=job_id)
    if job.status != BatchJob.JobStatus.RUNNING:
        return job  # failed, or already assembled (a task delivered twice)
    try:
        issued, skipped = (
            issue_planned(job) if job.action == BatchJob.Action.ISSUE_AND_EXPORT else (0, [])
        )
        build_archive(job)
        BatchJob.objects.filter(pk=job.pk).update(
            archive=job.archive.name,
            total=job.total,
            done=job.total,
            issued=issued,
            status=BatchJob.JobStatus.DONE,
            finished_at=timezone.now(),
            error="\n".join([_("Projets non émis :"), *skipped]) if skipped else "",
        )
    except Exception as error:  # the job records why it failed; the worker keeps running
        batch_failed(job.pk, error)
        raise
    remove_parts(job)
    job.refresh_from_db()
    return job


def batch_run(job_id: int) -> BatchJob:
    """Run a whole batch in this process: plan, every chunk, then assemble. Celery runs the
    same steps as separate tasks (costing.tasks), the chunks on every worker at once."""
    job = batch_plan(job_id)
    for index in range(job.chunks_total):
        batch_render_chunk(job_id, index)
    return batch_finish(job_id)


def build_archive(job: BatchJob) -> None:
    """ZIP, written to a temporary file then to the storage (never whole in memory): one PDF
    per statement (the stored bytes of issued ones, the rendered part of drafts), a summary
    PDF, a CSV of every statement line with its imputations."""
    statements = list(current_statements(job.year, batch_conventions(job)))
    planned = {item["id"]: item for chunk in job.plan.get("chunks", []) for item in chunk}
    size = batch_chunk_size()
    with tempfile.TemporaryFile() as spool:
        with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for start in range(0, len(statements), size):
                chunk = statements[start : start + size]
                pdfs = dict(
                    Statement.objects.filter(
                        pk__in=[s.pk for s in chunk if s.is_issued]
                    ).values_list("pk", "pdf")
                )
                drafts = (
                    Statement.objects.select_related("convention", "payer", "payee", "cancels")
                    .defer("pdf", "cancels__pdf")
                    .in_bulk([s.pk for s in chunk if not s.is_issued])
                )
                for statement in chunk:
                    if statement.is_issued:
                        name, content = f"{statement.number}.pdf", bytes(pdfs[statement.pk])
                    else:
                        name = f"PROJET-{statement.year}-{statement.convention.reference}-{statement.payer.siren}.pdf"
                        content = draft_pdf(job, drafts[statement.pk], planned.get(statement.pk))
                    # a PDF's streams are compressed already: deflating them again costs
                    # the assembly (one process) time for nothing
                    archive.writestr(name, content, compress_type=zipfile.ZIP_STORED)
            archive.writestr(
                f"recapitulatif-{job.year}.pdf",
                render_summary_pdf(job.year, statements, ready=stored_summary_part(job)),
                compress_type=zipfile.ZIP_STORED,
            )
            archive.writestr(f"lignes-{job.year}.csv", statement_lines_csv(statements))
        spool.seek(0)
        job.archive.save(f"etats-{job.year}-{job.pk}.zip", File(spool), save=False)
    job.total = len(statements)  # what the ZIP holds, should the year have changed meanwhile


def draft_pdf(job: BatchJob, statement: Statement, item: dict | None) -> bytes:
    """A draft's PDF: the part its chunk rendered if the draft still says the same, else now."""
    if item and item["number"] is None and item["digest"] == rendering_digest(statement):
        part = read_part(job, statement.pk)
        if part is not None:
            return part
    return render_statement_pdf(statement)


def summary_context(year: int, statements, organisation=None) -> dict:
    """Totals of a list of statements; for one organisation, what it is owed and what it owes."""
    context = {
        "year": year,
        "statements": statements,
        "count": len(statements),
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


def summary_part_rows() -> int:
    """Rows of the summary rendered at once: a year's summary is rendered part by part (by the
    batch's workers, in parallel) and the parts joined, so that its memory does not grow with
    the number of statements."""
    return getattr(settings, "MUTUALIS_SUMMARY_PART_ROWS", 250)


def summary_sorted(statements) -> list:
    """The summary's order: drafts, then issued statements by number; by convention and payer.
    Sorted here rather than by the database, so that a batch can plan the parts of a summary
    before its drafts are issued (summary_planned) and find them again when it assembles."""
    return sorted(
        statements,
        key=lambda s: (s.status, s.number or "", s.convention.reference, s.payer.siren),
    )


def summary_in_parts(statements: list) -> list[list]:
    rows = summary_part_rows()
    return [statements[i : i + rows] for i in range(0, len(statements), rows)] or [[]]


def summary_part(context: dict, part: list, index: int, parts: int) -> tuple[dict, str]:
    """The context of the ``index``-th of ``parts`` parts of a summary (its statements:
    ``part``) and the digest of what it prints: a part rendered ahead of time is used only if
    its digest is still the same."""
    part_context = {
        **context,
        "statements": part,
        "continued": index > 0,  # the title and the count are on the first part
        "continues": index < parts - 1,  # the totals on the last
        "in_parts": parts > 1,  # the pages are numbered when the parts are joined
    }
    printed = [
        context["year"],
        context["count"],
        str(context["total"]),
        str(context["balance"]),
        index,
        parts,
        [
            [s.number, s.convention.reference, s.payer.name, s.payee.name, str(s.total),
             str(s.balance)]
            for s in part
        ],
    ]  # fmt: skip
    digest = hashlib.sha256(json.dumps(printed).encode()).hexdigest()
    return part_context, digest


def render_summary_pdf(year: int, statements, *, ready=None, organisation=None) -> bytes:
    """The year's summary PDF (of ``organisation``'s statements: with what it is owed and owes).
    Beyond ``summary_part_rows()`` statements, rendered in parts (the title on the first, the
    totals on the last) joined into one document whose pages are numbered across the parts, so
    that its memory does not grow with the statements. ``ready(index, digest)`` gives a part
    already rendered (by a batch's chunk), or None."""
    statements = summary_sorted(statements)
    context = summary_context(year, statements, organisation)
    parts = summary_in_parts(statements)
    rendered = []
    for index, part in enumerate(parts):
        part_context, digest = summary_part(context, part, index, len(parts))
        content = ready(index, digest) if ready is not None else None
        if content is None:
            content = render_pdf("costing/statement_summary_pdf.html", part_context)
        rendered.append(content)
    if len(rendered) == 1:
        return rendered[0]
    return join_with_page_numbers(rendered)


def summary_planned(year: int, conventions, numbers: dict) -> list:
    """The statements the year's summary will list once the batch has issued the drafts in
    ``numbers`` (id → planned number), in its order: what current_statements will return then,
    computed now, so that the batch's workers render the summary in parts beside the
    statements. A guess checked at assembly (summary_part's digest), never trusted."""
    year_statements = list(
        Statement.objects.filter(year=year, convention__in=conventions)
        .select_related("convention", "payer", "payee")
        .only(
            "status", "number", "cancels_id", "total", "balance", "year",
            "convention__reference", "payer__name", "payer__siren", "payee__name",
        )
    )  # fmt: skip
    for statement in year_statements:
        if statement.pk in numbers:
            statement.number, statement.status = numbers[statement.pk], StatementStatus.ISSUED
    cancelled = {
        s.cancels_id
        for s in year_statements
        if s.cancels_id is not None and s.status == StatementStatus.ISSUED
    }
    return summary_sorted(
        s
        for s in year_statements
        if not (s.status == StatementStatus.ISSUED and s.pk in cancelled)
        and not (s.status == StatementStatus.DRAFT and s.cancels_id is not None)
    )


def summary_part_name(job: BatchJob, index: int, digest: str) -> str:
    return f"batches/parts/{job.pk}/summary-{index}-{digest}.pdf"


def summary_plan(year: int, conventions, numbers: dict) -> dict:
    """What the batch's chunks need to render the summary's parts: the ids of each part's
    statements and the totals printed on the first and last parts."""
    planned = summary_planned(year, conventions, numbers)
    context = summary_context(year, planned)
    return {
        "parts": [[s.pk for s in part] for part in summary_in_parts(planned)],
        "count": context["count"],
        "total": str(context["total"]),
        "balance": str(context["balance"]),
    }


def batch_render_summary_part(job: BatchJob, index: int) -> None:
    """Render one part of the batch's summary as planned (batch_plan), drafts to issue under
    their planned number, to a file named by the digest of what it prints."""
    planned = job.plan["summary"]
    ids = planned["parts"][index]
    numbers = {item["id"]: item["number"] for chunk in job.plan["chunks"] for item in chunk}
    found = (
        Statement.objects.select_related("convention", "payer", "payee")
        .defer("pdf", "snapshot")  # the summary prints numbers and amounts only
        .in_bulk(ids)
    )
    if len(found) != len(ids):
        return  # removed meanwhile: assembling renders this part
    part = [found[pk] for pk in ids]
    for statement in part:
        if numbers.get(statement.pk) and not statement.is_issued:
            statement.number = numbers[statement.pk]
            statement.status = StatementStatus.ISSUED
    context = {
        "year": job.year,
        "count": planned["count"],
        "total": Decimal(planned["total"]),
        "balance": Decimal(planned["balance"]),
    }
    part_context, digest = summary_part(context, part, index, len(planned["parts"]))
    name = summary_part_name(job, index, digest)
    default_storage.delete(name)  # a chunk run twice writes the same file again
    default_storage.save(
        name, ContentFile(render_pdf("costing/statement_summary_pdf.html", part_context))
    )


def stored_summary_part(job: BatchJob):
    """The parts of the summary that the batch's chunks rendered, for render_summary_pdf."""

    return lambda index, digest: stored_bytes(summary_part_name(job, index, digest))


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


# --- pieces for the finance chain (titres, mandats, AC) -----------------------------------------

# Each piece as the creditor books it, and its mirror on the debtor's side (domain brief §4:
# reciprocal flows match to the cent). Amounts are never negative: a refund is a mandat of the
# creditor (a titre of the debtor), the reversal of a processed piece is its annulation.
TITRE, MANDAT = engine.CHANNEL_TITRE, engine.CHANNEL_MANDAT  # the piece that settles a balance
CREDITOR_NATURES = {
    TITRE: gettext_lazy("Titre de recettes"),
    "REDUCTION_TITRE": gettext_lazy("Annulation / réduction de titre"),
    "MANDAT_REMBOURSEMENT": gettext_lazy("Mandat de remboursement au débiteur"),
    "ANNULATION_MANDAT_REMBOURSEMENT": gettext_lazy("Annulation du mandat de remboursement"),
    "IMPUTATION_AC": gettext_lazy("Imputation sur l'attribution de compensation"),
    "ANNULATION_IMPUTATION_AC": gettext_lazy("Annulation de l'imputation sur l'AC"),
}
DEBTOR_MIRROR = {
    TITRE: MANDAT,
    "REDUCTION_TITRE": "ANNULATION_MANDAT",
    "MANDAT_REMBOURSEMENT": "TITRE_REMBOURSEMENT",
    "ANNULATION_MANDAT_REMBOURSEMENT": "ANNULATION_TITRE_REMBOURSEMENT",
    "IMPUTATION_AC": "IMPUTATION_AC",
    "ANNULATION_IMPUTATION_AC": "ANNULATION_IMPUTATION_AC",
}
DEBTOR_NATURES = {
    MANDAT: gettext_lazy("Mandat de dépense"),
    "ANNULATION_MANDAT": gettext_lazy("Annulation / réduction de mandat"),
    "TITRE_REMBOURSEMENT": gettext_lazy("Titre de recettes du remboursement reçu"),
    "ANNULATION_TITRE_REMBOURSEMENT": gettext_lazy("Annulation du titre de remboursement"),
    "IMPUTATION_AC": gettext_lazy("Imputation sur l'attribution de compensation"),
    "ANNULATION_IMPUTATION_AC": gettext_lazy("Annulation de l'imputation sur l'AC"),
}
REVERSAL = {
    TITRE: "REDUCTION_TITRE",
    "MANDAT_REMBOURSEMENT": "ANNULATION_MANDAT_REMBOURSEMENT",
    "IMPUTATION_AC": "ANNULATION_IMPUTATION_AC",
}
AC_NATURES = ("IMPUTATION_AC", "ANNULATION_IMPUTATION_AC")


@dataclass(frozen=True)
class Piece:
    """One accounting piece produced by an issued statement."""

    statement: Statement  # the statement that produces it (its number is the reference)
    nature: str  # creditor side, a key of CREDITOR_NATURES
    amount: Decimal  # > 0
    cancels: str = ""  # the number of the statement whose piece this reverses

    @property
    def reference(self) -> str:
        return self.statement.number

    @property
    def debtor_nature(self) -> str:
        return DEBTOR_MIRROR[self.nature]

    @property
    def label(self) -> str:
        return str(CREDITOR_NATURES[self.nature])

    @property
    def debtor_label(self) -> str:
        return str(DEBTOR_NATURES[self.debtor_nature])

    @property
    def is_ac(self) -> bool:
        return self.nature in AC_NATURES


def channel_of(statement: Statement) -> str:
    """The balance's channel (stored since issue 8; derived from the balance before)."""
    if statement.balance_channel:
        return statement.balance_channel
    if statement.balance == 0:
        return engine.CHANNEL_NONE
    return engine.CHANNEL_TITRE if statement.balance > 0 else engine.CHANNEL_MANDAT


def own_pieces(statement: Statement) -> list[Piece]:
    """What an issued statement asks the comptable to book: the AC imputation, then the balance
    by titre (to collect) or mandat (to refund); nothing for a balance carried into next
    year's AC or a zero balance."""
    pieces = []
    if statement.ac_deduction > 0:
        pieces.append(Piece(statement, "IMPUTATION_AC", statement.ac_deduction))
    channel = channel_of(statement)
    if channel == engine.CHANNEL_TITRE:
        pieces.append(Piece(statement, TITRE, statement.balance))
    elif channel == engine.CHANNEL_MANDAT:
        pieces.append(Piece(statement, "MANDAT_REMBOURSEMENT", -statement.balance))
    return pieces


def finance_pieces(year: int, conventions=None) -> list[Piece]:
    """Every piece of the year's issued statements, in the order of their numbers: a correcting
    statement first reverses exactly the pieces of the statement it cancels (citing its number),
    then books its own. Summing titres less reductions gives what is due today."""
    issued = Statement.objects.filter(year=year, status=StatementStatus.ISSUED)
    if conventions is not None:
        issued = issued.filter(convention__in=conventions)
    issued = (
        issued.select_related("convention", "payer", "payee", "cancels")
        .defer("pdf", "cancels__pdf")  # the pieces are read from the figures, not the PDFs
        .order_by("number")
    )
    pieces = []
    for statement in issued:
        cancelled = statement.cancels
        if cancelled is not None and cancelled.is_issued:
            pieces += [
                Piece(statement, REVERSAL[p.nature], p.amount, cancels=cancelled.number)
                for p in own_pieces(cancelled)
            ]
        pieces += own_pieces(statement)
    return pieces
