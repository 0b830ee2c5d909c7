"""Avenants: a draft with its own terms, its deliberations, and its signature once every
party approved it; the superseded terms remain for the dates before."""

from datetime import date

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    Amendment,
    Convention,
    Deliberation,
    Status,
    Terms,
)
from conventions.services import TransitionRefused, documents, fmt
from conventions.services.gates import deliberation_gaps, load, terms_gaps
from conventions.services.in_force import initial_terms, terms_in_force
from conventions.services.transitions import _locked


@transaction.atomic
def amendment_create(*, convention: Convention, amendment: Amendment, terms: Terms) -> Amendment:
    """A draft avenant with its own terms, effective from a date after the convention starts."""
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
    for forecast in previous.forecasts.all():
        forecast.pk = None
        forecast.terms = terms
        forecast.save()
    return amendment


@transaction.atomic
def amendment_sign(amendment: Amendment, *, signature_date: date) -> Amendment:
    """Sign an avenant once every party approved it by deliberation; its terms then apply from
    its effective date, and the superseded ones remain for earlier dates."""
    amendment = Amendment.objects.select_for_update().get(pk=amendment.pk)
    convention = amendment.convention
    parties = list(convention.parties.select_related("organisation"))
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
    missing += terms_gaps(data)
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
