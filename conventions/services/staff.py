"""The staff the conventions make available in a year (« agents mis à disposition et
transférés »), by convention, by regime and by employer: what the annual report to the council
on the mutualisation scheme says of staff, and what the page ``conventions:staff`` shows.

Counted: the conventions signed or in force, and those terminated or come to their end, over
the days of the year they cover (``in_force.coverage``: start, end of the terms, termination);
a convention never signed (draft, in consultation, deliberated) counts for nothing.

ETPT (équivalent temps plein travaillé) of an agent in a convention over the year:

    ETPT = quotité / 100 × (days of the assignment within the year and within the convention's
           coverage) / (days of the year: 365, or 366 in a leap year)

An agent at 50 % from 1 January to 1 July of a 365-day year (182 days) counts 0.5 × 182 / 365;
half a year at 50 % is 0.25. Each figure shown (an agent's, a convention's, a regime's, an
employer's, the total) is the exact sum of the agents' ETPT rounded to 0.01 (half up), so the
rounded figures of a column may differ by 0.01 from their rounded total.

Headcount (``agents``): the number of distinct agents, an agent being its pseudonymous reference
at its employer: an agent assigned by two conventions counts once in the totals (their ETPT add
up), and once in each convention's row.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import tablib
from django.db.models import Prefetch
from django.utils.translation import gettext, ngettext

from conventions.models import AgentAssignment, AgentRegime, Convention, Status, Terms
from conventions.services import in_force
from mutualisation.collation import french_sort_key
from mutualisation.models import Organisation

# Signed conventions bind their parties over the days they cover, ended ones included.
COUNTED = (Status.SIGNED, Status.IN_FORCE, Status.TERMINATED, Status.EXPIRED)
CENT = Decimal("0.01")


def rounded(value: Fraction) -> Decimal:
    """An exact ETPT as a Decimal rounded to the hundredth (half up)."""
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(
        CENT, rounding=ROUND_HALF_UP
    )


def days_in(year: int) -> int:
    return (date(year, 12, 31) - date(year, 1, 1)).days + 1


@dataclass(frozen=True)
class AgentLine:
    """One assignment over the year: its days counted and its ETPT."""

    assignment: AgentAssignment
    first: date
    last: date
    days: int
    exact_fte: Fraction
    fte: Decimal

    @property
    def key(self) -> tuple[int, str]:
        return (self.assignment.employer_id, self.assignment.agent_ref)


@dataclass(frozen=True)
class ConventionRow:
    convention: Convention
    first: date  # the days of the year the convention covers
    last: date
    lines: list[AgentLine]
    agents: int
    fte: Decimal


@dataclass(frozen=True)
class RegimeTotal:
    regime: str  # an AgentRegime value
    label: str
    agents: int
    fte: Decimal


@dataclass(frozen=True)
class EmployerTotal:
    employer: Organisation
    agents: int
    fte: Decimal


@dataclass(frozen=True)
class StaffSummary:
    year: int
    rows: list[ConventionRow]  # conventions having agents in the year, by reference
    by_regime: list[RegimeTotal]  # the three regimes, always, in AgentRegime's order
    by_employer: list[EmployerTotal]  # employers having agents in the year, by name
    agents: int
    fte: Decimal


def totals(lines) -> tuple[int, Decimal]:
    """Headcount (distinct agents) and rounded ETPT of assignment lines."""
    lines = list(lines)
    exact = sum((line.exact_fte for line in lines), Fraction())
    return len({line.key for line in lines}), rounded(exact)


def agent_line(assignment, covered: tuple[date, date], year: int) -> AgentLine | None:
    first = max(assignment.start_date, covered[0])
    last = min(assignment.end_date or covered[1], covered[1])
    if first > last:
        return None
    days = (last - first).days + 1
    exact = Fraction(assignment.share_percent) / 100 * Fraction(days, days_in(year))
    return AgentLine(assignment, first, last, days, exact, rounded(exact))


def staff_made_available(year: int, conventions) -> StaffSummary:
    """The agents of ``conventions`` (a queryset: the caller's choice of territory and what the
    user may see) whose assignment overlaps the part of ``year`` each convention covers, by
    convention, by regime, by employer and in all (see the module's docstring for the ETPT)."""
    selected = (
        in_force.covered_in(conventions.filter(status__in=COUNTED), year)
        .select_related("termination")
        .prefetch_related(
            Prefetch("terms", queryset=Terms.objects.select_related("amendment")),
            Prefetch(
                "agents",
                queryset=AgentAssignment.objects.select_related("employer").order_by(
                    "agent_ref", "pk"
                ),
            ),
        )
        .order_by("reference")
    )
    rows = []
    for convention in selected:
        covered = in_force.coverage(convention, year, list(convention.terms.all()))
        if covered is None:
            continue
        lines = [
            line
            for assignment in convention.agents.all()
            if (line := agent_line(assignment, covered, year)) is not None
        ]
        if lines:
            agents, fte = totals(lines)
            rows.append(ConventionRow(convention, covered[0], covered[1], lines, agents, fte))
    every = [line for row in rows for line in row.lines]
    by_regime = []
    for regime in AgentRegime:
        agents, fte = totals(line for line in every if line.assignment.regime == regime)
        by_regime.append(RegimeTotal(regime.value, regime.label, agents, fte))
    per_employer = defaultdict(list)
    for line in every:
        per_employer[line.assignment.employer].append(line)
    by_employer = [
        EmployerTotal(employer, *totals(lines))
        for employer, lines in sorted(
            per_employer.items(), key=lambda item: french_sort_key(item[0].name)
        )
    ]
    agents, fte = totals(every)
    return StaffSummary(year, rows, by_regime, by_employer, agents, fte)


def as_dataset(summary: StaffSummary) -> tablib.Dataset:
    """The summary for the exports (CSV, XLSX): a row per agent of each convention, quotité and
    ETPT as numbers, then the total."""
    dataset = tablib.Dataset(
        headers=[
            gettext("Convention"),
            gettext("Intitulé"),
            gettext("Statut"),
            gettext("Référence de l'agent"),
            gettext("Fonction"),
            gettext("Employeur"),
            gettext("Régime"),
            gettext("Quotité (%)"),
            gettext("Du"),
            gettext("Au"),
            gettext("Jours"),
            gettext("ETPT"),
        ],
        title=gettext("Agents %(year)s") % {"year": summary.year},
    )
    for row in summary.rows:
        for line in row.lines:
            assignment = line.assignment
            dataset.append(
                [
                    row.convention.reference,
                    row.convention.title,
                    row.convention.get_status_display(),
                    assignment.agent_ref,
                    assignment.job_title,
                    assignment.employer.name,
                    assignment.get_regime_display(),
                    assignment.share_percent,
                    line.first,
                    line.last,
                    line.days,
                    line.fte,
                ]
            )
    agents = ngettext("%(count)s agent", "%(count)s agents", summary.agents) % {
        "count": summary.agents
    }
    dataset.append([gettext("Total"), agents, *[None] * 9, summary.fte])
    return dataset
