"""The legal lifecycle: each gate refuses and names what is missing, then lets the convention
through once it is supplied."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from conventions import services
from conventions.models import (
    Amendment,
    Convention,
    ConventionKind,
    Deliberation,
    Direction,
    Opinion,
    Party,
    PartyRole,
    SettlementMode,
    StaffBody,
    StaffBodyOpinion,
    Status,
    Termination,
    Terms,
    UsageForecast,
    Vote,
)
from conventions.services import amendments, in_force, overview, records, transitions
from mutualisation.models import Organisation, TaxRegime
from tests.conventions.conftest import (
    add_deliberations,
    complete_service_commun_file,
    make_enforceable,
)
from tests.factories import EpciFactory, EpciMembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 28)


def refusal(convention, name, **kwargs):
    with pytest.raises(services.TransitionRefused) as refused:
        transitions.convention_transition(convention, name, **kwargs)
    return "\n".join(refused.value.missing)


def reach(convention, *names, **kwargs):
    for name in names:
        convention = transitions.convention_transition(convention, name, **kwargs)
    return convention


# --- references --------------------------------------------------------------------------------


def test_references_are_numbered_per_year_without_gaps():
    assert records.next_reference(2025) == "CONV-2025-001"
    assert records.next_reference(2025) == "CONV-2025-002"
    assert records.next_reference(2026) == "CONV-2026-001"


def test_create_gives_a_reference_and_initial_terms_from_the_start_date(territory):
    convention = Convention(
        territory=territory.epci,
        title="Paie",
        kind=ConventionKind.MISE_A_DISPOSITION,
        object="Paie",
        start_date=date(2027, 1, 1),
    )
    terms = Terms(settlement_mode=SettlementMode.TITRE, periodicity_months=6)
    records.convention_create(convention=convention, terms=terms)
    assert convention.reference == "CONV-2027-001"
    assert convention.status == Status.DRAFT
    assert in_force.initial_terms(convention).effective_from == date(2027, 1, 1)


# --- parties -----------------------------------------------------------------------------------


def test_direction_is_derived_from_who_provides(mad_descendante, territory):
    parties = list(mad_descendante.convention.parties.select_related("organisation"))
    assert in_force.direction_of(parties) == Direction.DESCENDANTE
    ascending = [
        Party(organisation=territory.commune_a, role=PartyRole.PROVIDER),
        Party(organisation=territory.epci, role=PartyRole.BENEFICIARY),
    ]
    assert in_force.direction_of(ascending) == Direction.ASCENDANTE


def test_mise_a_disposition_between_two_communes_is_refused_with_a_pointer(
    mad_descendante, territory
):
    convention = mad_descendante.convention
    convention.parties.filter(organisation__in=[territory.epci, territory.commune_a]).delete()
    Party.objects.create(
        convention=convention, organisation=territory.commune_a, role=PartyRole.PROVIDER
    )
    message = refusal(convention, "submit")
    assert "pas deux communes entre elles" in message
    assert "prestation de services (L5111-1)" in message
    assert "entente (L5221-1)" in message


def test_mise_a_disposition_to_a_commune_outside_the_epci_is_refused(mad_descendante):
    stranger = OrganisationFactory(name="Commune voisine")
    EpciMembershipFactory(member=stranger, epci=EpciFactory(name="Autre EPCI"))
    Party.objects.create(
        convention=mad_descendante.convention, organisation=stranger, role=PartyRole.BENEFICIARY
    )
    message = refusal(mad_descendante.convention, "submit")
    assert "Communes non membres de Métropole de test" in message
    assert "Commune voisine" in message


def test_valid_mise_a_disposition_goes_to_consultation(mad_descendante):
    convention = reach(mad_descendante.convention, "submit")
    assert convention.status == Status.CONSULTATION


# --- D5211-16 ----------------------------------------------------------------------------------


def test_periodicity_over_twelve_months_is_refused_then_accepted(mad_descendante):
    Terms.objects.filter(pk=mad_descendante.terms.pk).update(periodicity_months=18)
    message = refusal(mad_descendante.convention, "submit")
    assert "Périodicité de remboursement de 18 mois" in message
    assert "12 mois (D5211-16)" in message
    Terms.objects.filter(pk=mad_descendante.terms.pk).update(periodicity_months=12)
    assert reach(mad_descendante.convention, "submit").status == Status.CONSULTATION


def test_missing_forecast_units_are_named_per_beneficiary(mad_descendante, territory):
    UsageForecast.objects.filter(beneficiary=territory.commune_b).delete()
    message = refusal(mad_descendante.convention, "submit")
    assert "Prévision d'utilisation en unités manquante" in message
    assert "Commune B" in message
    assert "Commune A" not in message
    UsageForecast.objects.create(
        terms=mad_descendante.terms,
        service=mad_descendante.line,
        beneficiary=territory.commune_b,
        year=2026,
        units=Decimal("10"),
    )
    assert reach(mad_descendante.convention, "submit").status == Status.CONSULTATION


def test_missing_unit_cost_method_is_refused(mad_descendante):
    Terms.objects.filter(pk=mad_descendante.terms.pk).update(unit_cost_method="  ")
    assert "Méthode de détermination du coût unitaire" in refusal(
        mad_descendante.convention, "submit"
    )


# --- deliberations and signature --------------------------------------------------------------


def test_no_deliberated_status_without_an_approving_deliberation_of_every_party(
    mad_descendante, territory
):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci])
    message = refusal(convention, "deliberate")
    assert "Délibération approuvant la convention manquante pour : Commune A, Commune B." in message
    add_deliberations(
        convention, [territory.commune_a, territory.commune_b], day=date(2025, 12, 12)
    )
    assert reach(convention, "deliberate").status == Status.DELIBERATED


def test_a_rejecting_deliberation_blocks_the_convention(mad_descendante, territory):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    Deliberation.objects.filter(organisation=territory.commune_b).update(vote=Vote.REJECTED)
    message = refusal(convention, "deliberate")
    assert "La convention a été rejetée par : Commune B." in message


def test_the_latest_deliberation_of_a_council_decides(mad_descendante, territory):
    """Before: a council that rejected the convention, then adopted it by a new deliberation,
    blocked it forever."""
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    Deliberation.objects.filter(organisation=territory.commune_b).update(vote=Vote.REJECTED)
    Deliberation.objects.create(
        convention=convention,
        organisation=territory.commune_b,
        assembly="Conseil municipal",
        date=date(2025, 12, 15),
        number="B-2025-099",
        object="Nouvel examen de la convention",
    )
    assert reach(convention, "deliberate").status == Status.DELIBERATED


def test_vote_counts_must_agree_with_the_outcome(mad_descendante, territory):
    """Before: « adoptée » with 3 voix pour and 40 contre was accepted."""
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    Deliberation.objects.filter(organisation=territory.commune_a).update(
        votes_for=3, votes_against=40
    )
    message = refusal(convention, "deliberate")
    assert "est enregistrée comme « adoptée » avec 3 voix pour et 40 voix contre" in message
    Deliberation.objects.filter(organisation=territory.commune_a).update(
        votes_for=20,
        votes_against=20,  # a tie, decided by the president's casting vote
    )
    assert reach(convention, "deliberate").status == Status.DELIBERATED


def test_the_deliberation_form_refuses_counts_contrary_to_the_vote():
    from conventions.forms import DeliberationForm

    form = DeliberationForm(
        {
            "assembly": "Conseil municipal",
            "date": "2025-12-10",
            "number": "12",
            "vote": Vote.ADOPTED,
            "votes_for": "3",
            "votes_against": "40",
        }
    )
    assert not form.is_valid()
    assert form.errors["vote"] == [
        "Une délibération adoptée ne peut avoir moins de voix pour que contre."
    ]


def test_a_descending_mad_states_its_interest_in_its_preamble(mad_descendante, territory):
    Convention.objects.filter(pk=mad_descendante.convention.pk).update(preamble="  ")
    convention = Convention.objects.get(pk=mad_descendante.convention.pk)
    assert "Préambule manquant : une mise à disposition descendante expose son intérêt" in (
        refusal(convention, "submit")
    )


@time_machine.travel(TODAY)
def test_signature_needs_a_date_after_the_deliberations(mad_descendante, territory):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    convention = reach(convention, "deliberate")
    assert "Date de signature manquante" in refusal(convention, "sign")
    message = refusal(convention, "sign", signature_date=date(2025, 12, 1))
    assert "ne peut précéder les délibérations" in message
    assert "ne peut être dans le futur" in refusal(
        convention, "sign", signature_date=date(2027, 1, 1)
    )
    convention = reach(convention, "sign", signature_date=date(2025, 12, 20))
    assert (convention.status, convention.signature_date) == (Status.SIGNED, date(2025, 12, 20))


@time_machine.travel(date(2025, 12, 25))
def test_entry_into_force_waits_for_the_start_date(mad_descendante, territory):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    convention = reach(convention, "deliberate", "sign", signature_date=date(2025, 12, 20))
    convention = make_enforceable(convention)
    assert "ne prend effet que le 01/01/2026" in refusal(convention, "enter_into_force")
    with time_machine.travel(date(2026, 1, 2)):
        assert reach(convention, "enter_into_force").status == Status.IN_FORCE


def test_transition_from_the_wrong_status_is_refused(mad_descendante):
    message = refusal(mad_descendante.convention, "sign", signature_date=date(2025, 12, 20))
    assert "Transition impossible depuis le statut « Brouillon »" in message


# --- service commun ----------------------------------------------------------------------------


def test_service_commun_needs_its_impact_sheet_and_staff_body_opinions(service_commun, territory):
    convention = reach(service_commun.convention, "submit")
    everyone = [territory.epci, territory.commune_a, territory.commune_b]
    add_deliberations(convention, everyone)
    message = refusal(convention, "deliberate")
    assert "Fiche d'impact manquante" in message
    assert (
        "Avis du comité social territorial manquant pour : Commune A, Commune B, Métropole de test."
        in message
    )
    complete_service_commun_file(convention, everyone)
    assert reach(convention, "deliberate").status == Status.DELIBERATED


def test_the_impact_sheet_precedes_the_staff_body_opinions(service_commun, territory):
    """Before: a fiche d'impact dated after the CST opinions passed; the CST gives its opinion
    on the convention and its annexes (L5211-4-2)."""
    from conventions.models import ImpactSheet

    convention = reach(service_commun.convention, "submit")
    everyone = [territory.epci, territory.commune_a, territory.commune_b]
    add_deliberations(convention, everyone)
    complete_service_commun_file(convention, everyone)  # fiche 01/10/2025, opinions 15/11/2025
    ImpactSheet.objects.filter(convention=convention).update(established_on=date(2025, 11, 20))
    message = refusal(convention, "deliberate")
    assert "La fiche d'impact, établie le 20/11/2025, doit précéder l'avis des instances" in message
    ImpactSheet.objects.filter(convention=convention).update(established_on=date(2025, 11, 1))
    assert reach(convention, "deliberate").status == Status.DELIBERATED


def test_staff_body_must_be_a_cst_from_2023_and_precede_the_deliberation(service_commun, territory):
    convention = reach(service_commun.convention, "submit")
    everyone = [territory.epci, territory.commune_a, territory.commune_b]
    add_deliberations(convention, everyone)
    complete_service_commun_file(convention, everyone)
    StaffBodyOpinion.objects.filter(organisation=territory.commune_a).update(body=StaffBody.CT)
    StaffBodyOpinion.objects.filter(organisation=territory.commune_b).update(
        date=date(2025, 12, 20)
    )
    message = refusal(convention, "deliberate")
    assert "relève du CST, pas du CT" in message
    assert "doit précéder sa délibération" in message


def test_ac_imputation_requires_an_fpu_epci(service_commun, territory):
    Terms.objects.filter(pk=service_commun.terms.pk).update(
        settlement_mode=SettlementMode.AC_IMPUTATION, instalment_count=0
    )
    type(territory.epci).objects.filter(pk=territory.epci.pk).update(tax_regime=TaxRegime.FA)
    message = refusal(service_commun.convention, "submit")
    assert "fiscalité professionnelle unique (FPU)" in message
    type(territory.epci).objects.filter(pk=territory.epci.pk).update(tax_regime=TaxRegime.FPU)
    assert reach(service_commun.convention, "submit").status == Status.CONSULTATION


def test_ac_imputation_is_refused_for_a_mise_a_disposition(mad_descendante):
    Terms.objects.filter(pk=mad_descendante.terms.pk).update(settlement_mode=SettlementMode.MIXED)
    assert "réservée aux services communs" in refusal(mad_descendante.convention, "submit")


def test_population_key_needs_the_named_vintage_for_every_member(service_commun, territory):
    service_commun.line.population_vintage = 2021
    service_commun.line.save()
    message = refusal(service_commun.convention, "submit")
    assert "Population du millésime 2021 manquante pour : Commune A, Commune B." in message


def test_service_commun_needs_a_managing_organisation(service_commun):
    Convention.objects.filter(pk=service_commun.convention.pk).update(managing_organisation=None)
    service_commun.convention.refresh_from_db()
    assert "Organisation gestionnaire" in refusal(service_commun.convention, "submit")


def test_incoherent_dates_are_refused(mad_descendante):
    Terms.objects.filter(pk=mad_descendante.terms.pk).update(end_date=date(2025, 6, 30))
    message = refusal(mad_descendante.convention, "submit")
    assert (
        "La date d'échéance (30/06/2025) doit suivre la date de prise d'effet (01/01/2026)."
        in message
    )


def test_every_missing_item_is_listed_at_once(mad_descendante, territory):
    Terms.objects.filter(pk=mad_descendante.terms.pk).update(
        periodicity_months=24, unit_cost_method=""
    )
    UsageForecast.objects.all().delete()
    with pytest.raises(services.TransitionRefused) as refused:
        transitions.convention_transition(mad_descendante.convention, "submit")
    assert len(refused.value.missing) == 3


# --- avenants ----------------------------------------------------------------------------------


@pytest.fixture
def signed_mad(mad_descendante, territory):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    with time_machine.travel(TODAY):
        return reach(convention, "deliberate", "sign", signature_date=date(2025, 12, 20))


@time_machine.travel(TODAY)
def test_an_avenant_effective_in_july_leaves_the_terms_of_march_unchanged(signed_mad, territory):
    convention = signed_mad
    amendment = amendments.amendment_create(
        convention=convention,
        amendment=Amendment(
            object="Passage à une périodicité trimestrielle", effective_from=date(2026, 7, 1)
        ),
        terms=Terms(
            settlement_mode=SettlementMode.TITRE, periodicity_months=3, unit_cost_method="Idem."
        ),
    )
    assert amendment.number == 1
    # A draft avenant changes nothing, on any date.
    assert in_force.terms_in_force(convention, date(2026, 8, 1)).periodicity_months == 12
    with pytest.raises(services.TransitionRefused) as refused:
        amendments.amendment_sign(amendment, signature_date=date(2026, 6, 20))
    assert "Délibération approuvant l'avenant n° 1 manquante" in "\n".join(refused.value.missing)
    add_deliberations(
        convention,
        [territory.epci, territory.commune_a, territory.commune_b],
        day=date(2026, 6, 10),
        amendment=amendment,
    )
    amendments.amendment_sign(amendment, signature_date=date(2026, 6, 20))
    march = in_force.terms_in_force(convention, date(2026, 3, 1))
    july = in_force.terms_in_force(convention, date(2026, 7, 1))
    assert (march.periodicity_months, march.amendment) == (12, None)
    assert (july.periodicity_months, july.amendment) == (3, amendment)
    # The forecasts carried over to the avenant's terms; the superseded ones stay.
    assert july.forecasts.count() == march.forecasts.count() == 2


@time_machine.travel(TODAY)
def test_avenants_are_numbered_in_order(signed_mad):
    numbers = [
        amendments.amendment_create(
            convention=signed_mad,
            amendment=Amendment(object=f"Avenant {month}", effective_from=date(2026, month, 1)),
            terms=Terms(
                settlement_mode=SettlementMode.TITRE, periodicity_months=6, unit_cost_method="x"
            ),
        ).number
        for month in (4, 9)
    ]
    assert numbers == [1, 2]


def test_an_avenant_on_a_draft_convention_is_refused(mad_descendante):
    with pytest.raises(services.TransitionRefused, match="convention signée ou en vigueur"):
        amendments.amendment_create(
            convention=mad_descendante.convention,
            amendment=Amendment(object="x", effective_from=date(2026, 7, 1)),
            terms=Terms(settlement_mode=SettlementMode.TITRE, periodicity_months=6),
        )


# --- termination, expiry, alerts ---------------------------------------------------------------


@time_machine.travel(TODAY)
def test_termination_records_whether_notice_was_respected(signed_mad, territory):
    termination = Termination(
        notified_on=date(2026, 11, 1),
        effective_on=date(2026, 12, 31),
        requested_by=territory.commune_a,
        reason="Réorganisation des services.",
        agents_outcome="Les agents retrouvent leur service d'origine.",
    )
    convention = transitions.convention_terminate(signed_mad, termination)
    assert convention.status == Status.TERMINATED
    assert termination.notice_respected is False  # 3 months' notice from 1 November: 1 February


@time_machine.travel(TODAY)
def test_termination_without_the_agents_outcome_is_refused(signed_mad, territory):
    with pytest.raises(services.TransitionRefused, match="situation des agents"):
        transitions.convention_terminate(
            signed_mad,
            Termination(
                notified_on=date(2026, 1, 1),
                effective_on=date(2026, 6, 30),
                requested_by=territory.epci,
                reason="x",
                agents_outcome="",
            ),
        )


@time_machine.travel(TODAY)
@pytest.mark.parametrize(
    ("notified_on", "effective_on", "said"),
    [
        (date(2027, 9, 1), date(2028, 3, 1), "notifiée le 01/09/2027, date à venir"),
        (date(2025, 1, 5), date(2025, 12, 31), "avant la signature de la convention"),
        (date(2025, 12, 21), date(2025, 12, 31), "avant la prise d'effet de la convention"),
    ],
)
def test_a_termination_with_impossible_dates_is_refused_and_changes_nothing(
    signed_mad, territory, notified_on, effective_on, said
):
    """A termination is notified (a past fact) after the convention was signed, and takes
    effect once the convention has: otherwise its billing would silently vanish."""
    with pytest.raises(services.TransitionRefused, match=said):
        transitions.convention_terminate(
            signed_mad,
            Termination(
                notified_on=notified_on,
                effective_on=effective_on,
                requested_by=territory.epci,
                reason="x",
                agents_outcome="Retour dans le service d'origine.",
            ),
        )
    signed_mad.refresh_from_db()
    assert signed_mad.status == Status.SIGNED
    assert not Termination.objects.filter(convention=signed_mad).exists()


def test_alerts_name_ending_conventions_and_notice_dates(signed_mad):
    found = overview.alerts(within_days=60, on=date(2028, 9, 15))
    assert [(a.kind, a.on) for a in found] == [("notice", date(2028, 9, 30))]
    found = overview.alerts(within_days=120, on=date(2028, 9, 15))
    assert [(a.kind, a.on) for a in found] == [
        ("notice", date(2028, 9, 30)),
        ("end", date(2028, 12, 31)),
    ]


def test_expiry_only_after_the_end_date(signed_mad):
    with time_machine.travel(date(2026, 1, 5)):
        convention = reach(make_enforceable(signed_mad), "enter_into_force")
    with time_machine.travel(date(2028, 6, 1)):
        assert "pas arrivée à échéance" in refusal(convention, "expire")
    with time_machine.travel(date(2029, 1, 2)):
        assert reach(convention, "expire").status == Status.EXPIRED


# --- optimistic locking ------------------------------------------------------------------------


def test_a_stale_version_is_refused(mad_descendante):
    convention = mad_descendante.convention
    first, second = (
        Convention.objects.get(pk=convention.pk),
        Convention.objects.get(pk=convention.pk),
    )
    records.bump_version(first, first.version)
    with pytest.raises(services.StaleVersion):
        records.bump_version(second, second.version)


@time_machine.travel(TODAY)
def test_an_avenant_of_a_terminated_convention_cannot_be_signed(signed_mad, territory):
    amendment = amendments.amendment_create(
        convention=signed_mad,
        amendment=Amendment(object="Trop tard", effective_from=date(2026, 7, 1)),
        terms=Terms(
            settlement_mode=SettlementMode.TITRE, periodicity_months=6, unit_cost_method="x"
        ),
    )
    add_deliberations(
        signed_mad,
        [territory.epci, territory.commune_a, territory.commune_b],
        day=date(2026, 6, 10),
        amendment=amendment,
    )
    transitions.convention_terminate(
        signed_mad,
        Termination(
            notified_on=date(2026, 6, 1),
            effective_on=date(2026, 9, 30),
            requested_by=territory.epci,
            reason="Fin",
            agents_outcome="Retour des agents",
        ),
    )
    with pytest.raises(services.TransitionRefused, match="ne peut plus être signé"):
        amendments.amendment_sign(amendment, signature_date=date(2026, 6, 20))


def test_an_avenant_after_the_end_of_the_convention_is_refused(signed_mad):
    with pytest.raises(services.TransitionRefused, match="s'achève le 31/12/2028"):
        amendments.amendment_create(
            convention=signed_mad,
            amendment=Amendment(object="Après la fin", effective_from=date(2029, 3, 1)),
            terms=Terms(
                settlement_mode=SettlementMode.TITRE, periodicity_months=6, unit_cost_method="x"
            ),
        )


def test_a_mad_makes_available_only_the_providers_own_services(mad_descendante, territory):
    """Before: a MAD by the Métropole of a service provided by a commune was accepted."""
    service = mad_descendante.service
    service.provider = territory.commune_a
    service.save()
    message = refusal(mad_descendante.convention, "submit")
    assert (
        f"Le service « {service.name} » relève de Commune A, pas de Métropole de test qui le met "
        "à disposition" in message
    )


def test_a_convention_settled_on_the_ac_promises_no_acomptes(service_commun):
    """Before: a mixed convention's PDF promised 4 acomptes a year that are never called."""
    Terms.objects.filter(pk=service_commun.terms.pk).update(
        settlement_mode=SettlementMode.MIXED, instalment_count=4
    )
    assert "le nombre d'acomptes doit être 0 (la convention en promet 4)" in refusal(
        service_commun.convention, "submit"
    )
    Terms.objects.filter(pk=service_commun.terms.pk).update(instalment_count=0)
    assert reach(service_commun.convention, "submit").status == Status.CONSULTATION


def test_the_document_states_the_settlement_as_computed(client, personas, service_commun):
    import io
    import re

    from django.urls import reverse
    from pypdf import PdfReader

    Terms.objects.filter(pk=service_commun.terms.pk).update(
        settlement_mode=SettlementMode.AC_IMPUTATION, instalment_count=0
    )
    client.force_login(personas.manager)
    response = client.get(reverse("conventions:pdf", args=[service_commun.convention.reference]))
    text = re.sub(
        r"\s+",
        " ",
        " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages),
    )
    assert "reporté sur l'attribution de compensation de l'exercice suivant" in text
    assert "acompte" not in text


def test_a_small_commune_gives_its_opinion_through_the_cst_of_its_centre_de_gestion(
    service_commun, territory
):
    """A commune under 50 agents has no CST: the CST of its centre de gestion is competent."""
    convention = reach(service_commun.convention, "submit")
    everyone = [territory.epci, territory.commune_a, territory.commune_b]
    add_deliberations(convention, everyone)
    complete_service_commun_file(convention, everyone)
    StaffBodyOpinion.objects.filter(organisation=territory.commune_b).update(body=StaffBody.CST_CDG)
    assert "nommez ce centre de gestion" in refusal(convention, "deliberate")
    StaffBodyOpinion.objects.filter(organisation=territory.commune_b).update(
        body_name="comité social territorial du centre de gestion du Puy-de-Dôme"
    )
    assert reach(convention, "deliberate").status == Status.DELIBERATED


def test_a_commune_manages_a_service_commun_only_when_the_epci_chose_it(service_commun, territory):
    """Before: any member could be named manager."""
    Convention.objects.filter(pk=service_commun.convention.pk).update(
        managing_organisation=territory.commune_a
    )
    service = service_commun.line.service
    service.provider = territory.commune_a  # the service commun is the managing commune's
    service.save()
    convention = reach(Convention.objects.get(pk=service_commun.convention.pk), "submit")
    everyone = [territory.epci, territory.commune_a, territory.commune_b]
    add_deliberations(convention, everyone)
    complete_service_commun_file(convention, everyone)
    assert "Commune A ne peut gérer le service commun que si le conseil de l'EPCI l'a choisie" in (
        refusal(convention, "deliberate")
    )
    Deliberation.objects.filter(organisation=territory.epci).update(designates_manager=True)
    assert reach(convention, "deliberate").status == Status.DELIBERATED


def test_the_epci_a_stranger_is_outside_of_is_named_with_an_elided_de(mad_descendante, territory):
    territory.epci.name = "Issoire Communauté"
    territory.epci.save()
    stranger = OrganisationFactory(name="Commune voisine")
    EpciMembershipFactory(member=stranger, epci=EpciFactory(name="Autre EPCI"))
    Party.objects.create(
        convention=mad_descendante.convention, organisation=stranger, role=PartyRole.BENEFICIARY
    )
    message = refusal(mad_descendante.convention, "submit")
    assert "Communes non membres d'Issoire Communauté à la date de prise d'effet" in message


def test_the_owner_of_a_service_is_named_with_de_elided_or_contracted(mad_descendante, territory):
    territory.epci.name = "Le Grand Clermont"
    territory.epci.save()
    territory.commune_a.name = "Aubière"
    territory.commune_a.save()
    service = mad_descendante.service
    service.provider = territory.commune_a
    service.save()
    message = refusal(mad_descendante.convention, "submit")
    assert (
        f"Le service « {service.name} » relève d'Aubière, pas du Grand Clermont qui le met à "
        "disposition : choisissez un service du Grand Clermont." in message
    )


def test_a_staff_opinion_names_its_organisation_with_an_elided_de():
    opinion = StaffBodyOpinion(
        organisation=Organisation(name="Aubière"),
        body=StaffBody.CST,
        opinion=Opinion.FAVOURABLE,
        date=date(2025, 10, 1),
    )
    assert str(opinion).endswith("d'Aubière, 01/10/2025")
