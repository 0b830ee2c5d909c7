"""Writing a convention's records: creation with a generated reference, optimistic-locked
edits of a draft, and the records attached to it (opinions, fiche d'impact, agents, pieces)."""

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    Amendment,
    Convention,
    ReferenceCounter,
    Status,
    Terms,
)
from conventions.services import StaleVersion, TransitionRefused, fmt
from mutualisation.models import DEFAULT_REFERENCE_PREFIX
from mutualisation.services import last_change, next_in_sequence


def next_reference(year: int, prefix: str = DEFAULT_REFERENCE_PREFIX) -> str:
    """<prefix>-<year>-<nnn> (CONV-2026-001, or the territory's own prefix): consecutive within
    the territory and the year, without gaps, safe under concurrency (the shared sequence
    helper)."""
    number = next_in_sequence(ReferenceCounter, prefix=prefix, year=year)
    return f"{prefix}-{year}-{number:03d}"


def last_reference_given(territory, prefix: str) -> str | None:
    """The last convention reference ``territory`` was given with ``prefix`` (None: none)."""
    return (
        Convention.objects.filter(territory=territory, reference__startswith=f"{prefix}-")
        .order_by("-pk")
        .values_list("reference", flat=True)
        .first()
    )


@transaction.atomic
def convention_create(
    *, convention: Convention, terms: Terms, user=None, formsets=()
) -> Convention:
    """Save a new draft convention (built by a form) with its initial terms, and the validated
    inline formsets (parties, services) that hang on it."""
    convention.reference = next_reference(
        convention.start_date.year, convention.territory.effective_reference_prefix
    )
    convention.status = Status.DRAFT
    convention.created_by = user if user and user.is_authenticated else None
    convention.save()
    terms.convention = convention
    terms.amendment = None
    terms.effective_from = convention.start_date
    terms.save()
    for formset in formsets:
        formset.instance = convention
        formset.save()
    return convention


def bump_version(convention: Convention, expected_version: int | None) -> None:
    """Claim the next version, or raise StaleVersion if another save came first."""
    updated = Convention.objects.filter(pk=convention.pk, version=expected_version).update(
        version=F("version") + 1
    )
    if not updated:
        raise StaleVersion
    convention.version = expected_version + 1


@transaction.atomic
def convention_update(*, convention: Convention, expected_version: int | None, forms) -> None:
    """Save validated forms of a draft convention, unless someone saved it in the meantime
    (optimistic locking on ``version``: the second save is refused, nothing is written)."""
    bump_version(convention, expected_version)
    main, terms_form, *formsets = forms
    saved = main.save(commit=False)
    saved.version = convention.version
    saved.save()
    terms = terms_form.save(commit=False)
    terms.effective_from = saved.start_date
    terms.save()
    for formset in formsets:
        formset.save()


def stale_version_message(convention: Convention) -> str:
    who, when = last_change(convention)
    return _(
        "Cette convention a été modifiée par %(who)s (%(when)s) depuis l'ouverture du formulaire. "
        "Rien n'a été enregistré ; vos saisies sont conservées ci-dessous. Ouvrez la convention dans "
        "un autre onglet pour voir la dernière version, puis enregistrez à nouveau."
    ) % {"who": who, "when": when}


def bump(convention: Convention) -> None:
    """Mark the convention changed (optimistic locking of forms opened before)."""
    Convention.objects.filter(pk=convention.pk).update(version=F("version") + 1)


@transaction.atomic
def related_save(*, convention: Convention, form, user, record=None) -> None:
    """Save a record attached to the convention (opinion, impact sheet, agent, attachment)."""
    record = record if record is not None else form.save(commit=False)
    record.convention = convention
    if hasattr(record, "uploaded_by_id"):
        record.uploaded_by = user
    record.save()
    bump(convention)


def parties_without_deliberation(convention: Convention) -> list:
    """The convention's own parties (not those an avenant brings) whose assembly has not yet
    deliberated on it, by name: the rows the page adding deliberations pre-fills."""
    deliberated = convention.deliberations.filter(amendment__isnull=True).values("organisation")
    return [
        party.organisation
        for party in convention.parties.filter(joined_by__isnull=True)
        .exclude(organisation__in=deliberated)
        .select_related("organisation")
        .order_by("organisation__name")
    ]


def deliberations_closed_message(convention: Convention) -> str:
    return _(
        "La convention est %(status)s : les délibérations sur la convention ne s'ajoutent plus. "
        "Leur transmission s'enregistre depuis la liste des délibérations ; les délibérations "
        "d'un avenant, avec l'avenant."
    ) % {"status": convention.get_status_display().lower()}


@transaction.atomic
def deliberations_add(*, convention: Convention, formset) -> list:
    """Save the deliberations of a validated formset of new rows (those filled in) on the
    convention, while it may still change (brouillon, en consultation: the gate of its edit);
    raises TransitionRefused afterwards, RowsConflict if the database refuses the rows."""
    locked = Convention.objects.select_for_update().get(pk=convention.pk)
    if not locked.is_editable:
        raise TransitionRefused(locked.status, [deliberations_closed_message(locked)])
    formset.instance = locked
    saved = formset.save()
    bump(locked)
    return saved


def is_open_to_change(record) -> bool:
    """An opinion or a deliberation may be corrected or removed until the act it concerns is
    deliberated: the convention (still « brouillon » or « en consultation »), or a draft
    avenant. Afterwards the assemblies have voted on it; its history stays in any case."""
    if record.amendment_id:
        return record.amendment.status == Amendment.AmendmentStatus.DRAFT
    return record.convention.is_editable


def closed_message(record) -> str:
    if record.amendment_id:
        return _(
            "L'avenant n° %(number)s est signé : ses délibérations et avis ne se modifient plus."
        ) % {"number": record.amendment.number}
    return _(
        "La convention est %(status)s : les délibérations et avis sur lesquels elle a été "
        "délibérée ne se modifient plus que par avenant."
    ) % {"status": record.convention.get_status_display().lower()}


@transaction.atomic
def related_delete(*, convention: Convention, record) -> None:
    """Remove a wrongly entered opinion or deliberation (the history keeps it)."""
    if not is_open_to_change(record):
        raise TransitionRefused(convention.status, [closed_message(record)])
    record.delete()
    Convention.objects.filter(pk=convention.pk).update(version=F("version") + 1)


@transaction.atomic
def convention_publicity_record(
    *, convention: Convention, transmitted_on, acknowledgement_number: str, notified_on
) -> Convention:
    """Record the signed convention's transmission to the contrôle de légalité (date, accusé de
    réception) and its notification to the parties, which make it enforceable."""
    convention = Convention.objects.select_for_update().get(pk=convention.pk)
    missing = []
    if convention.status != Status.SIGNED:
        missing.append(
            _(
                "La transmission et la notification s'enregistrent sur une convention signée "
                "(statut : %(status)s)."
            )
            % {"status": convention.get_status_display()}
        )
    today = timezone.localdate()
    for label, day in ((_("transmission"), transmitted_on), (_("notification"), notified_on)):
        if day is None:
            continue
        if day > today:
            missing.append(_("La date de %(what)s ne peut être dans le futur.") % {"what": label})
        if convention.signature_date and day < convention.signature_date:
            missing.append(
                _("La %(what)s ne peut précéder la signature (%(date)s).")
                % {"what": label, "date": fmt(convention.signature_date)}
            )
    if missing:
        raise TransitionRefused(Status.SIGNED, missing)
    convention.transmitted_on = transmitted_on
    convention.acknowledgement_number = acknowledgement_number.strip()
    convention.notified_on = notified_on
    convention.version += 1
    convention.save(
        update_fields=["transmitted_on", "acknowledgement_number", "notified_on", "version"]
    )
    return convention
