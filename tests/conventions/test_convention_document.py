"""The convention as a public act: its PDF text carries the visas with their paragraphs, the
deliberations approving it and authorising the signature, parties « dûment habilités », the
statutory clauses of the agents, the competent court, « Fait à …, le … » and the signature
blocks; what was signed is frozen and an avenant never rewrites it."""

import hashlib
import io
import re
from datetime import date
from decimal import Decimal
from html import unescape

import pytest
import time_machine
from django.db import DatabaseError, transaction
from django.template.loader import render_to_string
from pypdf import PdfReader

from conventions.models import (
    AgentAssignment,
    AgentRegime,
    Amendment,
    Convention,
    ConventionKind,
    Party,
    PartyRole,
    SettlementMode,
    SignedDocument,
    Terms,
)
from conventions.services import amendments, documents, transitions
from tests.conventions.conftest import add_deliberations, complete_service_commun_file
from tests.factories import ConventionFactory, TermsFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 28)


def text_of(pdf: bytes) -> str:
    pages = PdfReader(io.BytesIO(pdf)).pages
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))


@pytest.fixture
def named_territory(territory):
    """The test territory under real-looking names, with representatives and a court."""
    t = territory
    for organisation, name, title, person, gender in (
        (t.epci, "Clermont Auvergne Métropole", "Le Président", "Jean Dupont", "M"),
        (t.commune_a, "Aubière", "La Maire", "Claire Martin", "F"),
        (t.commune_b, "Le Cendre", "Le Maire", "Paul Bernard", "M"),
    ):
        organisation.name = name
        organisation.representative_title = title
        organisation.representative_name = person
        organisation.representative_gender = gender
        organisation.seat = "Clermont-Ferrand" if organisation.is_epci else name
        organisation.administrative_court = "tribunal administratif de Clermont-Ferrand"
        organisation.save()
    return t


def sign(convention, parties, *, deliberated=date(2025, 12, 10), signed=date(2025, 12, 20)):
    convention = transitions.convention_transition(convention, "submit")
    add_deliberations(convention, parties, day=deliberated)
    for deliberation in convention.deliberations.all():
        deliberation.transmitted_on = date(2025, 12, 12)
        deliberation.acknowledgement_number = f"063-{deliberation.number}"
        deliberation.published_on = date(2025, 12, 12)
        deliberation.save()
    with time_machine.travel(TODAY):
        convention = transitions.convention_transition(convention, "deliberate")
        return transitions.convention_transition(convention, "sign", signature_date=signed)


@pytest.fixture
def signed_mad(mad_descendante, named_territory):
    t = named_territory
    return sign(mad_descendante.convention, [t.epci, t.commune_a, t.commune_b])


def test_the_signed_mad_descendante_reads_as_an_act_a_prefecture_accepts(signed_mad):
    convention = signed_mad
    text = text_of(bytes(documents.signed_document(convention).pdf))
    first = convention.deliberations.get(organisation__name="Aubière")
    # Parties, their representatives and the deliberation that authorises them.
    assert "La commune d'Aubière, SIREN" in text
    assert "représentée par la Maire, Claire Martin, dûment habilitée par délibération n° " in text
    assert f"n° {first.number} du 10 décembre 2025" in text
    assert "La commune du Cendre" in text
    assert "le Président, Jean Dupont, dûment habilité par délibération" in text
    # Visas: article and paragraph, the decree, and each deliberation with its transmission.
    assert "notamment son article L. 5211-4-1 III (mise à disposition de services) et IV" in text
    assert "article D. 5211-16" in text
    assert (
        f"Vu la délibération n° {first.number} du conseil municipal d'Aubière du 10 décembre "
        "2025, transmise au représentant de l'État le 12 décembre 2025, approuvant la "
        "convention et autorisant la Maire à la signer"
    ) in text
    assert "du conseil municipal du Cendre" in text
    assert "Vu l'article code" not in text
    # The descending MAD's interest, the agents' statutory clause, the unit cost's notification.
    assert "bonne organisation des services" in text
    assert "IV de l'article L. 5211-4-1" in text
    assert "sous l'autorité fonctionnelle du maire ou du président du bénéficiaire" in text
    assert "avant la date limite d'adoption de leur budget" in text
    assert "dernier compte administratif (ou compte financier unique)" in text
    # Entry into force, court, place and date, signature blocks.
    assert "Elle prend effet le 1er janvier 2026" in text
    assert "porté devant le tribunal administratif de Clermont-Ferrand" in text
    assert "Fait à Clermont-Ferrand, le 20 décembre 2025, en 3 exemplaires originaux" in text
    assert "Pour la commune d'Aubière La Maire Claire Martin Signé le 20 décembre 2025" in text
    assert "Pour Clermont Auvergne Métropole Le Président Jean Dupont" in text
    assert "convention signée le 20 décembre 2025" in text
    assert "PROJET" not in text


def test_the_service_commun_settled_on_the_ac_cites_the_cgi_the_clect_and_l5211_4_2(
    service_commun, named_territory
):
    t = named_territory
    convention = service_commun.convention
    Terms.objects.filter(pk=service_commun.terms.pk).update(
        settlement_mode=SettlementMode.AC_IMPUTATION, instalment_count=0
    )
    Convention.objects.filter(pk=convention.pk).update(clect_report_on=date(2025, 9, 30))
    everyone = [t.epci, t.commune_a, t.commune_b]
    complete_service_commun_file(convention, everyone)
    convention = sign(Convention.objects.get(pk=convention.pk), everyone)
    text = text_of(bytes(documents.signed_document(convention).pdf))
    assert "notamment son article L. 5211-4-2 (services communs)" in text
    assert "Vu le code général des impôts, notamment son article 1609 nonies C" in text
    assert (
        "Vu le rapport de la commission locale d'évaluation des transferts de charges du "
        "30 septembre 2025"
    ) in text
    assert "Vu l'avis favorable du comité social territorial compétent pour Aubière" in text
    assert "Vu la fiche d'impact établie le 1er octobre 2025, annexée" in text
    # L5211-4-2: transfer of full-time agents, MAD de plein droit of the others.
    assert "sont transférés de plein droit à Clermont Auvergne Métropole" in text
    assert (
        "mis à disposition de plein droit, à titre individuel et sans limitation de durée" in text
    )
    assert "sous l'autorité fonctionnelle du maire ou sous celle du président" in text
    assert "imputée sur son attribution de compensation" in text
    assert "ne donne lieu à aucun titre de recettes" in text
    assert "acompte" not in text.lower()
    assert "Annexe 1 – Fiche d'impact" in text
    assert "Pour la commune du Cendre" in text


def test_the_individual_mad_of_an_agent_cites_the_cgfp_and_requires_consent(named_territory):
    t = named_territory
    convention = ConventionFactory(
        kind=ConventionKind.MAD_AGENT,
        title="Mise à disposition d'un agent",
        preamble="",
        object="Mise à disposition d'un instructeur à mi-temps.",
    )
    Party.objects.create(convention=convention, organisation=t.commune_a, role=PartyRole.PROVIDER)
    Party.objects.create(convention=convention, organisation=t.epci, role=PartyRole.BENEFICIARY)
    TermsFactory(convention=convention)
    AgentAssignment.objects.create(
        convention=convention,
        agent_ref="AG-001",
        employer=t.commune_a,
        regime=AgentRegime.MAD_INDIVIDUAL,
        share_percent=Decimal("50"),
        functional_authority="Le Président de la Métropole",
        hierarchical_authority="La Maire d'Aubière",
        agent_consent=True,
        start_date=date(2026, 1, 1),
        end_date=date(2027, 12, 31),
    )
    text = text_of(documents.render_convention(convention))
    assert (
        "Vu le code général de la fonction publique, notamment ses articles L. 512-6 à L. 512-15"
    ) in text
    assert "décret n° 2008-580 du 18 juin 2008" in text
    assert "mis à disposition avec son accord" in text
    assert "garde l'autorité hiérarchique" in text
    assert "Vu l'article code général de la fonction publique" not in text
    assert "PROJET" in text
    assert "Fait à Clermont-Ferrand, le ……………" in text
    assert "Pour la commune d'Aubière La Maire Claire Martin Date et signature" in text


def test_the_cgfp_articles_are_configurable_while_unconfirmed(named_territory, settings):
    settings.MUTUALIS_CGFP_MAD_ARTICLES = "L. 512-12 et suivants"
    convention = ConventionFactory(kind=ConventionKind.MAD_AGENT)
    TermsFactory(convention=convention)
    assert "notamment ses articles L. 512-12 et suivants" in text_of(
        documents.render_convention(convention)
    )


def test_an_avenant_never_rewrites_the_signed_convention(signed_mad, named_territory):
    t = named_territory
    convention = signed_mad
    frozen = documents.signed_document(convention)
    before = bytes(frozen.pdf)
    assert frozen.sha256 == hashlib.sha256(before).hexdigest()
    with time_machine.travel(TODAY):
        amendment = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Trimestrialisation", effective_from=date(2026, 7, 1)),
            terms=Terms(settlement_mode="TITRE", periodicity_months=3, unit_cost_method="x"),
        )
        add_deliberations(
            convention,
            [t.epci, t.commune_a, t.commune_b],
            day=date(2026, 6, 1),
            amendment=amendment,
        )
        amendments.amendment_sign(amendment, signature_date=date(2026, 6, 15))
    after = documents.signed_document(convention)
    assert bytes(after.pdf) == before
    assert after.sha256 == frozen.sha256
    own = documents.signed_document(convention, amendment)
    text = text_of(bytes(own.pdf))
    assert "Avenant n° 1" in text
    assert "signé le 15 juin 2026" in text
    consolidated = text_of(documents.render_convention(convention, mode=documents.CONSOLIDATED))
    assert "version consolidée au" in consolidated
    assert "Avenant n° 1, signé le 15 juin 2026, applicable à compter du 1er juillet 2026" in (
        consolidated
    )


def test_the_database_refuses_to_rewrite_a_frozen_act(signed_mad):
    frozen = documents.signed_document(signed_mad)
    with pytest.raises(DatabaseError), transaction.atomic():
        SignedDocument.objects.filter(pk=frozen.pk).update(pdf=b"%PDF-forged")
    frozen.refresh_from_db()
    assert bytes(frozen.pdf).startswith(b"%PDF")
    assert bytes(frozen.pdf) != b"%PDF-forged"


@pytest.mark.parametrize(
    ("count", "clause"),
    [
        (1, "1 acompte par an appelé sur la prévision, régularisé au vu de l'état annuel"),
        (4, "4 acomptes par an appelés sur la prévision, régularisés au vu de l'état annuel"),
    ],
)
def test_the_acomptes_clause_agrees_with_their_number(mad_descendante, count, clause):
    Terms.objects.filter(pk=mad_descendante.terms.pk).update(instalment_count=count)
    convention = Convention.objects.get(pk=mad_descendante.convention.pk)
    html = render_to_string(
        "conventions/convention_pdf.html", documents.convention_document(convention)
    )
    assert clause in unescape(html)


def test_agents_are_made_available_by_a_manager_named_with_an_elided_de(service_commun, territory):
    territory.epci.name = "Issoire Communauté"
    territory.epci.save()
    convention = Convention.objects.get(pk=service_commun.convention.pk)
    html = unescape(
        render_to_string(
            "conventions/convention_pdf.html", documents.convention_document(convention)
        )
    )
    assert "sans limitation de durée, d'Issoire Communauté pour la part de leur temps" in html
