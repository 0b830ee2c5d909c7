"""Reading a convention's terms over time: the initial terms, superseded by each signed avenant
from its effective date; the days a year is covered; the direction of a mise à disposition."""

from datetime import date, timedelta
from typing import NamedTuple

from dateutil.relativedelta import relativedelta
from django.db import models
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from conventions.models import (
    Amendment,
    Convention,
    Direction,
    PartyRole,
    Terms,
)
from mutualisation.models import (
    OrganisationKind,
)


def is_applicable(terms: Terms) -> bool:
    """Initial terms, or those of a signed avenant (a draft avenant changes nothing)."""
    return terms.amendment_id is None or terms.amendment.status == Amendment.AmendmentStatus.SIGNED


def all_terms(convention: Convention, terms=None):
    """The convention's terms: ``terms`` when the caller has already read them (a year's
    computation reads each convention's once, for every rule below), else
    ``convention.terms.all()``."""
    return convention.terms.all() if terms is None else terms


def terms_in_force(convention: Convention, on: date, terms=None) -> Terms | None:
    """The terms applicable on a date: initial terms, superseded by each signed avenant from its
    effective date; None before the start. Draft avenants never apply. This is the one rule
    (on ``convention.terms.all()``, so a prefetch of ``terms__amendment`` spares the queries;
    or on ``terms``, the convention's terms already read)."""
    candidates = [
        t for t in all_terms(convention, terms) if t.effective_from <= on and is_applicable(t)
    ]
    return max(candidates, key=lambda t: t.effective_from) if candidates else None


def applicable_terms(convention: Convention, on: date, terms=None) -> Terms:
    """``terms_in_force``, or before the start the initial terms."""
    terms = all_terms(convention, terms)
    return terms_in_force(convention, on, terms) or next(t for t in terms if t.amendment_id is None)


def terms_segments(
    convention: Convention, first: date, last: date, terms=None
) -> list[tuple[date, date, Terms]]:
    """The runs of days from ``first`` to ``last`` under one set of terms: a signed avenant
    effective inside the range starts a new run."""
    terms = all_terms(convention, terms)
    changes = sorted(
        {t.effective_from for t in terms if first < t.effective_from <= last and is_applicable(t)}
    )
    starts = [first, *changes]
    ends = [day - timedelta(days=1) for day in changes] + [last]
    return [
        (start, end, applicable_terms(convention, start, terms))
        for start, end in zip(starts, ends, strict=True)
    ]


def applicable_terms_subquery(on: date):
    """The pk of the terms applicable on ``on`` to the convention ``OuterRef("pk")``, in SQL:
    ``in_force.applicable_terms`` (the latest initial or signed avenant's terms in effect, else
    the initial terms before the start)."""
    of_convention = Terms.objects.filter(convention=OuterRef("pk"))
    in_force = (
        of_convention.filter(effective_from__lte=on)
        .filter(Q(amendment__isnull=True) | Q(amendment__status=Amendment.AmendmentStatus.SIGNED))
        .order_by("-effective_from")
        .values("pk")[:1]
    )
    initial = of_convention.filter(amendment__isnull=True).order_by().values("pk")[:1]
    return Coalesce(Subquery(in_force), Subquery(initial))


def convention_end(convention: Convention, year: int, terms=None) -> date | None:
    """Last day covered in or before ``year``: the termination date, else the end date of the
    terms in force at the year's end unless they are tacitly renewed."""
    ends = []
    terms = applicable_terms(convention, date(year, 12, 31), terms)
    if terms.end_date and not terms.tacit_renewal:
        ends.append(terms.end_date)
    # A missing reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError.
    termination = getattr(convention, "termination", None)
    if termination is not None:
        ends.append(termination.effective_on)
    return min(ends) if ends else None


def coverage(convention: Convention, year: int, terms=None) -> tuple[date, date] | None:
    """The part of ``year`` the convention applies to (start, avenants' end dates, tacit
    renewal, termination), or None: the one rule for billing and for the « Année
    d'application » filter (``covered_in``, the same in SQL). ``terms``: the convention's,
    when already read."""
    first = max(date(year, 1, 1), convention.start_date)
    end = convention_end(convention, year, terms)
    last = min(date(year, 12, 31), end) if end else date(year, 12, 31)
    return (first, last) if first <= last else None


def covered_in(conventions, year: int):
    """The conventions ``coverage`` covers in ``year``, selected by the database: started by
    the year's end; the end of the terms applicable on 31 December (unless tacitly renewed)
    and the termination, if any, not before the year's first day covered."""
    first, last = date(year, 1, 1), date(year, 12, 31)

    def not_before_first(field):
        return Q(**{f"{field}__gte": first}) & Q(**{f"{field}__gte": OuterRef("start_date")})

    open_ended = Terms.objects.filter(pk=OuterRef("applicable_terms_id")).filter(
        Q(end_date__isnull=True) | Q(tacit_renewal=True) | not_before_first("end_date")
    )
    not_terminated = Q(termination__isnull=True) | (
        Q(termination__effective_on__gte=first)
        & Q(termination__effective_on__gte=models.F("start_date"))
    )
    return (
        conventions.filter(start_date__lte=last)
        .annotate(applicable_terms_id=applicable_terms_subquery(last))
        .filter(Exists(open_ended))
        .filter(not_terminated)
    )


def initial_terms(convention: Convention) -> Terms:
    return convention.terms.get(amendment__isnull=True)


def current_terms(convention: Convention) -> Terms:
    """Terms in force today, or the initial ones before the convention starts."""
    today = timezone.localdate()
    return terms_in_force(convention, today) or initial_terms(convention)


def direction_of(parties) -> str | None:
    """Ascendante / descendante, derived from who provides and who benefits (never stored)."""
    providers = [p.organisation for p in parties if p.role == PartyRole.PROVIDER]
    beneficiaries = [p.organisation for p in parties if p.role == PartyRole.BENEFICIARY]
    if len(providers) != 1 or not beneficiaries:
        return None
    provider = providers[0]
    if provider.kind == OrganisationKind.EPCI and all(b.is_commune for b in beneficiaries):
        return Direction.DESCENDANTE
    if provider.is_commune and all(b.is_epci for b in beneficiaries):
        return Direction.ASCENDANTE
    return None


def notice_respected(convention: Convention, notified_on: date, effective_on: date) -> bool:
    terms = terms_in_force(convention, notified_on) or initial_terms(convention)
    return add_months(notified_on, terms.notice_months) <= effective_on


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clamped to the end of a shorter month."""
    return day + relativedelta(months=months)


TERMS_FIELDS = (
    "settlement_mode",
    "periodicity_months",
    "instalment_count",
    "unit_cost_method",
    "end_date",
    "tacit_renewal",
    "notice_months",
    "managing_share_mode",
    "managing_share_value",
)


def terms_values(terms: Terms) -> dict:
    """The values of a set of terms, to pre-fill an avenant's terms."""
    return {name: getattr(terms, name) for name in TERMS_FIELDS}


# --- parties and services changed by avenant ---------------------------------------------------


def takes_effect(amendment, on: date) -> bool:
    """A signed avenant whose effective date has come."""
    return (
        amendment is not None
        and amendment.status == Amendment.AmendmentStatus.SIGNED
        and amendment.effective_from <= on
    )


def present_on(record, on: date, *, start: str, end: str) -> bool:
    """A party (``joined_by``/``left_by``) or a service line (``added_by``/``removed_by``)
    on a date: original or added by a signed avenant in effect, and not withdrawn by one."""
    added, removed = getattr(record, start), getattr(record, end)
    if added is not None and not takes_effect(added, on):
        return False
    return not takes_effect(removed, on)


class Presence(NamedTuple):
    """The days a party or a service line is present, read once from its avenants:
    ``present_on(record, day)`` is ``presence(record, ...).on(day)`` for every day. From
    ``since`` (None: from the start) to the day before ``until`` (None: never withdrawn);
    ``never``: added by an avenant that is not signed, it is present on no day."""

    since: date | None = None
    until: date | None = None
    never: bool = False

    def on(self, day: date) -> bool:
        return (
            not self.never
            and (self.since is None or self.since <= day)
            and (self.until is None or day < self.until)
        )


ALWAYS = Presence()  # no avenant: present on every day


def links_avenant(record, link: str) -> bool:
    """Whether ``record.<link>`` may name an avenant, told without reading the link: its id is
    set, or an object (even an unsaved avenant) was put in its place. A year's computation asks
    for the presence of every party and service line, and most name no avenant: reading each
    empty link through Django's descriptor took a tenth of the year's loading."""
    return getattr(record, f"{link}_id") is not None or getattr(type(record), link).is_cached(
        record
    )


def presence(record, *, start: str, end: str) -> Presence:
    """When a party (``joined_by``/``left_by``) or a service line (``added_by``/``removed_by``)
    is present: ``present_on`` for all days at once."""
    if not (links_avenant(record, start) or links_avenant(record, end)):
        return ALWAYS  # most records: told without reading the links
    return presence_between(getattr(record, start), getattr(record, end))


def presence_between(added, removed) -> Presence:
    """``presence`` of a record added by the avenant ``added`` and withdrawn by ``removed``
    (each None when none does; read: ``status``, ``effective_from``)."""
    if added is None and removed is None:
        return ALWAYS
    signed = Amendment.AmendmentStatus.SIGNED
    if added is not None and added.status != signed:
        return Presence(never=True)
    since = added.effective_from if added is not None else None
    until = removed.effective_from if removed is not None and removed.status == signed else None
    return Presence(since, until)


def first_day_present(span: Presence, first: date, last: date) -> date | None:
    """The first day from ``first`` to ``last`` on which a record of ``span`` is present (a
    monthly usage record of the month an avenant brings its commune in counts from that day)."""
    if span.on(first):
        return first
    if span.since is not None and first < span.since <= last and span.on(span.since):
        return span.since
    return None


def present_in_month(record, month: date, *, start: str, end: str) -> bool:
    """A party or service line present on at least one day of ``month``'s month."""
    first = month.replace(day=1)
    last = add_months(first, 1) - timedelta(days=1)
    span = presence(record, start=start, end=end)
    return first_day_present(span, first, last) is not None


def under_signed_act(party, today: date) -> bool:
    """A party the signed acts made (the convention, or a signed avenant even before its
    date), not withdrawn by a signed avenant in effect: a draft avenant's is a project."""
    span = presence(party, start="joined_by", end="left_by")
    return not span.never and (span.until is None or today < span.until)


def parties_on(convention: Convention, on: date) -> list:
    """The parties on a date (``convention.parties.all()``: prefetch ``parties__joined_by`` and
    ``parties__left_by`` to spare the queries)."""
    return [
        p for p in convention.parties.all() if present_on(p, on, start="joined_by", end="left_by")
    ]


def present_during(records, days: list[date], *, start: str, end: str) -> list:
    """The records present on at least one of ``days``."""
    found = []
    for record in records:
        span = presence(record, start=start, end=end)
        if any(span.on(day) for day in days):
            found.append(record)
    return found


def segment_starts(convention: Convention, first: date, last: date) -> list[date]:
    return [start for start, _end, _terms in terms_segments(convention, first, last)]


def parties_during(convention: Convention, first: date, last: date) -> list:
    """The parties present on at least one day from ``first`` to ``last``: the initial ones
    and those of the signed avenants in effect on one of the days of the terms' segments."""
    days = segment_starts(convention, first, last)
    return present_during(convention.parties.all(), days, start="joined_by", end="left_by")


def services_on(convention: Convention, on: date) -> list:
    return [
        s
        for s in convention.services.all()
        if present_on(s, on, start="added_by", end="removed_by")
    ]


def services_during(convention: Convention, first: date, last: date) -> list:
    days = segment_starts(convention, first, last)
    return present_during(convention.services.all(), days, start="added_by", end="removed_by")
