"""Which member commune takes part in which shared service in a year: the adhesion matrix of a
territory (« tableau des adhésions »), read by the annual report to the council on the
mutualisation scheme (L5211-39-1) and shown by the page ``conventions:adhesions``.

A cell (commune × service) is:

- « Adhérente » when the commune is a party (beneficiary, member or provider) to a convention of
  the service that is signed or in force and covers part of the year (``in_force.coverage``), or
  that was terminated or came to its end during the year, the commune and the service being
  present on one of its days (avenants that add or withdraw them are read);
- « En projet » otherwise, when the commune is a party to a convention of the service not in
  force yet (draft, in consultation, deliberated; signed or in force but starting after the
  year; or when the commune joins it by an avenant not signed yet), or when an action of the
  territory's scheme for the year (its mandate covering the year) names the commune and the
  service and is not abandoned: envisaged, in preparation, or realised for other communes while
  this one has not joined yet (the demo's Le Cendre for the information systems);
- « Non adhérente » otherwise.

A fixed number of queries whatever the size of the matrix (no query per cell).
"""

from dataclasses import dataclass, field
from datetime import date

import tablib
from django.db import models
from django.db.models import Prefetch
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conventions.models import (
    ActionStatus,
    Amendment,
    Convention,
    ConventionKind,
    ConventionService,
    Party,
    PartyRole,
    SchemeAction,
    Status,
    Terms,
)
from conventions.services import in_force
from mutualisation.collation import FrenchOrder
from mutualisation.models import EpciMembership, Organisation, Service


class AdhesionStatus(models.TextChoices):
    ADHERENT = "ADHERENT", _("Adhérente")
    PROJECT = "PROJECT", _("En projet")
    NONE = "NONE", _("Non adhérente")


# A convention that has been signed: it binds its parties over the days it covers.
BINDING = (Status.SIGNED, Status.IN_FORCE, Status.TERMINATED, Status.EXPIRED)
NOT_YET_SIGNED = (Status.DRAFT, Status.CONSULTATION, Status.DELIBERATED)
# Actions of the scheme that still say something of a commune's adhesion.
LIVE_ACTIONS = (ActionStatus.PLANNED, ActionStatus.PREPARING, ActionStatus.DONE)


@dataclass(frozen=True)
class ConventionLink:
    """A convention concerning a cell: what the matrix and its exports say of it."""

    convention: Convention
    reference: str
    kind_label: str
    status_label: str
    role: str  # a PartyRole value
    role_label: str
    status: str  # the AdhesionStatus it gives the commune: ADHERENT or PROJECT


@dataclass(slots=True)
class Cell:
    commune: Organisation
    service: Service
    status: str = AdhesionStatus.NONE
    conventions: list[ConventionLink] = field(default_factory=list)
    action: SchemeAction | None = None

    @property
    def label(self) -> str:
        return AdhesionStatus(self.status).label

    @property
    def references(self) -> list[str]:
        return [link.reference for link in self.conventions]


@dataclass
class MatrixRow:
    commune: Organisation
    cells: list[Cell]


@dataclass(frozen=True)
class ServiceTotal:
    service: Service
    adherents: int  # communes adhering to the service in the year (among the rows)
    projects: int  # communes with a project for it


@dataclass
class Matrix:
    territory: Organisation
    year: int
    services: list[Service]
    rows: list[MatrixRow]
    totals: list[ServiceTotal]

    @property
    def communes(self) -> list[Organisation]:
        return [row.commune for row in self.rows]

    def cell(self, commune, service) -> Cell:
        """The cell of a commune and a service (objects or ids)."""
        commune_id = getattr(commune, "pk", commune)
        service_id = getattr(service, "pk", service)
        for row in self.rows:
            if row.commune.pk == commune_id:
                return next(c for c in row.cells if c.service.pk == service_id)
        raise KeyError(commune_id)

    @property
    def convention_ids(self) -> set[int]:
        return {
            link.convention.pk for row in self.rows for c in row.cells for link in c.conventions
        }


def member_communes(territory, year: int, communes=None):
    """The communes members of the territory on at least one day of the year, in French order;
    ``communes`` (ids) keeps those only."""
    members = EpciMembership.objects.during(date(year, 1, 1), date(year, 12, 31)).filter(
        epci=territory
    )
    queryset = Organisation.objects.communes().filter(pk__in=members.values("member_id"))
    if communes is not None:
        queryset = queryset.filter(pk__in=communes)
    return list(queryset.order_by(FrenchOrder("name"), "pk"))


def concerned_conventions(services):
    """The conventions of the services, with what ``coverage`` and the parties' and services'
    presence read (terms and their avenants, termination, parties, service lines)."""
    return (
        Convention.objects.filter(services__service__in=services)
        .distinct()
        .select_related("termination")
        .prefetch_related(
            Prefetch("terms", queryset=Terms.objects.select_related("amendment")),
            Prefetch("parties", queryset=Party.objects.select_related("joined_by", "left_by")),
            Prefetch(
                "services",
                queryset=ConventionService.objects.select_related("added_by", "removed_by"),
            ),
        )
        .order_by("reference")
    )


def adhesion_of(convention: Convention, year: int):
    """What the convention says of adhesion in the year, as (status, parties, service lines):
    ADHERENT with the parties and lines present over the days it covers; PROJECT with those it
    will bind once in force (a party joining by an avenant not signed yet is a project too);
    None when it says nothing of the year (ended before it, or never signed and terminated)."""
    terms = list(convention.terms.all())
    last_day = date(year, 12, 31)
    if convention.status in NOT_YET_SIGNED:
        return AdhesionStatus.PROJECT, list(convention.parties.all()), convention.services.all()
    if convention.status not in BINDING:
        return None
    if convention.start_date > last_day:
        if convention.status in (Status.SIGNED, Status.IN_FORCE):
            return AdhesionStatus.PROJECT, list(convention.parties.all()), convention.services.all()
        return None
    covered = in_force.coverage(convention, year, terms)
    if covered is None:
        return None
    first, last = covered
    parties = in_force.parties_during(convention, first, last)
    lines = in_force.services_during(convention, first, last)
    return AdhesionStatus.ADHERENT, parties, lines


def joining_by_draft_avenant(convention: Convention) -> list:
    """The parties an avenant not signed yet brings into a convention already signed."""
    signed = Amendment.AmendmentStatus.SIGNED
    return [
        p
        for p in convention.parties.all()
        if p.joined_by_id is not None and p.joined_by.status != signed
    ]


def adhesion_matrix(territory, year: int, *, communes=None) -> Matrix:
    """The adhesion matrix of ``territory`` in ``year``: one row per member commune in the year
    (``communes``, a set of ids, keeps those only: a commune reader's), one column per service
    of the territory, both in French order; each cell's status, the conventions concerned and
    the scheme action if any; per service, the number of adhering communes among the rows."""
    rows_communes = member_communes(territory, year, communes)
    services = list(Service.objects.filter(territory=territory).order_by(FrenchOrder("name"), "pk"))
    # A cell per commune and service: 15 000 in the largest territory, built plainly.
    service_ids = [(service.pk, service) for service in services]
    cells = {
        (commune_id, service_id): Cell(commune, service)
        for commune_id, commune in ((c.pk, c) for c in rows_communes)
        for service_id, service in service_ids
    }
    by_service = {service.pk: service for service in services}
    # Each label translated once, not once a cell (get_…_display() translates every call).
    kinds, statuses, roles = (
        {value: str(label) for value, label in choices.choices}
        for choices in (ConventionKind, Status, PartyRole)
    )

    def mention(convention, status, party, service_ids):
        for service_id in service_ids:
            cell = cells.get((party.organisation_id, service_id))
            if cell is None:
                continue
            cell.conventions.append(
                ConventionLink(
                    convention=convention,
                    reference=convention.reference,
                    kind_label=kinds[convention.kind],
                    status_label=statuses[convention.status],
                    role=party.role,
                    role_label=roles[party.role],
                    status=status,
                )
            )
            if status == AdhesionStatus.ADHERENT or cell.status == AdhesionStatus.NONE:
                cell.status = status

    if cells:
        for convention in concerned_conventions(services):
            found = adhesion_of(convention, year)
            if found is None:
                continue
            status, parties, lines = found
            service_ids = [line.service_id for line in lines if line.service_id in by_service]
            for party in parties:
                mention(convention, status, party, service_ids)
            if status == AdhesionStatus.ADHERENT:
                every_line = [s.service_id for s in convention.services.all()]
                for party in joining_by_draft_avenant(convention):
                    mention(convention, AdhesionStatus.PROJECT, party, every_line)
        actions = (
            SchemeAction.objects.filter(
                scheme__territory=territory,
                scheme__first_year__lte=year,
                scheme__last_year__gte=year,
                service__in=services,
                status__in=LIVE_ACTIONS,
            )
            .prefetch_related(Prefetch("communes", queryset=Organisation.objects.only("pk")))
            .order_by("target_year", "pk")
        )
        for action in actions:
            for commune in action.communes.all():
                cell = cells.get((commune.pk, action.service_id))
                if cell is None or cell.action is not None:
                    continue
                cell.action = action
                if cell.status == AdhesionStatus.NONE:
                    cell.status = AdhesionStatus.PROJECT

    rows = [
        MatrixRow(commune, [cells[(commune.pk, service.pk)] for service in services])
        for commune in rows_communes
    ]
    totals = [
        ServiceTotal(
            service=service,
            adherents=sum(1 for row in rows if row.cells[i].status == AdhesionStatus.ADHERENT),
            projects=sum(1 for row in rows if row.cells[i].status == AdhesionStatus.PROJECT),
        )
        for i, service in enumerate(services)
    ]
    return Matrix(territory=territory, year=year, services=services, rows=rows, totals=totals)


def narrowed(matrix: Matrix, *, status: str = "", service: str = "") -> Matrix:
    """The matrix with one service's column only (``service``: its code) and the rows having at
    least one cell of ``status`` among the columns kept: the page's filters."""
    keep = [i for i, s in enumerate(matrix.services) if not service or s.code == service]
    rows = [MatrixRow(row.commune, [row.cells[i] for i in keep]) for row in matrix.rows]
    if status in AdhesionStatus.values:
        rows = [row for row in rows if any(cell.status == status for cell in row.cells)]
    return Matrix(
        territory=matrix.territory,
        year=matrix.year,
        services=[matrix.services[i] for i in keep],
        rows=rows,
        totals=[matrix.totals[i] for i in keep],
    )


def cell_text(cell: Cell) -> str:
    """A cell as the exports write it: its status, then the references of its conventions, or
    for a project without one, the scheme's action."""
    if cell.conventions:
        return f"{cell.label} ({', '.join(cell.references)})"
    if cell.action is not None and cell.status == AdhesionStatus.PROJECT:
        return gettext("%(label)s (schéma : %(action)s)") % {
            "label": cell.label,
            "action": cell.action.title,
        }
    return str(cell.label)


def as_dataset(matrix: Matrix) -> tablib.Dataset:
    """The matrix for the exports (CSV, XLSX): a row per commune, a column per service, then
    the number of adhering communes per service."""
    dataset = tablib.Dataset(
        headers=[gettext("Commune"), gettext("Code INSEE"), *(s.name for s in matrix.services)],
        title=gettext("Adhésions %(year)s") % {"year": matrix.year},
    )
    for row in matrix.rows:
        dataset.append(
            [row.commune.name, row.commune.insee_code or "", *(cell_text(c) for c in row.cells)]
        )
    dataset.append([gettext("Communes adhérentes"), "", *(t.adherents for t in matrix.totals)])
    return dataset
