"""Writes on conventions: creation with a generated reference, optimistic-locked edits, the legal
lifecycle (brouillon → en consultation → délibérée → signée → en vigueur → résiliée / échue),
avenants and termination. Each refused transition lists, in French, everything that is missing.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from conventions.models import (
    AllocationKey,
    Amendment,
    Convention,
    ConventionKind,
    Deliberation,
    Direction,
    ImpactSheet,
    PartyRole,
    ReferenceCounter,
    SettlementMode,
    StaffBody,
    Status,
    Termination,
    Terms,
    Vote,
)
from mutualisation.models import (
    EpciMembership,
    OrganisationKind,
    PopulationRecord,
    TaxRegime,
)

# Comités sociaux territoriaux replaced comités techniques on this date (loi 2019-828).
CST_FROM = date(2023, 1, 1)
# D5211-16: « Cette périodicité ne peut être supérieure à un an. »
MAX_PERIODICITY_MONTHS = 12
# Kinds whose reimbursement follows D5211-16 (and its practice for services communs).
COSTED_KINDS = (ConventionKind.MISE_A_DISPOSITION, ConventionKind.SERVICE_COMMUN)


class TransitionRefused(Exception):
    """A legal transition refused, with the list of what is missing (French sentences)."""

    def __init__(self, target, missing):
        self.target = target
        self.missing = list(missing)
        super().__init__("; ".join(self.missing))


class StaleVersion(Exception):
    """Someone else saved the convention since the form was loaded (optimistic locking)."""


def fmt(day: date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def names(organisations) -> str:
    return ", ".join(sorted(str(o) for o in organisations))


# --- references and creation -------------------------------------------------------------------


def next_reference(year: int) -> str:
    """CONV-<year>-<nnn>, without gaps, safe under concurrency (row lock on the year's counter)."""
    ReferenceCounter.objects.get_or_create(year=year)
    counter = ReferenceCounter.objects.select_for_update().get(year=year)
    counter.last_number = F("last_number") + 1
    counter.save(update_fields=["last_number"])
    counter.refresh_from_db()
    return f"CONV-{year}-{counter.last_number:03d}"


@transaction.atomic
def convention_create(
    *, convention: Convention, terms: Terms, user=None, formsets=()
) -> Convention:
    """Save a new draft convention (built by a form) with its initial terms, and the validated
    inline formsets (parties, services) that hang on it."""
    convention.reference = next_reference(convention.start_date.year)
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
    latest = convention.history.select_related("history_user").first()
    who = latest.history_user if latest and latest.history_user else _("un autre utilisateur")
    when = (
        date_format(timezone.localtime(latest.history_date), "SHORT_DATETIME_FORMAT")
        if latest
        else ""
    )
    return _(
        "Cette convention a été modifiée par %(who)s (%(when)s) depuis l'ouverture du formulaire. "
        "Rien n'a été enregistré ; vos saisies sont conservées ci-dessous. Ouvrez la convention dans "
        "un autre onglet pour voir la dernière version, puis enregistrez à nouveau."
    ) % {"who": who, "when": when}


@transaction.atomic
def related_save(*, convention: Convention, form, user) -> None:
    """Save a record attached to the convention (opinion, impact sheet, agent, attachment)."""
    record = form.save(commit=False)
    record.convention = convention
    if hasattr(record, "uploaded_by_id"):
        record.uploaded_by = user
    record.save()
    Convention.objects.filter(pk=convention.pk).update(version=F("version") + 1)


# --- reading terms -----------------------------------------------------------------------------


def is_applicable(terms: Terms) -> bool:
    """Initial terms, or those of a signed avenant (a draft avenant changes nothing)."""
    return terms.amendment_id is None or terms.amendment.status == Amendment.AmendmentStatus.SIGNED


def terms_in_force(convention: Convention, on: date) -> Terms | None:
    """The terms applicable on a date: initial terms, superseded by each signed avenant from its
    effective date; None before the start. Draft avenants never apply. This is the one rule
    (on ``convention.terms.all()``, so a prefetch of ``terms__amendment`` spares the queries)."""
    candidates = [t for t in convention.terms.all() if t.effective_from <= on and is_applicable(t)]
    return max(candidates, key=lambda t: t.effective_from) if candidates else None


def applicable_terms(convention: Convention, on: date) -> Terms:
    """``terms_in_force``, or before the start the initial terms."""
    return terms_in_force(convention, on) or next(
        t for t in convention.terms.all() if t.amendment_id is None
    )


def terms_segments(
    convention: Convention, first: date, last: date
) -> list[tuple[date, date, Terms]]:
    """The runs of days from ``first`` to ``last`` under one set of terms: a signed avenant
    effective inside the range starts a new run."""
    changes = sorted(
        {
            t.effective_from
            for t in convention.terms.all()
            if first < t.effective_from <= last and is_applicable(t)
        }
    )
    starts = [first, *changes]
    ends = [day - timedelta(days=1) for day in changes] + [last]
    return [
        (start, end, applicable_terms(convention, start))
        for start, end in zip(starts, ends, strict=True)
    ]


def convention_end(convention: Convention, year: int) -> date | None:
    """Last day covered in or before ``year``: the termination date, else the end date of the
    terms in force at the year's end unless they are tacitly renewed."""
    ends = []
    terms = applicable_terms(convention, date(year, 12, 31))
    if terms.end_date and not terms.tacit_renewal:
        ends.append(terms.end_date)
    # A missing reverse one-to-one raises RelatedObjectDoesNotExist, an AttributeError.
    termination = getattr(convention, "termination", None)
    if termination is not None:
        ends.append(termination.effective_on)
    return min(ends) if ends else None


def coverage(convention: Convention, year: int) -> tuple[date, date] | None:
    """The part of ``year`` the convention applies to (start, avenants' end dates, tacit
    renewal, termination), or None: the one rule for billing and for the « Année
    d'application » filter."""
    first = max(date(year, 1, 1), convention.start_date)
    end = convention_end(convention, year)
    last = min(date(year, 12, 31), end) if end else date(year, 12, 31)
    return (first, last) if first <= last else None


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


# --- legal gates -------------------------------------------------------------------------------


@dataclass
class Loaded:
    """Everything the gates read, loaded once."""

    convention: Convention
    parties: list
    services: list
    terms: Terms
    forecasts: list
    deliberations: list
    opinions: list
    impact_sheet: ImpactSheet | None


def load(convention: Convention) -> Loaded:
    terms = initial_terms(convention)
    try:
        impact_sheet = convention.impact_sheet
    except ImpactSheet.DoesNotExist:
        impact_sheet = None
    return Loaded(
        convention=convention,
        parties=list(convention.parties.select_related("organisation")),
        services=list(convention.services.select_related("service__provider", "unit_type")),
        terms=terms,
        forecasts=list(terms.forecasts.select_related("beneficiary", "service")),
        deliberations=list(
            convention.deliberations.filter(amendment__isnull=True).select_related("organisation")
        ),
        opinions=list(
            convention.opinions.filter(amendment__isnull=True).select_related("organisation")
        ),
        impact_sheet=impact_sheet,
    )


def is_member_of(commune, epci, on: date) -> bool:
    return EpciMembership.objects.current(on).filter(member=commune, epci=epci).exists()


def party_gaps(data: Loaded) -> list[str]:
    convention, parties = data.convention, data.parties
    gaps = []
    providers = [p.organisation for p in parties if p.role == PartyRole.PROVIDER]
    beneficiaries = [p.organisation for p in parties if p.role == PartyRole.BENEFICIARY]
    members = [p.organisation for p in parties if p.role == PartyRole.MEMBER]
    kind = convention.kind

    if kind == ConventionKind.SERVICE_COMMUN:
        epcis = [o for o in members if o.is_epci]
        if providers or beneficiaries:
            gaps.append(
                _(
                    "Les parties d'un service commun en sont membres (ni prestataire ni bénéficiaire)."
                )
            )
        if len(epcis) != 1:
            gaps.append(
                _(
                    "Un service commun réunit un EPCI à fiscalité propre et des communes membres : l'EPCI doit être membre (L5211-4-2)."
                )
            )
        if len(members) < 2:
            gaps.append(_("Un service commun réunit au moins deux membres."))
        if epcis:
            outsiders = [
                o
                for o in members
                if o.is_commune and not is_member_of(o, epcis[0], convention.start_date)
            ]
            if outsiders:
                gaps.append(
                    _("Communes non membres de %(epci)s à la date de prise d'effet : %(names)s.")
                    % {"epci": epcis[0], "names": names(outsiders)}
                )
        managing = convention.managing_organisation
        if managing is None:
            gaps.append(_("Organisation gestionnaire du service commun non désignée."))
        elif managing not in members:
            gaps.append(_("L'organisation gestionnaire doit être membre du service commun."))
        return gaps

    if members:
        gaps.append(_("Le rôle « membre » est réservé aux services communs."))
    if len(providers) != 1:
        gaps.append(_("Un prestataire et un seul est requis."))
    if not beneficiaries:
        gaps.append(_("Au moins un bénéficiaire est requis."))
    if (
        kind in (ConventionKind.MISE_A_DISPOSITION, ConventionKind.MISE_EN_COMMUN_BIENS)
        and len(providers) == 1
    ):
        provider = providers[0]
        every = [provider, *beneficiaries]
        communes = [o for o in every if o.is_commune]
        epcis = [o for o in every if o.is_epci]
        if not epcis and len(communes) >= 2:
            gaps.append(
                _(
                    "Une mise à disposition de services (L5211-4-1) lie un EPCI et ses communes "
                    "membres, pas deux communes entre elles : pour une coopération entre communes, "
                    "utilisez une prestation de services (L5111-1) ou une entente (L5221-1)."
                )
            )
        elif direction_of(data.parties) is None:
            gaps.append(
                _(
                    "Une mise à disposition va de l'EPCI vers ses communes membres (descendante) ou "
                    "d'une commune vers son EPCI (ascendante)."
                )
            )
        else:
            epci = epcis[0]
            outsiders = [c for c in communes if not is_member_of(c, epci, convention.start_date)]
            if outsiders:
                gaps.append(
                    _("Communes non membres de %(epci)s à la date de prise d'effet : %(names)s.")
                    % {"epci": epci, "names": names(outsiders)}
                )
    return gaps


def service_provider_gaps(data: Loaded) -> list[str]:
    """The services made available are those of the party that makes them available
    (L5211-4-1: the provider's services; L5211-4-2: the service commun is the managing
    organisation's): a MAD by the Métropole of a service Clermont-Ferrand provides is refused."""
    convention = data.convention
    if convention.kind == ConventionKind.SERVICE_COMMUN:
        owner = convention.managing_organisation
    elif convention.kind == ConventionKind.MISE_A_DISPOSITION:
        providers = [p.organisation for p in data.parties if p.role == PartyRole.PROVIDER]
        owner = providers[0] if len(providers) == 1 else None
    else:
        return []
    if owner is None:
        return []  # the missing provider or manager is reported by party_gaps
    return [
        _(
            "Le service « %(service)s » relève de %(provider)s, pas de %(owner)s qui le met à "
            "disposition : choisissez un service de %(owner)s."
        )
        % {"service": line.service.name, "provider": line.service.provider, "owner": owner}
        for line in data.services
        if line.service.provider_id != owner.pk
    ]


def service_gaps(data: Loaded) -> list[str]:
    convention, services = data.convention, data.services
    gaps = []
    if not services and convention.kind != ConventionKind.MAD_AGENT:
        gaps.append(_("Aucun service couvert par la convention."))
    gaps += service_provider_gaps(data)
    if convention.kind == ConventionKind.SERVICE_COMMUN:
        members = [p.organisation for p in data.parties]
        for line in services:
            if not line.allocation_key:
                gaps.append(
                    _("Clé de répartition manquante pour le service « %(service)s ».")
                    % {"service": line.service}
                )
            elif line.allocation_key == AllocationKey.POPULATION:
                known = set(
                    PopulationRecord.objects.filter(
                        organisation__in=members, vintage=line.population_vintage
                    ).values_list("organisation_id", flat=True)
                )
                lacking = [o for o in members if o.pk not in known and not o.is_epci]
                if lacking:
                    gaps.append(
                        _("Population du millésime %(vintage)s manquante pour : %(names)s.")
                        % {"vintage": line.population_vintage, "names": names(lacking)}
                    )
            elif line.allocation_key == AllocationKey.FIXED_SHARES:
                by_year: dict[int, list] = {}
                for forecast in data.forecasts:
                    if forecast.service_id == line.pk:
                        by_year.setdefault(forecast.year, []).append(
                            forecast.fixed_share_percent or 0
                        )
                if not by_year:
                    gaps.append(
                        _("Parts fixes manquantes pour le service « %(service)s ».")
                        % {"service": line.service}
                    )
                for year, shares in sorted(by_year.items()):
                    if sum(shares) != 100:
                        gaps.append(
                            _(
                                "Les parts fixes du service « %(service)s » pour %(year)s totalisent %(sum)s %% au lieu de 100 %%."
                            )
                            % {"service": line.service, "year": year, "sum": sum(shares)}
                        )
    return gaps


def terms_gaps(data: Loaded) -> list[str]:
    convention, terms = data.convention, data.terms
    gaps = []
    if convention.kind in COSTED_KINDS and terms.periodicity_months > MAX_PERIODICITY_MONTHS:
        gaps.append(
            _(
                "Périodicité de remboursement de %(months)s mois : elle ne peut dépasser 12 mois (D5211-16)."
            )
            % {"months": terms.periodicity_months}
        )
    if convention.kind in COSTED_KINDS and not terms.unit_cost_method.strip():
        gaps.append(_("Méthode de détermination du coût unitaire non définie (D5211-16)."))
    if convention.kind == ConventionKind.MISE_A_DISPOSITION:
        beneficiaries = [p.organisation for p in data.parties if p.role == PartyRole.BENEFICIARY]
        have = {(f.service_id, f.beneficiary_id) for f in data.forecasts}
        for line in data.services:
            lacking = [b for b in beneficiaries if (line.pk, b.pk) not in have]
            if lacking:
                gaps.append(
                    _(
                        "Prévision d'utilisation en unités manquante pour le service « %(service)s » : %(names)s (D5211-16)."
                    )
                    % {"service": line.service, "names": names(lacking)}
                )
    if terms.settlement_mode in (SettlementMode.AC_IMPUTATION, SettlementMode.MIXED):
        if terms.instalment_count:
            gaps.append(
                _(
                    "Réglée sur l'attribution de compensation, la prévision n'est pas appelée en "
                    "acomptes : le nombre d'acomptes doit être 0 (la convention en promet "
                    "%(count)s)."
                )
                % {"count": terms.instalment_count}
            )
        if convention.kind != ConventionKind.SERVICE_COMMUN:
            gaps.append(
                _(
                    "L'imputation sur l'attribution de compensation est réservée aux services communs (L5211-4-2)."
                )
            )
        epcis = [p.organisation for p in data.parties if p.organisation.is_epci]
        if epcis and any(e.tax_regime != TaxRegime.FPU for e in epcis):
            gaps.append(
                _(
                    "L'imputation sur l'attribution de compensation suppose un EPCI à fiscalité professionnelle unique (FPU)."
                )
            )
    keyed_by_population = [
        line for line in data.services if line.allocation_key == AllocationKey.POPULATION
    ]
    if (
        convention.kind == ConventionKind.SERVICE_COMMUN
        and keyed_by_population
        and not terms.managing_share_mode
    ):
        gaps.append(
            _(
                "Clé de population pour « %(service)s » : précisez comment l'organisation "
                "gestionnaire participe au coût (aucune part, part fixe ou pondération), "
                "l'EPCI n'ayant pas de population propre."
            )
            % {"service": keyed_by_population[0].service}
        )
    if terms.end_date and terms.end_date <= convention.start_date:
        gaps.append(
            _("La date d'échéance (%(end)s) doit suivre la date de prise d'effet (%(start)s).")
            % {"end": fmt(terms.end_date), "start": fmt(convention.start_date)}
        )
    return gaps


def preamble_gaps(data: Loaded) -> list[str]:
    """A descending mise à disposition states its interest « dans le cadre d'une bonne
    organisation des services », a legal condition of L5211-4-1 III (never a stock phrase put in
    its place)."""
    convention = data.convention
    if (
        convention.kind == ConventionKind.MISE_A_DISPOSITION
        and direction_of(data.parties) == Direction.DESCENDANTE
        and not convention.preamble.strip()
    ):
        return [
            _(
                "Préambule manquant : une mise à disposition descendante expose son intérêt dans "
                "le cadre d'une bonne organisation des services (L5211-4-1 III)."
            )
        ]
    return []


def content_gaps(data: Loaded) -> list[str]:
    return party_gaps(data) + service_gaps(data) + terms_gaps(data) + preamble_gaps(data)


def latest_deliberations(deliberations) -> dict:
    """Each organisation's latest deliberation (by date, then by entry): a council that rejected
    and later adopted the act has adopted it; the latest vote decides."""
    latest: dict = {}
    for deliberation in sorted(deliberations, key=lambda d: (d.date, d.pk or 0)):
        latest[deliberation.organisation_id] = deliberation
    return latest


def vote_gaps(deliberations) -> list[str]:
    """Recorded vote counts must agree with the recorded outcome (a tie may go either way: the
    president's casting vote, CGCT L2121-20)."""
    gaps = []
    for d in deliberations:
        if d.votes_for is None or d.votes_against is None:
            continue
        if (d.vote == Vote.ADOPTED and d.votes_for < d.votes_against) or (
            d.vote == Vote.REJECTED and d.votes_for > d.votes_against
        ):
            gaps.append(
                _(
                    "La délibération n° %(number)s de %(organisation)s est enregistrée comme "
                    "« %(vote)s » avec %(for)s voix pour et %(against)s voix contre : corrigez le "
                    "vote ou les voix."
                )
                % {
                    "number": d.number,
                    "organisation": d.organisation,
                    "vote": d.get_vote_display().lower(),
                    "for": d.votes_for,
                    "against": d.votes_against,
                }
            )
    return gaps


def deliberation_gaps(parties, deliberations, *, what: str, rejected: str) -> list[str]:
    """Each party's assembly approved the act: its latest deliberation adopts it.
    ``what`` names the act (« la convention »); ``rejected`` is the sentence « … a été rejetée
    par : %(names)s. » in the act's grammatical gender."""
    gaps = []
    latest = latest_deliberations(deliberations)
    lacking = [p.organisation for p in parties if p.organisation_id not in latest]
    refused = [
        p.organisation
        for p in parties
        if p.organisation_id in latest and latest[p.organisation_id].vote == Vote.REJECTED
    ]
    if lacking:
        gaps.append(
            _("Délibération approuvant %(what)s manquante pour : %(names)s.")
            % {"what": what, "names": names(lacking)}
        )
    if refused:
        gaps.append(rejected % {"names": names(refused)})
    gaps += vote_gaps(deliberations)
    today = timezone.localdate()
    future = [d for d in deliberations if d.date > today]
    if future:
        gaps.append(
            _("Délibération datée dans le futur : n° %(numbers)s.")
            % {"numbers": ", ".join(d.number for d in future)}
        )
    return gaps


def manager_designation_gaps(data: Loaded) -> list[str]:
    """A service commun is managed by the EPCI; a commune manages it only when chosen by a
    deliberation of the EPCI's council (L5211-4-2, « à titre dérogatoire »)."""
    convention = data.convention
    manager = convention.managing_organisation
    if convention.kind != ConventionKind.SERVICE_COMMUN or manager is None or manager.is_epci:
        return []
    designated = any(
        d.designates_manager and d.organisation.is_epci and d.vote == Vote.ADOPTED
        for d in data.deliberations
    )
    if designated:
        return []
    return [
        _(
            "%(manager)s ne peut gérer le service commun que si le conseil de l'EPCI l'a "
            "choisie par délibération (L5211-4-2) : cochez « désigne la commune gestionnaire » "
            "sur cette délibération de l'EPCI."
        )
        % {"manager": manager}
    ]


def staff_body_gaps(data: Loaded) -> list[str]:
    """Service commun: fiche d'impact, and the opinion of each party's staff body (CST from
    2023-01-01, comité technique before), given before its deliberation."""
    gaps = []
    if data.convention.kind != ConventionKind.SERVICE_COMMUN:
        return gaps
    if data.impact_sheet is None:
        gaps.append(_("Fiche d'impact manquante (obligatoire pour un service commun, L5211-4-2)."))
    staff_opinions = [
        o for o in data.opinions if o.body in (StaffBody.CST, StaffBody.CST_CDG, StaffBody.CT)
    ]
    have = {o.organisation_id for o in staff_opinions}
    lacking = [p.organisation for p in data.parties if p.organisation_id not in have]
    if lacking:
        gaps.append(
            _("Avis du comité social territorial manquant pour : %(names)s.")
            % {"names": names(lacking)}
        )
    for opinion in staff_opinions:
        expected = StaffBody.CST if opinion.date >= CST_FROM else StaffBody.CT
        if opinion.body == StaffBody.CST_CDG and opinion.date >= CST_FROM:
            if not opinion.body_name.strip():
                gaps.append(
                    _(
                        "L'avis du %(date)s de %(organisation)s a été rendu par le CST d'un centre "
                        "de gestion : nommez ce centre de gestion."
                    )
                    % {"date": fmt(opinion.date), "organisation": opinion.organisation}
                )
            continue
        if opinion.body != expected:
            gaps.append(
                _("L'avis du %(date)s de %(organisation)s relève du %(expected)s, pas du %(body)s.")
                % {
                    "date": fmt(opinion.date),
                    "organisation": opinion.organisation,
                    "expected": expected,
                    "body": opinion.body,
                }
            )
    sheet = data.impact_sheet
    if sheet is not None:
        early = [o for o in staff_opinions if o.date < sheet.established_on]
        if early:
            gaps.append(
                _(
                    "La fiche d'impact, établie le %(date)s, doit précéder l'avis des instances, "
                    "qui se prononcent sur la convention et ses annexes (L5211-4-2) : avis du "
                    "%(opinions)s."
                )
                % {
                    "date": fmt(sheet.established_on),
                    "opinions": ", ".join(
                        f"{fmt(o.date)} ({o.organisation})"
                        for o in sorted(early, key=lambda o: o.date)
                    ),
                }
            )
    first_deliberation = {}
    for deliberation in data.deliberations:
        current = first_deliberation.get(deliberation.organisation_id)
        if current is None or deliberation.date < current:
            first_deliberation[deliberation.organisation_id] = deliberation.date
    for opinion in staff_opinions:
        deliberated = first_deliberation.get(opinion.organisation_id)
        if deliberated and opinion.date > deliberated:
            gaps.append(
                _(
                    "L'avis de l'instance de %(organisation)s (%(date)s) doit précéder sa délibération (%(deliberated)s)."
                )
                % {
                    "organisation": opinion.organisation,
                    "date": fmt(opinion.date),
                    "deliberated": fmt(deliberated),
                }
            )
    return gaps


def signature_gaps(data: Loaded, signature_date: date | None) -> list[str]:
    if signature_date is None:
        return [_("Date de signature manquante.")]
    gaps = []
    if signature_date > timezone.localdate():
        gaps.append(_("La date de signature ne peut être dans le futur."))
    late = [d for d in data.deliberations if d.date > signature_date]
    if late:
        gaps.append(
            _("La signature (%(date)s) ne peut précéder les délibérations n° %(numbers)s.")
            % {"date": fmt(signature_date), "numbers": ", ".join(d.number for d in late)}
        )
    return gaps


def gaps_for(
    convention: Convention, target: str, *, signature_date: date | None = None
) -> list[str]:
    """Everything missing for ``convention`` to reach ``target`` (empty list: allowed)."""
    data = load(convention)
    gaps = content_gaps(data)
    if target in (Status.DELIBERATED, Status.SIGNED):
        gaps += deliberation_gaps(
            data.parties,
            data.deliberations,
            what=_("la convention"),
            rejected=_("La convention a été rejetée par : %(names)s."),
        )
        gaps += staff_body_gaps(data)
        gaps += manager_designation_gaps(data)
    if target == Status.SIGNED:
        gaps += signature_gaps(data, signature_date)
    return gaps


# --- transitions -------------------------------------------------------------------------------

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
        missing = []
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
    return convention


def notice_respected(convention: Convention, notified_on: date, effective_on: date) -> bool:
    terms = terms_in_force(convention, notified_on) or initial_terms(convention)
    return add_months(notified_on, terms.notice_months) <= effective_on


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


# --- avenants ----------------------------------------------------------------------------------


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
    Convention.objects.filter(pk=convention.pk).update(version=F("version") + 1)
    return amendment


# --- alerts ------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (or earlier), clamped to the end of a shorter month."""
    return day + relativedelta(months=months)


@dataclass(frozen=True)
class Alert:
    convention: Convention
    kind: str  # "end" or "notice"
    on: date
    label: str


def alerts(*, within_days: int, on: date | None = None, conventions=None) -> list[Alert]:
    """Conventions ending, or whose notice date comes, within ``within_days`` days."""
    today = on or timezone.localdate()
    horizon = today + timedelta(days=within_days)
    queryset = conventions if conventions is not None else Convention.objects.all()
    found = []
    for convention in queryset.filter(status__in=(Status.SIGNED, Status.IN_FORCE)).prefetch_related(
        "terms__amendment"
    ):
        terms = applicable_terms(convention, today)
        if terms.end_date is None:
            continue
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


@transaction.atomic
def amendment_deliberation_add(*, amendment: Amendment, deliberation: Deliberation) -> None:
    deliberation.convention = amendment.convention
    deliberation.amendment = amendment
    deliberation.save()


# --- what the screens and the document show ----------------------------------------------------


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
    for newer, older in zip(records, [*records[1:], None], strict=True):
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
    data = load(convention)
    amendments = list(
        convention.amendments.prefetch_related("deliberations__organisation").select_related(
            "terms"
        )
    )
    try:
        termination = convention.termination
    except Termination.DoesNotExist:
        termination = None
    today = timezone.localdate()
    all_terms = list(
        convention.terms.select_related("amendment").prefetch_related(
            "forecasts__beneficiary", "forecasts__service__service"
        )
    )
    in_force = terms_in_force(convention, today)
    next_step = NEXT_STEP.get(convention.status)
    next_gaps = []
    if next_step in ("submit", "deliberate"):
        next_gaps = gaps_for(convention, TRANSITIONS[next_step][1])
    elif next_step == "sign":
        next_gaps = gaps_for(convention, Status.DELIBERATED)
    return {
        "data": data,
        "direction": direction_of(data.parties)
        if convention.kind == ConventionKind.MISE_A_DISPOSITION
        else None,
        "amendments": amendments,
        "termination": termination,
        "all_terms": all_terms,
        "terms_in_force": in_force,
        "timeline": timeline(convention, data, amendments, termination),
        "next_step": next_step,
        "next_gaps": next_gaps,
        "agents": list(convention.agents.select_related("employer")),
        "attachments": list(convention.attachments.select_related("uploaded_by")),
        "history": history_entries(convention),
        "alerts": alerts(within_days=90, conventions=Convention.objects.filter(pk=convention.pk)),
        "usage_years": list(range(max(convention.start_date.year, today.year - 2), today.year + 1))
        or [convention.start_date.year],
    }


def convention_document(convention: Convention) -> dict:
    """The context of the convention PDF: parties with their representatives, visas, the terms
    (initial ones, and each signed avenant's), annexes."""
    data = load(convention)
    amendments = list(
        convention.amendments.filter(status=Amendment.AmendmentStatus.SIGNED).select_related(
            "terms"
        )
    )
    try:
        termination = convention.termination
    except Termination.DoesNotExist:
        termination = None
    all_deliberations = list(
        convention.deliberations.select_related("organisation", "amendment").order_by("date")
    )
    return {
        "convention": convention,
        "data": data,
        "direction": direction_of(data.parties)
        if convention.kind == ConventionKind.MISE_A_DISPOSITION
        else None,
        "providers": [p for p in data.parties if p.role == PartyRole.PROVIDER],
        "beneficiaries": [p for p in data.parties if p.role == PartyRole.BENEFICIARY],
        "members": [p for p in data.parties if p.role == PartyRole.MEMBER],
        "deliberations": all_deliberations,
        "opinions": list(convention.opinions.select_related("organisation").order_by("date")),
        "amendments": amendments,
        "termination": termination,
        "agents": list(convention.agents.select_related("employer")),
        "forecast_years": sorted({f.year for f in data.forecasts}),
        "draft": convention.status in (Status.DRAFT, Status.CONSULTATION),
    }
