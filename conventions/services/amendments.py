"""Avenants: a draft with its own terms, its deliberations, and its signature once every
party approved it; the superseded terms remain for the dates before."""

from datetime import date, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    Amendment,
    Convention,
    ConventionKind,
    ConventionService,
    Deliberation,
    Party,
    PartyRole,
    StaffBody,
    Status,
    Terms,
)
from conventions.services import TransitionRefused, documents, fmt, names
from conventions.services.gates import (
    deliberation_gaps,
    is_member_of,
    load,
    service_gaps,
    terms_gaps,
)
from conventions.services.in_force import (
    initial_terms,
    parties_on,
    present_on,
    services_on,
    takes_effect,
    terms_in_force,
)
from conventions.services.transitions import _locked
from mutualisation.french import of


def membership_gaps(
    convention: Convention, effective_from: date, joining, leaving, new_services, removed
) -> list[str]:
    """What an avenant changing the parties or the services must respect: a joining commune is
    a member of the EPCI on the effective date (and joins as the type requires), the provider
    or the managing organisation never leaves, enough parties remain, and an added service is
    one of the organisation that makes it available (L5211-4-1, L5211-4-2)."""
    gaps = []
    present = parties_on(convention, effective_from)
    present_ids = {p.organisation_id for p in present}
    epcis = [p.organisation for p in present if p.organisation.is_epci]
    for organisation in joining:
        if (
            organisation.pk in present_ids
            or convention.parties.filter(organisation=organisation).exists()
        ):
            gaps.append(_("%(name)s est déjà partie à la convention.") % {"name": organisation})
        elif (
            organisation.is_commune
            and epcis
            and not is_member_of(organisation, epcis[0], effective_from)
        ):
            gaps.append(
                _("%(name)s n'est pas membre %(of_epci)s au %(date)s.")
                % {"name": organisation, "of_epci": of(epcis[0]), "date": fmt(effective_from)}
            )
    leaving_ids = {p.organisation_id for p in leaving}
    keeper = convention.managing_organisation
    for party in leaving:
        if party.role == PartyRole.PROVIDER or (keeper and party.organisation_id == keeper.pk):
            gaps.append(
                _(
                    "%(name)s fournit ou gère le service : sa sortie met fin à la convention, "
                    "c'est une résiliation, pas un avenant."
                )
                % {"name": party.organisation}
            )
    remaining = [p for p in present if p.organisation_id not in leaving_ids]
    if convention.kind == ConventionKind.SERVICE_COMMUN:
        if len(remaining) + len(joining) < 2:
            gaps.append(_("Un service commun réunit au moins deux membres."))
    elif not [p for p in remaining if p.role == PartyRole.BENEFICIARY] and not joining:
        gaps.append(_("Au moins un bénéficiaire doit rester partie à la convention."))
    if convention.kind == ConventionKind.SERVICE_COMMUN:
        owner = keeper
    else:
        providers = [p.organisation for p in present if p.role == PartyRole.PROVIDER]
        owner = providers[0] if providers else None
    for line in new_services:
        if line.service.territory_id != convention.territory_id:
            gaps.append(
                _(
                    "Le service « %(service)s » est un service d'un autre territoire : une "
                    "convention ne met à disposition que des services de son territoire."
                )
                % {"service": line.service.name}
            )
        if owner is not None and line.service.provider_id != owner.pk:
            gaps.append(
                _(
                    "Le service « %(service)s » relève %(of_provider)s, pas %(of_owner)s qui le "
                    "met à disposition."
                )
                % {
                    "service": line.service.name,
                    "of_provider": of(line.service.provider),
                    "of_owner": of(owner),
                }
            )
        if convention.services.filter(service=line.service).exists():
            gaps.append(
                _("Le service « %(service)s » figure déjà dans la convention.")
                % {"service": line.service.name}
            )
        if convention.kind == ConventionKind.SERVICE_COMMUN and not line.allocation_key:
            gaps.append(
                _("Clé de répartition manquante pour le service « %(service)s ».")
                % {"service": line.service.name}
            )
    still = [s for s in services_on(convention, effective_from) if s not in removed]
    if removed and not still and not new_services:
        gaps.append(_("Un avenant ne retire pas tous les services : résiliez la convention."))
    return gaps


@transaction.atomic
def amendment_create(
    *,
    convention: Convention,
    amendment: Amendment,
    terms: Terms,
    joining=(),
    leaving=(),
    new_services=(),
    removed_services=(),
) -> Amendment:
    """A draft avenant with its own terms, effective from a date after the convention starts;
    it may also bring in parties (``joining``: organisations), let parties leave (``leaving``:
    Party rows), add service lines (``new_services``: unsaved ConventionService) or withdraw
    some (``removed_services``), all from its effective date once signed."""
    convention = _locked(convention)
    missing = []
    if convention.status not in (Status.SIGNED, Status.IN_FORCE):
        missing.append(_("Un avenant modifie une convention signée ou en vigueur."))
    if amendment.effective_from <= convention.start_date:
        missing.append(_("Un avenant prend effet après la date de prise d'effet de la convention."))
    if convention.terms.filter(effective_from=amendment.effective_from).exists():
        missing.append(_("Des conditions s'appliquent déjà à partir de cette date."))
    in_force = terms_in_force(convention, amendment.effective_from) or initial_terms(convention)
    if in_force.end_date and amendment.effective_from > in_force.end_date:
        missing.append(
            _("La convention s'achève le %(date)s, avant la date d'effet de l'avenant.")
            % {"date": fmt(in_force.end_date)}
        )
    missing += membership_gaps(
        convention,
        amendment.effective_from,
        list(joining),
        list(leaving),
        list(new_services),
        list(removed_services),
    )
    if missing:
        raise TransitionRefused(Amendment.AmendmentStatus.DRAFT, missing)
    last = convention.amendments.order_by("-number").values_list("number", flat=True).first()
    amendment.convention = convention
    amendment.number = (last or 0) + 1
    amendment.save()
    previous = terms_in_force(convention, amendment.effective_from) or initial_terms(convention)
    terms.convention = convention
    terms.amendment = amendment
    terms.effective_from = amendment.effective_from
    terms.save()
    role = (
        PartyRole.MEMBER
        if convention.kind == ConventionKind.SERVICE_COMMUN
        else PartyRole.BENEFICIARY
    )
    for organisation in joining:
        Party.objects.create(
            convention=convention, organisation=organisation, role=role, joined_by=amendment
        )
    leaving_ids = {p.organisation_id for p in leaving}
    for party in leaving:
        Party.objects.filter(pk=party.pk).update(left_by=amendment)
    for line in new_services:
        line.convention = convention
        line.added_by = amendment
        line.save()
    removed_ids = {line.pk for line in removed_services}
    for line in removed_services:
        ConventionService.objects.filter(pk=line.pk).update(removed_by=amendment)
    # The forecasts carry over, except those of a party leaving or a service withdrawn; those
    # of a party or service joining are entered on the avenant (amendment_forecasts).
    for forecast in previous.forecasts.all():
        if forecast.beneficiary_id in leaving_ids or forecast.service_id in removed_ids:
            continue
        forecast.pk = None
        forecast.terms = terms
        forecast.save()
    return amendment


def changes_staff(amendment: Amendment) -> bool:
    """An avenant of a service commun that changes its members or its services changes the
    agents' situation (fiche d'impact, CST opinions: L5211-4-2)."""
    return amendment.convention.kind == ConventionKind.SERVICE_COMMUN and (
        amendment.joining_parties.exists()
        or amendment.leaving_parties.exists()
        or amendment.added_services.exists()
        or amendment.removed_services.exists()
    )


def amendment_staff_gaps(amendment: Amendment, parties, deliberations) -> list[str]:
    """For a service commun avenant that changes members or services: the fiche d'impact is
    updated, then each party's CST gives its opinion on the avenant, before its deliberation
    (L5211-4-2: « la convention et ses annexes sont soumises à l'avis du ou des comités
    sociaux territoriaux compétents »)."""
    if not changes_staff(amendment):
        return []
    gaps = []
    if amendment.impact_established_on is None or not amendment.impact_summary.strip():
        gaps.append(
            _(
                "Avenant n° %(number)s : fiche d'impact mise à jour manquante (date et effets sur "
                "l'organisation, la rémunération et les droits acquis des agents, L5211-4-2)."
            )
            % {"number": amendment.number}
        )
    opinions = list(
        amendment.opinions.select_related("organisation").filter(
            body__in=(StaffBody.CST, StaffBody.CST_CDG)
        )
    )
    have = {o.organisation_id for o in opinions}
    lacking = [p.organisation for p in parties if p.organisation_id not in have]
    if lacking:
        gaps.append(
            _(
                "Avis du comité social territorial sur l'avenant n° %(number)s manquant pour : %(names)s."
            )
            % {"number": amendment.number, "names": names(lacking)}
        )
    if amendment.impact_established_on:
        early = [o for o in opinions if o.date < amendment.impact_established_on]
        if early:
            gaps.append(
                _(
                    "La fiche d'impact de l'avenant, mise à jour le %(date)s, doit précéder l'avis "
                    "des instances : avis du %(opinions)s."
                )
                % {
                    "date": fmt(amendment.impact_established_on),
                    "opinions": ", ".join(f"{fmt(o.date)} ({o.organisation})" for o in early),
                }
            )
    first = {}
    for deliberation in deliberations:
        day = first.get(deliberation.organisation_id)
        first[deliberation.organisation_id] = (
            min(day, deliberation.date) if day else deliberation.date
        )
    for opinion in opinions:
        deliberated = first.get(opinion.organisation_id)
        if deliberated and opinion.date > deliberated:
            gaps.append(
                _(
                    "L'avis de l'instance %(of_organisation)s (%(date)s) doit précéder sa "
                    "délibération sur l'avenant (%(deliberated)s)."
                )
                % {
                    "of_organisation": of(opinion.organisation),
                    "date": fmt(opinion.date),
                    "deliberated": fmt(deliberated),
                }
            )
    return gaps


@transaction.atomic
def amendment_sign(amendment: Amendment, *, signature_date: date) -> Amendment:
    """Sign an avenant once every party approved it by deliberation; its terms then apply from
    its effective date, and the superseded ones remain for earlier dates."""
    amendment = Amendment.objects.select_for_update().get(pk=amendment.pk)
    convention = amendment.convention
    # Every party concerned deliberates: those present on the effective date (a party leaving
    # included) and those joining.
    parties = [
        p
        for p in convention.parties.select_related("organisation", "joined_by", "left_by")
        if p.joined_by_id == amendment.pk
        or present_on(
            p, amendment.effective_from - timedelta(days=1), start="joined_by", end="left_by"
        )
        or present_on(p, amendment.effective_from, start="joined_by", end="left_by")
    ]
    deliberations = list(amendment.deliberations.select_related("organisation"))
    missing = []
    if amendment.status != Amendment.AmendmentStatus.DRAFT:
        missing.append(_("Cet avenant est déjà signé."))
    if convention.status not in (Status.SIGNED, Status.IN_FORCE):
        missing.append(
            _("La convention est « %(status)s » : un avenant ne peut plus être signé.")
            % {"status": convention.get_status_display()}
        )
    missing += deliberation_gaps(
        parties,
        deliberations,
        what=_("l'avenant n° %(number)s") % {"number": amendment.number},
        rejected=_("L'avenant n° %(number)s a été rejeté par : %(names)s.")
        % {"number": amendment.number, "names": "%(names)s"},
    )
    data = load(convention)
    data.terms = amendment.terms
    data.forecasts = list(amendment.terms.forecasts.select_related("beneficiary", "service"))
    # The terms are checked against the parties and services as the avenant leaves them.
    data.parties = [
        p
        for p in parties
        if p.left_by_id != amendment.pk
        and (p.left_by_id is None or not takes_effect(p.left_by, amendment.effective_from))
    ]
    data.services = [
        line
        for line in convention.services.select_related(
            "service__provider", "unit_type", "added_by", "removed_by"
        )
        if line.removed_by_id != amendment.pk
        and (
            line.added_by_id in (None, amendment.pk)
            or takes_effect(line.added_by, amendment.effective_from)
        )
        and (
            line.removed_by_id is None
            or not takes_effect(line.removed_by, amendment.effective_from)
        )
    ]
    missing += terms_gaps(data)
    missing += service_gaps(data)
    missing += amendment_staff_gaps(amendment, parties, deliberations)
    if signature_date > timezone.localdate():
        missing.append(_("La date de signature ne peut être dans le futur."))
    late = [d for d in deliberations if d.date > signature_date]
    if late:
        missing.append(
            _("La signature ne peut précéder les délibérations n° %(numbers)s.")
            % {"numbers": ", ".join(d.number for d in late)}
        )
    if missing:
        raise TransitionRefused(Amendment.AmendmentStatus.SIGNED, missing)
    amendment.status = Amendment.AmendmentStatus.SIGNED
    amendment.signature_date = signature_date
    amendment.save(update_fields=["status", "signature_date"])
    documents.freeze(convention, amendment=amendment)
    Convention.objects.filter(pk=convention.pk).update(version=F("version") + 1)
    return amendment


@transaction.atomic
def amendment_deliberation_add(*, amendment: Amendment, deliberation: Deliberation) -> None:
    deliberation.convention = amendment.convention
    deliberation.amendment = amendment
    deliberation.save()
