"""The schéma de mutualisation (CGCT L5211-39-1): its consultation of the municipal councils,
its approval by the EPCI's council, and the progress of its actions.

The councils of the member communes have three months from the transmission of the project to
give their opinion; a council that has not deliberated by then is deemed to have given a
favourable one. The EPCI's council approves the scheme once every commune has given its opinion
or that period is over.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    ActionStatus,
    Horizon,
    Party,
    Scheme,
    SchemeAction,
    SchemeStatus,
    Status,
)
from conventions.services import TransitionRefused, fmt, names
from conventions.services.in_force import add_months, under_signed_act
from mutualisation.collation import french_sort_key
from mutualisation.models import EpciMembership, Organisation
from mutualisation.validators import validate_plausible_date

OPINION_MONTHS = 3  # L5211-39-1: «dans un délai de trois mois»


def opinion_deadline(scheme: Scheme) -> date | None:
    """The last day for the municipal councils' opinions (None before the transmission)."""
    if scheme.submitted_on is None:
        return None
    return add_months(scheme.submitted_on, OPINION_MONTHS)


def member_communes(scheme: Scheme, on: date) -> list[Organisation]:
    """The communes members of the scheme's territory on a date, in French order (« Cébazat »
    before « Ceyrat », whatever the database's collation)."""
    communes = Organisation.objects.filter(
        pk__in=EpciMembership.objects.current(on)
        .filter(epci_id=scheme.territory_id)
        .values("member_id")
    )
    return sorted(communes, key=lambda commune: french_sort_key(commune.name))


@dataclass(frozen=True)
class CommuneOpinion:
    commune: Organisation
    opinion: str  # an Opinion value, "DEEMED" (tacitly favourable) or "" (awaited)
    label: str
    on: date | None


DEEMED = "DEEMED"


def consultation(scheme: Scheme, on: date) -> list[CommuneOpinion]:
    """Each member commune's opinion on the scheme as of ``on``: given (an opinion dated by
    ``on`` and within the three months), deemed favourable once the three months are over (an
    opinion given later changes nothing: it is noted as late), or still awaited."""
    if scheme.submitted_on is None:
        return []
    given = {opinion.commune_id: opinion for opinion in scheme.opinions.all()}
    deadline = opinion_deadline(scheme)
    found = []
    for commune in member_communes(scheme, scheme.submitted_on):
        opinion = given.get(commune.pk)
        if opinion is not None and opinion.date <= min(on, deadline):
            found.append(
                CommuneOpinion(
                    commune, opinion.opinion, opinion.get_opinion_display(), opinion.date
                )
            )
        elif on > deadline:
            if opinion is not None and opinion.date > deadline:
                label = _("Réputé favorable (avis rendu hors délai le %s)") % fmt(opinion.date)
            else:
                label = _("Réputé favorable (aucun avis dans les trois mois)")
            found.append(CommuneOpinion(commune, DEEMED, label, None))
        else:
            found.append(CommuneOpinion(commune, "", _("Avis attendu"), None))
    return found


def date_gaps(on: date) -> list[str]:
    try:
        validate_plausible_date(on)
    except ValidationError as error:
        return list(error.messages)
    return []


def submit_gaps(scheme: Scheme, on: date | None = None) -> list[str]:
    """What prevents transmitting the project to the councils (on ``on``, when given)."""
    gaps = []
    if scheme.status != SchemeStatus.DRAFT:
        gaps.append(_("Le schéma a déjà été transmis aux communes."))
    if not scheme.actions.exists():
        gaps.append(_("Le projet de schéma ne prévoit aucune action."))
    if on is not None:
        gaps.extend(date_gaps(on))
        if on < date(scheme.first_year, 1, 1):
            # L5211-39-1: the report follows the renewal of the councils, the mandate's start.
            gaps.append(
                _(
                    "La transmission (%(on)s) ne peut avoir lieu avant le début du mandat "
                    "(%(first)s)."
                )
                % {"on": fmt(on), "first": scheme.first_year}
            )
        elif not member_communes(scheme, on):
            gaps.append(
                _("Le territoire n'a aucune commune membre le %s : personne à consulter.") % fmt(on)
            )
    return gaps


def scheme_submit(scheme: Scheme, *, on: date) -> Scheme:
    """Transmit the project to the municipal councils for their opinion."""
    with transaction.atomic():
        scheme = Scheme.objects.select_for_update().get(pk=scheme.pk)
        gaps = submit_gaps(scheme, on)
        if gaps:
            raise TransitionRefused(SchemeStatus.CONSULTATION, gaps)
        scheme.status = SchemeStatus.CONSULTATION
        scheme.submitted_on = on
        scheme.save(update_fields=["status", "submitted_on"])
    return scheme


def adopt_gaps(scheme: Scheme, on: date) -> list[str]:
    """What prevents the council from approving the scheme on ``on``."""
    if scheme.status == SchemeStatus.ADOPTED:
        return [_("Le schéma est déjà approuvé.")]
    if scheme.status != SchemeStatus.CONSULTATION:
        return [
            _(
                "Le projet de schéma doit d'abord être transmis aux conseils municipaux pour "
                "avis (L5211-39-1)."
            )
        ]
    gaps = date_gaps(on)
    if on < scheme.submitted_on:
        gaps.append(
            _("La délibération ne peut précéder la transmission du projet aux communes (%s).")
            % fmt(scheme.submitted_on)
        )
    awaited = [entry.commune for entry in consultation(scheme, on) if not entry.opinion]
    if awaited:
        gaps.append(
            _(
                "Avis attendu des conseils municipaux de : %(communes)s. Sans avis, il est "
                "réputé favorable après le %(deadline)s."
            )
            % {"communes": names(awaited), "deadline": fmt(opinion_deadline(scheme))}
        )
    return gaps


def scheme_adopt(scheme: Scheme, *, on: date, number: str) -> Scheme:
    """The EPCI's council approves the scheme; refused with everything missing."""
    with transaction.atomic():
        scheme = Scheme.objects.select_for_update().get(pk=scheme.pk)
        gaps = adopt_gaps(scheme, on)
        if not number.strip():
            gaps.append(_("Indiquez le numéro de la délibération d'approbation."))
        if gaps:
            raise TransitionRefused(SchemeStatus.ADOPTED, gaps)
        scheme.status = SchemeStatus.ADOPTED
        scheme.adopted_on = on
        scheme.deliberation_number = number.strip()
        scheme.save(update_fields=["status", "adopted_on", "deliberation_number"])
    return scheme


# --- progress ------------------------------------------------------------------------------------

IN_FORCE_OR_SIGNED = (Status.SIGNED, Status.IN_FORCE)


@dataclass(frozen=True)
class ActionProgress:
    action: SchemeAction
    communes: list
    conventions: list
    realised_communes: int  # communes party to a signed or in-force convention of the action


@dataclass(frozen=True)
class HorizonProgress:
    horizon: str
    label: str
    actions: list[ActionProgress]
    counts: dict[str, int]  # ActionStatus value → number of actions


@dataclass(frozen=True)
class SchemeProgress:
    scheme: Scheme
    horizons: list[HorizonProgress]
    counts: dict[str, int]
    expected_fte_change: Decimal  # the actions not abandoned
    expected_cost_change: Decimal


def scheme_progress(scheme: Scheme, *, communes=None) -> SchemeProgress:
    """The scheme's actions by horizon with their conventions; ``communes`` (ids) keeps only the
    actions concerning those communes (a commune reader's)."""
    today = timezone.localdate()
    actions = list(
        scheme.actions.select_related("service").prefetch_related(
            "communes",
            Prefetch("conventions__parties", Party.objects.select_related("joined_by", "left_by")),
        )
    )
    if communes is not None:
        allowed = set(communes)
        actions = [a for a in actions if allowed & {c.pk for c in a.communes.all()}]
    by_horizon = {value: [] for value in Horizon.values}
    for action in actions:
        concerned = sorted(action.communes.all(), key=lambda c: french_sort_key(c.name))
        if communes is not None:
            concerned = [c for c in concerned if c.pk in allowed]
        conventions = sorted(action.conventions.all(), key=lambda c: c.reference)
        realised = {
            party.organisation_id
            for convention in conventions
            if convention.status in IN_FORCE_OR_SIGNED
            for party in convention.parties.all()
            if under_signed_act(party, today)
        }
        by_horizon[action.horizon].append(
            ActionProgress(
                action,
                concerned,
                conventions,
                sum(1 for commune in concerned if commune.pk in realised),
            )
        )
    horizons = []
    for value, label in Horizon.choices:
        entries = by_horizon[value]
        horizons.append(
            HorizonProgress(
                value,
                label,
                entries,
                {
                    status: sum(1 for e in entries if e.action.status == status)
                    for status in ActionStatus.values
                },
            )
        )
    kept = [a for a in actions if a.status != ActionStatus.ABANDONED]
    return SchemeProgress(
        scheme,
        horizons,
        {status: sum(1 for a in actions if a.status == status) for status in ActionStatus.values},
        sum((a.expected_fte_change for a in kept), start=Decimal("0.00")),
        sum((a.expected_cost_change for a in kept), start=Decimal("0.00")),
    )


def current_scheme(territory, year: int) -> Scheme | None:
    """The territory's scheme whose mandate covers ``year``: the approved one, else the latest
    started (a project)."""
    covering = Scheme.objects.filter(territory=territory, first_year__lte=year, last_year__gte=year)
    return (
        covering.filter(status=SchemeStatus.ADOPTED).order_by("-first_year").first()
        or covering.order_by("-first_year").first()
    )


def overlapping(scheme: Scheme):
    """The territory's other schemes whose mandate overlaps this one's (one scheme a mandate)."""
    return (
        Scheme.objects.filter(
            territory_id=scheme.territory_id,
            first_year__lte=scheme.last_year,
            last_year__gte=scheme.first_year,
        )
        .exclude(pk=scheme.pk)
        .order_by("first_year")
    )


def is_locked(scheme: Scheme) -> bool:
    """Once transmitted to the councils, the project they give their opinion on (and then the
    scheme the council approved) no longer changes: only the progress of its actions does."""
    return scheme.status != SchemeStatus.DRAFT


def mandate_communes(scheme: Scheme):
    """The communes members of the scheme's territory at some time during its mandate: those an
    action may concern."""
    return Organisation.objects.filter(
        pk__in=EpciMembership.objects.during(
            date(scheme.first_year, 1, 1), date(scheme.last_year, 12, 31)
        )
        .filter(epci_id=scheme.territory_id)
        .values("member_id")
    )
