"""The annual report on mutualisation to the council (CGCT L5211-39-1): each year, at the budget
orientation debate, the president communicates the progress of the schéma de mutualisation.

One function gathers what the report shows for a territory and a year, for the user asking
(staff of the territory see it whole; a commune reader, what concerns their commune only):
the conventions in force and signed during the year, the financial flows per organisation in
both directions (gross, imputed on the attribution de compensation, called in acomptes, balance),
the staff made available, the progress of the scheme's actions, the compliance findings, and the
conventions that ended during the year with what followed. ``charts`` draws its charts as PNG
images (matplotlib), embedded alike in the page and in the PDF.
"""

import base64
import hashlib
import io
import logging
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.cache import cache
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from conventions.models import (
    ActionStatus,
    Convention,
    ConventionService,
    Party,
)
from conventions.services.adhesions import AdhesionStatus, adhesion_matrix
from conventions.services.in_force import (
    convention_end,
    covered_in,
    direction_of,
    parties_during,
    services_during,
)
from conventions.services.scheme import current_scheme, scheme_progress
from conventions.services.staff import staff_made_available
from costing import engine
from costing.services import BILLED_STATUSES, read_stored, settlement_from_json, year_results
from mutualisation.collation import french_sort_key

ZERO = Decimal("0.00")
# Beyond this many, a list of organisations is given as a count (the matrix and the convention
# give the names): a territory of a hundred communes would print pages of names.
NAMES_LISTED = 12


@dataclass(frozen=True)
class Flow:
    """An organisation's year across the conventions: what it received for the services it
    rendered, what it paid for those it received (gross) and how that was settled."""

    organisation: engine.Party
    received: Decimal  # gross annual cost of the services it rendered
    paid: Decimal  # gross annual cost of the services it received
    ac_imputed: Decimal  # of what it paid: imputed on its attribution de compensation
    instalments: Decimal  # of what it paid: acomptes called during the year
    balance: Decimal  # of what it paid: the balance (a titre; negative, refunded)
    net: Decimal  # received − paid: the dashboard's « position brute »


def flows(settlements, *, only=None) -> list[Flow]:
    """Each organisation's flows over ``settlements`` (engine.Settlement), by name; ``only``
    (ids) keeps those organisations. The net is ``engine.net_positions``' own (received −
    paid, the same sums), so the report and the dashboard agree to the cent."""
    totals: dict[int, list] = {}
    parties: dict[int, engine.Party] = {}
    for s in settlements:
        if s.actual == 0 and s.ac_deduction == 0 and not s.called:
            continue  # as net_positions: a settlement with nothing in it is no flow
        parties[s.payee.id], parties[s.payer.id] = s.payee, s.payer
        payee = totals.setdefault(s.payee.id, [ZERO] * 5)
        payer = totals.setdefault(s.payer.id, [ZERO] * 5)
        payee[0] += s.actual
        payer[1] += s.actual
        payer[2] += s.ac_deduction
        payer[3] += s.instalments_total
        payer[4] += s.balance
    found = [
        Flow(parties[pid], *values, values[0] - values[1])
        for pid, values in totals.items()
        if only is None or pid in only
    ]
    return sorted(
        found, key=lambda flow: (french_sort_key(flow.organisation.name), flow.organisation.siren)
    )


@dataclass(frozen=True)
class Ended:
    convention: Convention
    ended_on: date
    how: str  # « Résiliée » or « Échue »
    agents_outcome: str
    assets_outcome: str
    followed_by: list  # conventions of the same service and territory starting after it


def ended_during(conventions, year: int, *, today: date | None = None) -> list[Ended]:
    """The conventions whose application ends during ``year`` (terminated or expired), with what
    becomes of the agents and assets (réversibilité) and the conventions of the same service that
    start after it, whatever their stage (a draft says a successor is being prepared); an end
    still ahead of ``today`` is said as such. Three queries, however many
    conventions end."""
    today = today or timezone.localdate()
    candidates = list(
        conventions.filter(status__in=BILLED_STATUSES, start_date__lte=date(year, 12, 31))
        .select_related("termination")
        .prefetch_related("terms", "services")
    )
    ending = []
    for convention in candidates:
        end = convention_end(convention, year, list(convention.terms.all()))
        if end is not None and end.year == year:
            ending.append((convention, end))
    if not ending:
        return []
    later = list(
        conventions.filter(start_date__gt=min(end for _c, end in ending))
        .prefetch_related("services")
        .order_by("start_date", "reference")
    )
    ended = []
    for convention, end in ending:
        termination = getattr(convention, "termination", None)
        services = {line.service_id for line in convention.services.all()}
        successors = [
            other
            for other in later
            if other.start_date > end
            and other.territory_id == convention.territory_id
            and services & {line.service_id for line in other.services.all()}
        ]
        if termination is not None:
            how = _("Résiliée")
        elif end >= today:
            how = _("Arrive à échéance")
        else:
            how = _("Échue")
        ended.append(
            Ended(
                convention,
                end,
                how,
                termination.agents_outcome if termination is not None else "",
                termination.assets_outcome if termination is not None else "",
                successors,
            )
        )
    return sorted(ended, key=lambda e: (e.ended_on, e.convention.reference))


def adhesions(matrix) -> list[dict]:
    """Who shares what: per service, the communes adhering and those with a project."""
    found = []
    for index, service in enumerate(matrix.services):
        cells = [row.cells[index] for row in matrix.rows]
        found.append(
            {
                "service": service,
                "adherents": [c.commune for c in cells if c.status == AdhesionStatus.ADHERENT],
                "projects": [c.commune for c in cells if c.status == AdhesionStatus.PROJECT],
            }
        )
    return found


def conventions_applied(conventions, year: int) -> list[dict]:
    """The conventions applied during ``year``, by reference, each with its parties and services
    of the year as the signed acts made them (what a draft avenant would add is a project;
    what a signed one withdrew before the year is gone). Four queries, however many."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    applied = (
        covered_in(conventions.filter(status__in=BILLED_STATUSES), year)
        .select_related("territory")
        .prefetch_related(
            "terms",
            Prefetch(
                "parties", Party.objects.select_related("organisation", "joined_by", "left_by")
            ),
            Prefetch(
                "services",
                ConventionService.objects.select_related("service", "added_by", "removed_by"),
            ),
        )
        .order_by("reference")
    )
    rows = []
    for convention in applied:
        parties = parties_during(convention, first, last)
        names = sorted((p.organisation.name for p in parties), key=french_sort_key)
        rows.append(
            {
                "convention": convention,
                "direction": direction_of(parties),
                "organisations": names if len(names) <= NAMES_LISTED else [],
                "party_count": len(names),
                "services": [
                    line.service.name for line in services_during(convention, first, last)
                ],
                "signed_in_year": bool(
                    convention.signature_date and convention.signature_date.year == year
                ),
            }
        )
    return rows


def annual_report(*, territory, year: int, conventions, communes=None) -> dict:
    """What the report shows. ``conventions``: the territory's conventions the user may see;
    ``communes``: None for the territory's staff (everything), else the ids of the user's own
    organisations (a commune reader reads their own flows, staff and actions, no findings)."""
    conventions = conventions.filter(territory=territory)
    rows = conventions_applied(conventions, year)
    signed = list(
        conventions.filter(signature_date__year=year).order_by("signature_date", "reference")
    )
    stored = year_results(year, conventions)
    settlements = [settlement_from_json(s) for s in read_stored(stored.rows, "settlements")]
    year_flows = flows(settlements, only=communes)
    shown = [f for f in year_flows if f.organisation.id != territory.pk]
    territory_flow = next((f for f in year_flows if f.organisation.id == territory.pk), None)
    staff = staff_made_available(year, conventions)
    matrix = adhesion_matrix(territory, year, communes=communes)
    adhering = {
        row.commune.pk
        for row in matrix.rows
        if any(cell.status == AdhesionStatus.ADHERENT for cell in row.cells)
    }
    scheme = current_scheme(territory, year)
    progress = scheme_progress(scheme, communes=communes) if scheme else None
    return {
        "territory": territory,
        "year": year,
        "whole": communes is None,
        "names_listed": NAMES_LISTED,
        "generated_at": timezone.localtime(),
        "computed_at": stored.computed_at,
        "in_force": rows,
        "signed": signed,
        "flows": shown,
        "territory_flow": territory_flow,
        "flow_totals": {
            name: sum((getattr(f, name) for f in shown), ZERO)
            for name in ("received", "paid", "ac_imputed", "instalments", "balance", "net")
        },
        "staff": staff,
        "adhesions": adhesions(matrix),
        "scheme": scheme,
        "progress": progress,
        "findings": stored.findings if communes is None else [],
        "ended": ended_during(conventions, year),
        "key_figures": {
            "in_force": len(rows),
            "signed": len(signed),
            "total": sum((f.paid for f in year_flows), ZERO),
            "adhering_communes": len(adhering),
            "communes": len(matrix.rows),
            "agents": staff.agents,
            "fte": staff.fte,
            "actions_done": progress.counts[ActionStatus.DONE] if progress else 0,
            "actions": sum(progress.counts.values()) if progress else 0,
        },
    }


logger = logging.getLogger(__name__)

# --- charts --------------------------------------------------------------------------------------

CHART_DPI = 150
CHART_KEPT_SECONDS = 7 * 24 * 3600  # named by their figures: never stale, only unused
CHART_FLOWS = 25  # organisations charted; the table lists them all
BLUE, RED, GREY = "#1f4e79", "#b03a2e", "#6b7280"
STATUS_COLOURS = {
    ActionStatus.DONE: "#1e7b34",
    ActionStatus.PREPARING: "#1f4e79",
    ActionStatus.PLANNED: "#9aa5b1",
    ActionStatus.ABANDONED: "#b03a2e",
}


def png(figure) -> str:
    """A figure as a data: URI (PNG), for an <img> of the page and of the PDF alike."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=CHART_DPI, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def euros_axis(value, _position) -> str:
    return f"{value:,.0f} €".replace(",", " ")


def new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    figure.set_layout_engine("constrained")
    return figure


def kept_chart(name: str, figures: tuple, draw) -> str:
    """The chart ``name`` of ``figures`` (what it plots, as plain values), drawn by
    ``draw(figures)`` the first time only: kept in the cache under the digest of its name, its
    figures and the language of its labels, so that a change of figures draws it anew and the
    report's next readers do not wait for matplotlib (a quarter of the page's time)."""
    digest = hashlib.sha256(repr((name, get_language(), figures)).encode()).hexdigest()
    key = f"report-chart:{digest}"
    try:
        found = cache.get(key)
    except Exception:  # the cache only spares drawing: out of reach, the chart is drawn
        logger.warning("Cache injoignable : graphique %s dessiné sans cache.", name, exc_info=True)
        return draw(figures)
    if found is None:
        found = draw(figures)
        try:
            cache.set(key, found, CHART_KEPT_SECONDS)
        except Exception:
            logger.warning("Cache injoignable : graphique %s non gardé.", name, exc_info=True)
    return found


def flows_chart(report: dict) -> str | None:
    charted = sorted(report["flows"], key=lambda f: (-abs(f.net), f.organisation.name))
    charted = sorted(charted[:CHART_FLOWS], key=lambda f: f.net)
    if not charted:
        return None
    return kept_chart(
        "flows", tuple((f.organisation.name, str(f.net)) for f in charted), draw_flows
    )


def draw_flows(charted: tuple) -> str:
    from matplotlib.ticker import FuncFormatter

    figure = new_figure(7.5, 0.9 + 0.28 * len(charted))
    axes = figure.add_subplot()
    values = [float(net) for _name, net in charted]  # drawing only: the table prints Decimals
    axes.barh(
        [name for name, _net in charted],
        values,
        color=[BLUE if v >= 0 else RED for v in values],
    )
    axes.axvline(0, color=GREY, linewidth=0.8)
    axes.xaxis.set_major_formatter(FuncFormatter(euros_axis))
    axes.set_title(_("Position nette par organisation (positif : reçoit ; négatif : paie)"))
    axes.tick_params(labelsize=8)
    return png(figure)


def scheme_chart(report: dict) -> str | None:
    progress = report["progress"]
    if progress is None or not any(h.actions for h in progress.horizons):
        return None
    figures = tuple(
        (str(h.label), tuple(h.counts[status] for status in ActionStatus.values))
        for h in progress.horizons
    )
    return kept_chart("scheme", figures, draw_scheme)


def draw_scheme(horizons: tuple) -> str:
    figure = new_figure(7.5, 2.6)
    axes = figure.add_subplot()
    labels = [label for label, _counts in horizons]
    left = [0] * len(labels)
    for index, (status, label) in enumerate(ActionStatus.choices):
        counts = [counts[index] for _label, counts in horizons]
        axes.barh(labels, counts, left=left, color=STATUS_COLOURS[status], label=str(label))
        left = [a + b for a, b in zip(left, counts, strict=True)]
    axes.invert_yaxis()
    axes.set_xlabel(_("Nombre d'actions"))
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), fontsize=8, ncols=4, frameon=False)
    axes.set_title(_("Avancement des actions du schéma par horizon"))
    return png(figure)


def staff_chart(report: dict) -> str | None:
    staff = report["staff"]
    if not staff.agents:
        return None
    figures = tuple((str(entry.label), str(entry.fte)) for entry in staff.by_regime)
    return kept_chart("staff", figures, draw_staff)


def draw_staff(by_regime: tuple) -> str:
    figure = new_figure(7.5, 2.2)
    axes = figure.add_subplot()
    labels = [label for label, _fte in by_regime]
    axes.barh(labels, [float(fte) for _label, fte in by_regime], color=BLUE)
    axes.invert_yaxis()
    axes.set_xlabel(_("Équivalents temps plein travaillés (ETPT)"))
    axes.set_title(_("Agents mis à disposition ou transférés, par régime"))
    return png(figure)


def charts(report: dict) -> dict:
    """The report's charts as data: URIs (None where there is nothing to draw)."""
    return {
        "flows": flows_chart(report),
        "scheme": scheme_chart(report),
        "staff": staff_chart(report),
    }
