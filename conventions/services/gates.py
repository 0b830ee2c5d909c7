"""The legal gates: each function checks one rule of the law and returns, in French, what is
missing (an empty list: the rule holds). ``gaps_for`` gathers those a transition needs. What a
screen can link to the page that fixes it is a ``Gap``: the same sentence, with its code and
the parties or records it names."""

from dataclasses import dataclass
from datetime import date

from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    AllocationKey,
    Convention,
    ConventionKind,
    Direction,
    ImpactSheet,
    PartyRole,
    SettlementMode,
    StaffBody,
    Status,
    Terms,
    Vote,
)
from conventions.services import Gap, fmt, names
from conventions.services.in_force import (
    direction_of,
    initial_terms,
)
from mutualisation.french import of
from mutualisation.models import (
    EpciMembership,
    PopulationRecord,
    TaxRegime,
)

# The codes of the gaps a screen links to the page that fixes them (``Gap.code``).
DELIBERATION_MISSING = "deliberation_missing"  # organisations: the parties without one
FORECAST_MISSING = "forecast_missing"  # organisations: the beneficiaries without one
IMPACT_SHEET_MISSING = "impact_sheet_missing"
OPINION_MISSING = "opinion_missing"  # organisations: the parties without their staff's opinion
DELIBERATION_PUBLICITY_MISSING = "deliberation_publicity_missing"  # records: the deliberation
CONVENTION_PUBLICITY_MISSING = "convention_publicity_missing"

# Comités sociaux territoriaux replaced comités techniques on this date (loi 2019-828).
CST_FROM = date(2023, 1, 1)


# D5211-16: « Cette périodicité ne peut être supérieure à un an. »
MAX_PERIODICITY_MONTHS = 12


# Kinds whose reimbursement follows D5211-16 (and its practice for services communs).
COSTED_KINDS = (ConventionKind.MISE_A_DISPOSITION, ConventionKind.SERVICE_COMMUN)


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
        # The convention's own parties and services; those an avenant adds are its own.
        parties=list(
            convention.parties.filter(joined_by__isnull=True).select_related("organisation")
        ),
        services=list(
            convention.services.filter(added_by__isnull=True).select_related(
                "service__provider", "unit_type"
            )
        ),
        terms=terms,
        forecasts=list(terms.forecasts.select_related("beneficiary", "service__service")),
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


def outsiders_of(communes, epci, on: date) -> list:
    """The communes that are not members of ``epci`` on a date (one query for all of them)."""
    members = set(
        EpciMembership.objects.current(on)
        .filter(epci=epci, member__in=communes)
        .values_list("member_id", flat=True)
    )
    return [commune for commune in communes if commune.pk not in members]


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
            outsiders = outsiders_of(
                [o for o in members if o.is_commune], epcis[0], convention.start_date
            )
            if outsiders:
                gaps.append(
                    _("Communes non membres %(of_epci)s à la date de prise d'effet : %(names)s.")
                    % {"of_epci": of(epcis[0]), "names": names(outsiders)}
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
            outsiders = outsiders_of(communes, epci, convention.start_date)
            if outsiders:
                gaps.append(
                    _("Communes non membres %(of_epci)s à la date de prise d'effet : %(names)s.")
                    % {"of_epci": of(epci), "names": names(outsiders)}
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
            "Le service « %(service)s » relève %(of_provider)s, pas %(of_owner)s qui le met à "
            "disposition : choisissez un service %(of_owner)s."
        )
        % {
            "service": line.service.name,
            "of_provider": of(line.service.provider),
            "of_owner": of(owner),
        }
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
        # The members with a population, for every vintage the lines name (one query).
        known_by_vintage: dict[int, set] = {}
        vintages = {
            line.population_vintage
            for line in services
            if line.allocation_key == AllocationKey.POPULATION
        }
        for organisation_id, vintage in PopulationRecord.objects.filter(
            organisation__in=members, vintage__in=vintages
        ).values_list("organisation_id", "vintage"):
            known_by_vintage.setdefault(vintage, set()).add(organisation_id)
        for line in services:
            if not line.allocation_key:
                gaps.append(
                    _("Clé de répartition manquante pour le service « %(service)s ».")
                    % {"service": line.service}
                )
            elif line.allocation_key == AllocationKey.POPULATION:
                known = known_by_vintage.get(line.population_vintage, set())
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
                    Gap(
                        _(
                            "Prévision d'utilisation en unités manquante pour le service « %(service)s » : %(names)s (D5211-16)."
                        )
                        % {"service": line.service, "names": names(lacking)},
                        code=FORECAST_MISSING,
                        organisations=sorted(lacking, key=str),
                    )
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


def retained_service_gaps(data: Loaded) -> list[str]:
    """An ascending mise à disposition puts at the EPCI's disposal services the commune kept
    when it transferred a competence (L5211-4-1 II, by reference to the first paragraph of I):
    the convention names that transfer."""
    convention = data.convention
    if (
        convention.kind == ConventionKind.MISE_A_DISPOSITION
        and direction_of(data.parties) == Direction.ASCENDANTE
        and not convention.retained_service_basis.strip()
    ):
        return [
            _(
                "Mise à disposition ascendante : indiquez le transfert de compétence dont la "
                "commune a conservé le service (L5211-4-1 II, qui renvoie au I) ; sans "
                "transfert, c'est une prestation de services (L5111-1), pas une mise à "
                "disposition."
            )
        ]
    return []


def content_gaps(data: Loaded) -> list[str]:
    return (
        party_gaps(data)
        + service_gaps(data)
        + terms_gaps(data)
        + preamble_gaps(data)
        + retained_service_gaps(data)
    )


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
                    "La délibération n° %(number)s %(of_organisation)s est enregistrée comme "
                    "« %(vote)s » avec %(for)s voix pour et %(against)s voix contre : corrigez le "
                    "vote ou les voix."
                )
                % {
                    "number": d.number,
                    "of_organisation": of(d.organisation),
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
            Gap(
                _("Délibération approuvant %(what)s manquante pour : %(names)s.")
                % {"what": what, "names": names(lacking)},
                code=DELIBERATION_MISSING,
                organisations=sorted(lacking, key=str),
            )
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
        gaps.append(
            Gap(
                _("Fiche d'impact manquante (obligatoire pour un service commun, L5211-4-2)."),
                code=IMPACT_SHEET_MISSING,
            )
        )
    staff_opinions = [
        o for o in data.opinions if o.body in (StaffBody.CST, StaffBody.CST_CDG, StaffBody.CT)
    ]
    have = {o.organisation_id for o in staff_opinions}
    lacking = [p.organisation for p in data.parties if p.organisation_id not in have]
    if lacking:
        gaps.append(
            Gap(
                _("Avis du comité social territorial manquant pour : %(names)s.")
                % {"names": names(lacking)},
                code=OPINION_MISSING,
                organisations=sorted(lacking, key=str),
            )
        )
    for opinion in staff_opinions:
        expected = StaffBody.CST if opinion.date >= CST_FROM else StaffBody.CT
        if opinion.body == StaffBody.CST_CDG and opinion.date >= CST_FROM:
            if not opinion.body_name.strip():
                gaps.append(
                    _(
                        "L'avis du %(date)s %(of_organisation)s a été rendu par le CST d'un centre "
                        "de gestion : nommez ce centre de gestion."
                    )
                    % {"date": fmt(opinion.date), "of_organisation": of(opinion.organisation)}
                )
            continue
        if opinion.body != expected:
            gaps.append(
                _("L'avis du %(date)s %(of_organisation)s relève du %(expected)s, pas du %(body)s.")
                % {
                    "date": fmt(opinion.date),
                    "of_organisation": of(opinion.organisation),
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
                    "L'avis de l'instance %(of_organisation)s (%(date)s) doit précéder sa "
                    "délibération (%(deliberated)s)."
                )
                % {
                    "of_organisation": of(opinion.organisation),
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


def approving_deliberations(data: Loaded) -> dict:
    """Each party's deliberation that approved the convention (its latest, when adopted)."""
    latest = latest_deliberations(data.deliberations)
    return {
        party.organisation_id: latest[party.organisation_id]
        for party in data.parties
        if party.organisation_id in latest and latest[party.organisation_id].vote == Vote.ADOPTED
    }


def enforceable_on(data: Loaded) -> date | None:
    """The day the signed convention becomes enforceable (« exécutoire »): the latest of its
    transmission to the contrôle de légalité, its notification to the parties, and the
    transmission and publication of each party's approving deliberation (CGCT L2131-1,
    L2131-2); None while one of them is missing."""
    convention = data.convention
    approving = approving_deliberations(data)
    days = [convention.transmitted_on, convention.notified_on]
    for party in data.parties:
        deliberation = approving.get(party.organisation_id)
        if deliberation is None:
            return None
        days += [deliberation.transmitted_on, deliberation.published_on]
    if any(day is None for day in days):
        return None
    return max(days)


def retroactivity_gaps(data: Loaded, enforceable: date | None) -> list[str]:
    """An administrative act does not take effect before it is enforceable (CE, Ass., 25 juin
    1948, Société du journal L'Aurore). Only the financial terms may reach back, for the
    service already rendered, with the reason written in the convention (docs/conventions.md)."""
    convention = data.convention
    if enforceable is None or convention.start_date >= enforceable:
        return []
    if convention.retroactivity_reason.strip():
        return []
    return [
        _(
            "La convention ne devient exécutoire que le %(enforceable)s, après sa date de prise "
            "d'effet (%(start)s) : un acte ne rétroagit pas. Seules les clauses financières "
            "peuvent rétroagir, pour un motif écrit dans la convention (« motif de l'effet "
            "rétroactif des clauses financières ») ; à défaut, reportez la prise d'effet."
        )
        % {"enforceable": fmt(enforceable), "start": fmt(convention.start_date)}
    ]


def enforceability_gaps(data: Loaded, on: date) -> list[str]:
    """« En vigueur » requires the convention to be enforceable: each party's approving
    deliberation transmitted to the préfecture (date and accusé de réception) and published,
    the signed convention transmitted and notified to the parties (CGCT L2131-1, L2131-2,
    L2131-3 for the recours window it opens), none of it in the future."""
    convention = data.convention
    gaps = []
    approving = approving_deliberations(data)
    for party in data.parties:
        deliberation = approving.get(party.organisation_id)
        if deliberation is None:
            continue  # reported by deliberation_gaps
        lacking = []
        if deliberation.transmitted_on is None:
            lacking.append(_("sa date de transmission au contrôle de légalité"))
        if not deliberation.acknowledgement_number.strip():
            lacking.append(_("le n° de l'accusé de réception de la préfecture"))
        if deliberation.published_on is None:
            lacking.append(_("sa date de publication"))
        if lacking:
            gaps.append(
                Gap(
                    _("Délibération n° %(number)s %(of_organisation)s : indiquez %(lacking)s.")
                    % {
                        "number": deliberation.number,
                        "of_organisation": of(party.organisation),
                        "lacking": ", ".join(lacking),
                    },
                    code=DELIBERATION_PUBLICITY_MISSING,
                    organisations=[party.organisation],
                    records=[deliberation],
                )
            )
    lacking = []
    if convention.transmitted_on is None:
        lacking.append(_("sa date de transmission au contrôle de légalité"))
    if not convention.acknowledgement_number.strip():
        lacking.append(_("le n° de l'accusé de réception de la préfecture"))
    if convention.notified_on is None:
        lacking.append(_("sa date de notification aux parties"))
    if lacking:
        gaps.append(
            Gap(
                _("Convention signée : indiquez %(lacking)s.") % {"lacking": ", ".join(lacking)},
                code=CONVENTION_PUBLICITY_MISSING,
            )
        )
    enforceable = enforceable_on(data)
    if enforceable is not None and enforceable > on:
        gaps.append(
            _("La convention ne sera exécutoire que le %(date)s.") % {"date": fmt(enforceable)}
        )
    gaps += retroactivity_gaps(data, enforceable)
    return gaps


def early_effect_gaps(data: Loaded) -> list[str]:
    """Warned while the text can still change: a start before the assemblies deliberate needs
    the reason for the financial terms' retroactive effect (see retroactivity_gaps)."""
    convention = data.convention
    approving = approving_deliberations(data)
    if not approving or convention.retroactivity_reason.strip():
        return []
    last = max(d.date for d in approving.values())
    if convention.start_date >= last:
        return []
    return [
        _(
            "La prise d'effet (%(start)s) précède la délibération du %(date)s : la convention "
            "ne peut rétroagir. Reportez la prise d'effet, ou écrivez le motif de l'effet "
            "rétroactif de ses seules clauses financières."
        )
        % {"start": fmt(convention.start_date), "date": fmt(last)}
    ]


def gaps_for(
    convention: Convention, target: str, *, signature_date: date | None = None
) -> list[str]:
    """Everything missing for ``convention`` to reach ``target`` (empty list: allowed)."""
    data = load(convention)
    gaps = content_gaps(data)
    if target in (Status.DELIBERATED, Status.SIGNED):
        # In the order they are done: the fiche d'impact and the staff bodies' opinions come
        # before the deliberations (L5211-4-2).
        gaps += staff_body_gaps(data)
        gaps += deliberation_gaps(
            data.parties,
            data.deliberations,
            what=_("la convention"),
            rejected=_("La convention a été rejetée par : %(names)s."),
        )
        gaps += manager_designation_gaps(data)
        gaps += early_effect_gaps(data)
    if target == Status.SIGNED:
        gaps += signature_gaps(data, signature_date)
    return gaps
