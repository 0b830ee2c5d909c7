"""The legal lifecycle: brouillon → en consultation → délibérée → signée → en vigueur →
résiliée / échue. Each refused transition lists everything that is missing (TransitionRefused)."""

from datetime import date

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    Convention,
    Status,
    Termination,
)
from conventions.services import TransitionRefused, documents, fmt
from conventions.services.gates import enforceability_gaps, gaps_for, load
from conventions.services.in_force import notice_respected, terms_in_force

TRANSITIONS = {
    # name: (allowed from, target)
    "submit": ((Status.DRAFT,), Status.CONSULTATION),
    "withdraw": ((Status.CONSULTATION,), Status.DRAFT),
    "deliberate": ((Status.CONSULTATION,), Status.DELIBERATED),
    "sign": ((Status.DELIBERATED,), Status.SIGNED),
    "enter_into_force": ((Status.SIGNED,), Status.IN_FORCE),
    "expire": ((Status.IN_FORCE,), Status.EXPIRED),
}


def _check_from(convention: Convention, name: str) -> str:
    allowed, target = TRANSITIONS[name]
    if convention.status not in allowed:
        raise TransitionRefused(
            target,
            [
                _("Transition impossible depuis le statut « %(status)s ».")
                % {"status": convention.get_status_display()}
            ],
        )
    return target


def _locked(convention: Convention) -> Convention:
    return Convention.objects.select_for_update().get(pk=convention.pk)


@transaction.atomic
def convention_transition(
    convention: Convention, name: str, *, signature_date: date | None = None, on: date | None = None
) -> Convention:
    """Apply a named transition or raise TransitionRefused listing everything missing."""
    convention = _locked(convention)
    target = _check_from(convention, name)
    today = on or timezone.localdate()
    if name in ("submit", "deliberate", "sign"):
        missing = gaps_for(convention, target, signature_date=signature_date)
    elif name == "enter_into_force":
        missing = enforceability_gaps(load(convention), today)
        if today < convention.start_date:
            missing.append(
                _("La convention ne prend effet que le %(date)s.")
                % {"date": fmt(convention.start_date)}
            )
    elif name == "expire":
        terms = terms_in_force(convention, today)
        missing = []
        if terms is None or terms.end_date is None or terms.end_date >= today:
            missing.append(_("La convention n'est pas arrivée à échéance."))
        elif terms.tacit_renewal:
            missing.append(
                _("La convention est reconduite tacitement : résiliez-la pour y mettre fin.")
            )
    else:
        missing = []
    if missing:
        raise TransitionRefused(target, missing)
    convention.status = target
    fields = ["status", "version"]
    if name == "sign":
        convention.signature_date = signature_date
        fields.append("signature_date")
    convention.version += 1
    convention.save(update_fields=fields)
    if name == "sign":
        # What the parties signed is frozen with the signature, in the same transaction.
        documents.freeze(convention)
    return convention


@transaction.atomic
def convention_terminate(convention: Convention, termination: Termination) -> Convention:
    """Résiliation: the convention must be signed or in force; agents and assets are settled."""
    convention = _locked(convention)
    missing = []
    if convention.status not in (Status.SIGNED, Status.IN_FORCE):
        missing.append(
            _("Seule une convention signée ou en vigueur peut être résiliée (statut : %(status)s).")
            % {"status": convention.get_status_display()}
        )
    if not termination.agents_outcome.strip():
        missing.append(_("La situation des agents (réversibilité) doit être précisée."))
    if termination.effective_on < termination.notified_on:
        missing.append(_("La résiliation ne peut prendre effet avant sa notification."))
    # The notification is a fact already done, after the signature; the end comes once the
    # convention has taken effect (otherwise its billing silently vanishes).
    if termination.notified_on > timezone.localdate():
        missing.append(
            _(
                "La résiliation serait notifiée le %(date)s, date à venir : enregistrez-la une "
                "fois notifiée."
            )
            % {"date": fmt(termination.notified_on)}
        )
    if convention.signature_date and termination.notified_on < convention.signature_date:
        missing.append(
            _(
                "La résiliation ne peut être notifiée (%(date)s) avant la signature de la "
                "convention (%(signed)s)."
            )
            % {"date": fmt(termination.notified_on), "signed": fmt(convention.signature_date)}
        )
    if termination.effective_on < convention.start_date:
        missing.append(
            _(
                "La résiliation ne peut prendre effet (%(date)s) avant la prise d'effet de la "
                "convention (%(start)s)."
            )
            % {"date": fmt(termination.effective_on), "start": fmt(convention.start_date)}
        )
    if missing:
        raise TransitionRefused(Status.TERMINATED, missing)
    termination.convention = convention
    termination.notice_respected = notice_respected(
        convention, termination.notified_on, termination.effective_on
    )
    termination.save()
    convention.status = Status.TERMINATED
    convention.version += 1
    convention.save(update_fields=["status", "version"])
    return convention
