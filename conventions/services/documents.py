"""The convention's documents as public acts: the text a contrôle de légalité reads (visas with
article and paragraph, each party's deliberation approving the convention and authorising its
representative to sign, parties « dûment habilités », the statutory clauses, the competent
tribunal administratif, « Fait à …, le … » and a signature block per party), and its versions:

- the **projet**, rendered live until signature;
- the **signed convention**, frozen at signature (bytes and SHA-256) and served as signed forever;
- each **avenant**, its own PDF, frozen at its signature;
- the **version consolidée au …**, the convention with its signed avenants, always labelled so.
"""

import hashlib
from dataclasses import dataclass
from datetime import date

from django.conf import settings
from django.db.models import Prefetch, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext as _

from conventions.models import (
    Amendment,
    Convention,
    ConventionKind,
    ConventionService,
    Direction,
    Party,
    PartyRole,
    SignedDocument,
    Termination,
    Terms,
    Vote,
)
from conventions.services.gates import approving_deliberations, enforceable_on, load
from conventions.services.in_force import (
    direction_of,
    parties_on,
    services_on,
    terms_in_force,
)
from mutualisation.documents import render_pdf
from mutualisation.french import of
from mutualisation.templatetags.french import authorised, long_date

PROJECT, SIGNED, CONSOLIDATED = "projet", "signee", "consolidee"

CGCT = "code général des collectivités territoriales"
# The CGFP articles on the individual mise à disposition (ex-articles 61 to 63 of the loi
# n° 84-53): their numbering is unconfirmed (../shared/domain.md §3.3 [U]), so configurable.
DEFAULT_CGFP_MAD_ARTICLES = "L. 512-6 à L. 512-15"


def cgfp_mad_articles() -> str:
    return getattr(settings, "MUTUALIS_CGFP_MAD_ARTICLES", DEFAULT_CGFP_MAD_ARTICLES)


def law_visas(convention: Convention, direction: str | None, terms) -> list[str]:
    """« Vu … » for the law the convention rests on, with the article and its paragraph."""
    kind = convention.kind
    if kind == ConventionKind.MISE_A_DISPOSITION:
        paragraph = "II" if direction == Direction.ASCENDANTE else "III"
        retained = (
            [
                _("Vu %(basis)s, la commune ayant conservé le service")
                % {"basis": convention.retained_service_basis}
            ]
            if direction == Direction.ASCENDANTE and convention.retained_service_basis
            else []
        )
        visas = [
            _(
                "Vu le %(code)s, notamment son article L. 5211-4-1 %(paragraph)s (mise à "
                "disposition de services) et IV (situation des agents et convention), et son "
                "article D. 5211-16 (remboursement des frais de fonctionnement)"
            )
            % {"code": CGCT, "paragraph": paragraph},
            *retained,
        ]
    elif kind == ConventionKind.SERVICE_COMMUN:
        visas = [
            _(
                "Vu le %(code)s, notamment son article L. 5211-4-2 (services communs), et son "
                "article D. 5211-16 pour la méthode de détermination du coût unitaire"
            )
            % {"code": CGCT}
        ]
        if terms.settles_on_ac_only or terms.settles_mixed:
            visas.append(
                _(
                    "Vu le code général des impôts, notamment son article 1609 nonies C "
                    "(attribution de compensation)"
                )
            )
            if convention.clect_report_on:
                visas.append(
                    _(
                        "Vu le rapport de la commission locale d'évaluation des transferts de "
                        "charges du %(date)s"
                    )
                    % {"date": long_date(convention.clect_report_on)}
                )
    elif kind == ConventionKind.MAD_AGENT:
        visas = [
            _(
                "Vu le code général de la fonction publique, notamment ses articles %(articles)s "
                "(mise à disposition)"
            )
            % {"articles": cgfp_mad_articles()},
            _(
                "Vu le décret n° 2008-580 du 18 juin 2008 relatif au régime de la mise à "
                "disposition applicable aux collectivités territoriales et aux établissements "
                "publics administratifs locaux"
            ),
        ]
    else:
        visas = [_("Vu l'article %(article)s") % {"article": a} for a in convention.legal_basis]
    return visas


def lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text else text


def deliberation_visa(deliberation) -> str:
    """« Vu la délibération n° … du conseil municipal d'Aubière du 11 décembre 2025, transmise
    au représentant de l'État le 14 décembre 2025, approuvant la convention et autorisant le
    Maire à la signer »."""
    organisation = deliberation.organisation
    title = lower_first(organisation.representative_title) or _("son représentant légal")
    act = (
        _("l'avenant n° %(number)s") % {"number": deliberation.amendment.number}
        if deliberation.amendment_id
        else _("la convention")
    )
    text = _("Vu la délibération n° %(number)s du %(assembly)s %(of_org)s du %(date)s") % {
        "number": deliberation.number,
        "assembly": lower_first(deliberation.assembly),
        "of_org": of(organisation.name),
        "date": long_date(deliberation.date),
    }
    if deliberation.transmitted_on:
        text += _(", transmise au représentant de l'État le %(date)s") % {
            "date": long_date(deliberation.transmitted_on)
        }
    if deliberation.designates_manager:
        text += _(", désignant la commune gestionnaire du service commun")
    return text + _(", approuvant %(act)s et autorisant %(title)s à la signer") % {
        "act": act,
        "title": title,
    }


def opinion_visa(opinion) -> str:
    body = opinion.body_name or opinion.get_body_display()
    return _("Vu l'avis %(opinion)s du %(body)s compétent pour %(organisation)s, du %(date)s") % {
        "opinion": opinion.get_opinion_display().lower(),
        "body": lower_first(body) if not opinion.body_name else body,
        "organisation": opinion.organisation.name,
        "date": long_date(opinion.date),
    }


ROLE_NAMES = {
    PartyRole.PROVIDER: _("« le prestataire »"),
    PartyRole.BENEFICIARY: _("« le bénéficiaire »"),
    PartyRole.MEMBER: _("« membre du service commun »"),
}


@dataclass(frozen=True)
class PartyBlock:
    """A party as the act names it and as it signs."""

    organisation: object
    designation: str
    representation: str
    role: str
    signature_for: str
    signature_title: str
    signature_name: str
    signed_on: date | None


def party_block(party, approving: dict, signed_on: date | None) -> PartyBlock:
    organisation = party.organisation
    if organisation.is_commune:
        designation = _("La commune %(of_name)s") % {"of_name": of(organisation.name)}
        represented = _("représentée par")
        signature_for = _("Pour la commune %(of_name)s") % {"of_name": of(organisation.name)}
    else:
        # An EPCI à fiscalité propre is a métropole or a communauté: feminine.
        nature = organisation.get_epci_nature_display() if organisation.epci_nature else ""
        designation = f"{organisation.name}, {nature.lower()}" if nature else organisation.name
        represented = _("représentée par")
        signature_for = _("Pour %(name)s") % {"name": organisation.name}
    title = lower_first(organisation.representative_title) or _("son représentant légal")
    representation = f"{represented} {title}"
    if organisation.representative_name:
        representation += f", {organisation.representative_name}"
    deliberation = approving.get(organisation.pk)
    if deliberation is not None:
        representation += ", " + _("%(authorised)s par délibération n° %(number)s du %(date)s") % {
            "authorised": authorised(organisation.representative_gender),
            "number": deliberation.number,
            "date": long_date(deliberation.date),
        }
    return PartyBlock(
        organisation=organisation,
        designation=designation,
        representation=representation,
        role=ROLE_NAMES[party.role],
        signature_for=signature_for,
        signature_title=organisation.representative_title or _("Le représentant légal"),
        signature_name=organisation.representative_name,
        signed_on=signed_on,
    )


def act_order(parties) -> list:
    """The order an act names its parties: the EPCI first, then the communes by name."""
    return sorted(parties, key=lambda p: (not p.organisation.is_epci, p.organisation.name))


def place_of_signature(convention: Convention, parties) -> str:
    """The seat of the EPCI party (else the first party's seat) for « Fait à … »."""
    organisations = [p.organisation for p in parties]
    chosen = next(
        (o for o in organisations if o.is_epci), organisations[0] if organisations else None
    )
    return (chosen.seat or "") if chosen else ""


def competent_court(parties) -> str:
    for organisation in sorted((p.organisation for p in parties), key=lambda o: not o.is_epci):
        if organisation.administrative_court:
            return organisation.administrative_court
    return _("tribunal administratif territorialement compétent")


def convention_document(
    convention: Convention, *, mode: str | None = None, on: date | None = None
) -> dict:
    """The context of the convention PDF in one of its versions: ``projet`` before signature,
    ``signee`` (what was signed: initial terms, the convention's own deliberations, no avenant)
    and ``consolidee`` (the signed avenants applied, terms in force on ``on``)."""
    today = on or timezone.localdate()
    if mode is None:
        mode = PROJECT if convention.signature_date is None else SIGNED
    data = load(convention)
    direction = (
        direction_of(data.parties) if convention.kind == ConventionKind.MISE_A_DISPOSITION else None
    )
    signed_amendments = []
    terms = data.terms
    forecasts = data.forecasts
    termination = None
    deliberations = sorted(data.deliberations, key=lambda d: (d.date, d.pk))
    if mode == CONSOLIDATED:
        # What the rules of the day read (terms with their avenant, parties and services with
        # the avenants that brought or withdrew them), each in one query.
        prefetch_related_objects(
            [convention],
            Prefetch("terms", queryset=Terms.objects.select_related("amendment")),
            Prefetch(
                "parties",
                queryset=Party.objects.select_related("organisation", "joined_by", "left_by"),
            ),
            Prefetch(
                "services",
                queryset=ConventionService.objects.select_related(
                    "service__provider", "unit_type", "added_by", "removed_by"
                ),
            ),
        )
        signed_amendments = list(
            convention.amendments.filter(status=Amendment.AmendmentStatus.SIGNED)
            .select_related("terms")
            .prefetch_related("deliberations__organisation")
            .order_by("number")
        )
        terms = terms_in_force(convention, today) or data.terms
        forecasts = list(terms.forecasts.select_related("beneficiary", "service__service"))
        data.parties = parties_on(convention, today)
        data.services = services_on(convention, today)
        try:
            termination = convention.termination
        except Termination.DoesNotExist:
            termination = None
    approving = approving_deliberations(data)
    visas = law_visas(convention, direction, terms)
    visas += [opinion_visa(o) for o in sorted(data.opinions, key=lambda o: o.date)]
    visas += [
        deliberation_visa(approving[p.organisation_id])
        for p in data.parties
        if p.organisation_id in approving
    ]
    if data.impact_sheet:
        visas.append(
            _("Vu la fiche d'impact établie le %(date)s, annexée à la présente convention")
            % {"date": long_date(data.impact_sheet.established_on)}
        )
    for amendment in signed_amendments:
        visas += [
            deliberation_visa(d) for d in amendment.deliberations.all() if d.vote == Vote.ADOPTED
        ]
    signed_on = convention.signature_date
    return {
        "convention": convention,
        "mode": mode,
        "draft": mode == PROJECT,
        "consolidated_on": today if mode == CONSOLIDATED else None,
        "data": data,
        "terms": terms,
        "forecasts": forecasts,
        "direction": direction,
        "visas": visas,
        "parties": [party_block(p, approving, signed_on) for p in act_order(data.parties)],
        "deliberations": deliberations,
        "amendments": signed_amendments,
        "termination": termination,
        "agents": list(convention.agents.select_related("employer")),
        "enforceable_on": enforceable_on(data),
        "place": place_of_signature(convention, data.parties),
        "signed_on": signed_on,
        "court": competent_court(data.parties),
        "cgfp_articles": cgfp_mad_articles(),
    }


def amendment_document(amendment: Amendment) -> dict:
    """The context of an avenant's own PDF: the convention it amends, its deliberations, its
    object, its terms and forecasts, its effective date and signatures."""
    convention = amendment.convention
    data = load(convention)
    deliberations = list(amendment.deliberations.select_related("organisation", "amendment"))
    approving = {
        d.organisation_id: d
        for d in sorted(deliberations, key=lambda d: (d.date, d.pk))
        if d.vote == Vote.ADOPTED
    }
    terms = amendment.terms
    direction = (
        direction_of(data.parties) if convention.kind == ConventionKind.MISE_A_DISPOSITION else None
    )
    visas = law_visas(convention, direction, terms)
    visas.append(
        _("Vu la convention %(reference)s signée le %(date)s")
        % {"reference": convention.reference, "date": long_date(convention.signature_date)}
    )
    visas += [deliberation_visa(d) for d in approving.values()]
    return {
        "convention": convention,
        "amendment": amendment,
        "draft": amendment.status == Amendment.AmendmentStatus.DRAFT,
        "terms": terms,
        "forecasts": list(terms.forecasts.select_related("beneficiary", "service__service")),
        "visas": visas,
        "parties": [
            party_block(p, approving, amendment.signature_date) for p in act_order(data.parties)
        ],
        "place": place_of_signature(convention, data.parties),
        "signed_on": amendment.signature_date,
        "court": competent_court(data.parties),
    }


def render_convention(convention: Convention, *, mode: str | None = None) -> bytes:
    return render_pdf("conventions/convention_pdf.html", convention_document(convention, mode=mode))


def render_amendment(amendment: Amendment) -> bytes:
    return render_pdf("conventions/amendment_pdf.html", amendment_document(amendment))


def freeze(convention: Convention, *, amendment: Amendment | None = None) -> SignedDocument:
    """Render the act as signed and keep its bytes and SHA-256 (called inside the signature's
    transaction: no signature without its frozen document)."""
    if amendment is None:
        pdf = render_convention(convention, mode=SIGNED)
        signed_on = convention.signature_date
    else:
        pdf = render_amendment(amendment)
        signed_on = amendment.signature_date
    return SignedDocument.objects.create(
        convention=convention,
        amendment=amendment,
        signed_on=signed_on,
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
    )


def signed_document(
    convention: Convention, amendment: Amendment | None = None
) -> SignedDocument | None:
    return SignedDocument.objects.filter(convention=convention, amendment=amendment).first()
