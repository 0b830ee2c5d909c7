"""What the screens and the documents show: alerts, the timeline, the history of changes,
the detail page's overview and the convention document's context."""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Prefetch, Q, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    Amendment,
    Convention,
    ConventionKind,
    Status,
    Termination,
    Terms,
    UsageForecast,
)
from conventions.services import fmt
from conventions.services.gates import (
    Loaded,
    approving_deliberations,
    enforceability_gaps,
    enforceable_on,
    gaps_for,
    load,
)
from conventions.services.in_force import (
    add_months,
    applicable_terms_subquery,
    direction_of,
    terms_in_force,
)
from conventions.services.transitions import (
    TRANSITIONS,
)


@dataclass(frozen=True)
class Alert:
    convention: Convention
    kind: str  # "end" or "notice"
    on: date
    label: str


# Subtracting months moves a date by at most this many days more than the same months from
# another date (month-end clamping): the database selects with this margin, Python decides.
CLAMPING_MARGIN = timedelta(days=3)


def alerts(*, within_days: int, on: date | None = None, conventions=None) -> list[Alert]:
    """Conventions ending, or whose notice date comes, within ``within_days`` days.

    The database selects the terms applicable today whose end or notice date falls in the
    window (one query per distinct notice period and one for the candidates); only those rows
    are loaded and checked exactly here."""
    today = on or timezone.localdate()
    horizon = today + timedelta(days=within_days)
    queryset = conventions if conventions is not None else Convention.objects.all()
    signed = queryset.filter(status__in=(Status.SIGNED, Status.IN_FORCE)).annotate(
        applicable_terms_id=applicable_terms_subquery(today)
    )
    applicable = Terms.objects.filter(
        pk__in=signed.values("applicable_terms_id"), end_date__gte=today
    )
    # The notice date is the end date less the notice period: for each period in use, the end
    # dates whose notice date falls in the window.
    window = Q(end_date__lte=horizon)
    for months in applicable.order_by().values_list("notice_months", flat=True).distinct():
        window |= Q(
            notice_months=months,
            end_date__gte=add_months(today, months) - CLAMPING_MARGIN,
            end_date__lte=add_months(horizon, months) + CLAMPING_MARGIN,
        )
    found = []
    candidates = (
        applicable.filter(window)
        .select_related("convention")
        .only("end_date", "notice_months", "convention__reference", "convention__title")
    )
    for terms in candidates:
        convention = terms.convention
        notice_date = add_months(terms.end_date, -terms.notice_months)
        if today <= notice_date <= horizon:
            found.append(
                Alert(
                    convention,
                    "notice",
                    notice_date,
                    _("Date limite de préavis le %(date)s") % {"date": fmt(notice_date)},
                )
            )
        if today <= terms.end_date <= horizon:
            found.append(
                Alert(
                    convention,
                    "end",
                    terms.end_date,
                    _("Échéance le %(date)s") % {"date": fmt(terms.end_date)},
                )
            )
    return sorted(found, key=lambda a: (a.on, a.convention.reference))


@dataclass(frozen=True)
class Event:
    day: date
    label: str
    kind: str


def timeline(convention: Convention, data: Loaded, amendments, termination) -> list[Event]:
    """Opinions, deliberations, signature, entry into force, avenants and termination, by date."""
    events = [Event(convention.created_at.date(), _("Création du projet"), "draft")]
    for opinion in convention.opinions.select_related("organisation", "amendment"):
        events.append(Event(opinion.date, str(opinion), "opinion"))
    for deliberation in convention.deliberations.select_related("organisation", "amendment"):
        suffix = (
            _(" — avenant n° %(number)s") % {"number": deliberation.amendment.number}
            if deliberation.amendment
            else ""
        )
        vote = deliberation.get_vote_display().lower()
        events.append(Event(deliberation.date, f"{deliberation} : {vote}{suffix}", "deliberation"))
    if convention.signature_date:
        events.append(
            Event(convention.signature_date, _("Signature de la convention"), "signature")
        )
    events.append(Event(convention.start_date, _("Prise d'effet"), "start"))
    for amendment in amendments:
        if amendment.signature_date:
            events.append(
                Event(
                    amendment.signature_date,
                    _("Signature de l'avenant n° %(number)s") % {"number": amendment.number},
                    "amendment",
                )
            )
        events.append(
            Event(
                amendment.effective_from,
                _("Effet de l'avenant n° %(number)s") % {"number": amendment.number},
                "amendment",
            )
        )
    if termination:
        events.append(
            Event(termination.notified_on, _("Notification de la résiliation"), "termination")
        )
        events.append(
            Event(termination.effective_on, _("Fin de la convention (résiliation)"), "termination")
        )
    return sorted(events, key=lambda e: e.day)


NEXT_STEP = {
    Status.DRAFT: "submit",
    Status.CONSULTATION: "deliberate",
    Status.DELIBERATED: "sign",
    Status.SIGNED: "enter_into_force",
}


HISTORY_HIDDEN_FIELDS = {"id", "version", "created_at", "created_by"}


def display_value(field, value) -> str:
    if value in (None, ""):
        return "—"
    choices = dict(field.flatchoices) if field.choices else None
    if choices:
        return str(choices.get(value, value))
    if isinstance(value, date):
        return fmt(value)
    return str(value)


def history_entries(convention: Convention, limit: int = 30) -> list[tuple]:
    """(record, [“field : old → new”, …]) for the latest changes, newest first."""
    records = list(convention.history.select_related("history_user")[: limit + 1])
    entries = []
    # Each record against the one before it (the oldest against none); a convention created
    # in bulk has no record at all.
    for newer, older in zip(records, [*records[1:], None][: len(records)], strict=True):
        changes = []
        if older is not None:
            # simple-history's diff_against skips non-editable fields such as the status.
            for field in older.tracked_fields:
                if field.name in HISTORY_HIDDEN_FIELDS:
                    continue
                old, new = getattr(older, field.attname), getattr(newer, field.attname)
                if old != new:
                    changes.append(
                        f"{field.verbose_name} : {display_value(field, old)} → "
                        f"{display_value(field, new)}"
                    )
        entries.append((newer, changes))
    return entries[:limit]


def convention_overview(convention: Convention) -> dict:
    """Everything the detail page shows, loaded with a bounded number of queries."""
    # Every set of terms with its forecasts, on the convention itself: the rules that read
    # ``convention.terms.all()`` (terms in force, alerts) then read these, and the forecasts
    # shown come with their service and beneficiary.
    prefetch_related_objects(
        [convention],
        Prefetch(
            "terms",
            queryset=Terms.objects.select_related("amendment").prefetch_related(
                Prefetch(
                    "forecasts",
                    queryset=UsageForecast.objects.select_related(
                        "beneficiary", "service__service"
                    ),
                )
            ),
        ),
    )
    data = load(convention)
    amendments = list(
        convention.amendments.prefetch_related(
            "deliberations__organisation", "opinions__organisation"
        ).select_related("terms")
    )
    try:
        termination = convention.termination
    except Termination.DoesNotExist:
        termination = None
    today = timezone.localdate()
    all_terms = list(convention.terms.all())
    in_force = terms_in_force(convention, today)
    # The terms whose method and forecasts are shown: those in force, else the initial ones.
    shown_terms = in_force or next(t for t in all_terms if t.amendment_id is None)
    next_step = NEXT_STEP.get(convention.status)
    next_gaps = []
    if next_step in ("submit", "deliberate"):
        next_gaps = gaps_for(convention, TRANSITIONS[next_step][1])
    elif next_step == "sign":
        next_gaps = gaps_for(convention, Status.DELIBERATED)
    elif next_step == "enter_into_force":
        next_gaps = enforceability_gaps(data, today)
    return {
        "data": data,
        "direction": direction_of(data.parties)
        if convention.kind == ConventionKind.MISE_A_DISPOSITION
        else None,
        "amendments": amendments,
        "termination": termination,
        "all_terms": all_terms,
        "terms_in_force": in_force,
        "shown_terms": shown_terms,
        "timeline": timeline(convention, data, amendments, termination),
        "next_step": next_step,
        "next_gaps": next_gaps,
        "all_parties": list(
            convention.parties.select_related("organisation", "joined_by", "left_by")
        ),
        "all_services": list(
            convention.services.select_related("service", "unit_type", "added_by", "removed_by")
        ),
        "has_signed_amendments": any(
            a.status == Amendment.AmendmentStatus.SIGNED for a in amendments
        ),
        "enforceable_on": enforceable_on(data),
        "approving": approving_deliberations(data),
        "agents": list(convention.agents.select_related("employer")),
        "attachments": list(convention.attachments.select_related("uploaded_by")),
        "history": history_entries(convention),
        "alerts": alerts(within_days=90, conventions=Convention.objects.filter(pk=convention.pk)),
        "usage_years": list(range(max(convention.start_date.year, today.year - 2), today.year + 1))
        or [convention.start_date.year],
    }
