"""A convention is a public act: « en vigueur » requires it to be enforceable (deliberations
transmitted and published, the signed convention transmitted and notified), and it takes no
effect before that, except its financial terms for a reason written in it."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from conventions.models import Convention, Deliberation, Status
from conventions.services import TransitionRefused, records, transitions
from conventions.services.gates import enforceable_on, load
from tests.conventions.conftest import add_deliberations, make_enforceable

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 28)


def reach(convention, *names, **kwargs):
    for name in names:
        convention = transitions.convention_transition(convention, name, **kwargs)
    return convention


def refusal(convention, name, **kwargs):
    with pytest.raises(TransitionRefused) as refused:
        transitions.convention_transition(convention, name, **kwargs)
    return " | ".join(refused.value.missing)


@pytest.fixture
def signed(mad_descendante, territory):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    with time_machine.travel(TODAY):
        return reach(convention, "deliberate", "sign", signature_date=date(2025, 12, 20))


@time_machine.travel(TODAY)
def test_entry_into_force_lists_every_missing_transmission_publication_and_notification(signed):
    message = refusal(signed, "enter_into_force")
    assert "Délibération n° " in message
    assert "indiquez sa date de transmission au contrôle de légalité" in message
    assert "le n° de l'accusé de réception de la préfecture" in message
    assert "sa date de publication" in message
    assert "Convention signée : indiquez" in message
    assert "sa date de notification aux parties" in message
    # Elision in the organisation's name: « de Commune A » / « d'… » is written as French does.
    assert " de Clermont" in message or " d'" in message or " de " in message


@time_machine.travel(TODAY)
def test_entry_into_force_is_accepted_once_enforceable_and_the_date_is_known(signed):
    convention = make_enforceable(signed, day=date(2025, 12, 22))
    assert enforceable_on(load(convention)) == date(2025, 12, 22)
    assert reach(convention, "enter_into_force").status == Status.IN_FORCE


@time_machine.travel(TODAY)
def test_one_party_whose_deliberation_was_not_transmitted_blocks_the_entry_into_force(
    signed, territory
):
    convention = make_enforceable(signed)
    Deliberation.objects.filter(convention=convention, organisation=territory.commune_b).update(
        transmitted_on=None, acknowledgement_number=""
    )
    message = refusal(Convention.objects.get(pk=convention.pk), "enter_into_force")
    assert str(territory.commune_b) in message
    assert str(territory.commune_a) not in message
    assert "sa date de transmission" in message


@time_machine.travel(TODAY)
def test_the_convention_cannot_be_transmitted_before_its_signature_nor_in_the_future(signed):
    with pytest.raises(TransitionRefused) as refused:
        records.convention_publicity_record(
            convention=signed,
            transmitted_on=date(2025, 12, 19),
            acknowledgement_number="063-AR",
            notified_on=date(2026, 12, 1),
        )
    message = " | ".join(refused.value.missing)
    assert "La transmission ne peut précéder la signature (20/12/2025)" in message
    assert "La date de notification ne peut être dans le futur" in message
    signed.refresh_from_db()
    assert signed.transmitted_on is None


@time_machine.travel(TODAY)
def test_a_start_before_the_deliberations_is_refused_without_the_reason_for_financial_retroactivity(
    mad_descendante, territory
):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(
        convention,
        [territory.epci, territory.commune_a, territory.commune_b],
        day=date(2026, 2, 10),
    )
    message = refusal(convention, "deliberate")
    assert "La prise d'effet (01/01/2026) précède la délibération du 10/02/2026" in message
    assert "clauses financières" in message

    Convention.objects.filter(pk=convention.pk).update(
        retroactivity_reason="Le service est rendu depuis le 1er janvier 2026 ; son coût est "
        "remboursé pour l'année entière."
    )
    convention = reach(
        Convention.objects.get(pk=convention.pk),
        "deliberate",
        "sign",
        signature_date=date(2026, 2, 20),
    )
    convention = make_enforceable(convention, day=date(2026, 2, 24))
    assert enforceable_on(load(convention)) == date(2026, 2, 24)
    assert reach(convention, "enter_into_force").status == Status.IN_FORCE


@time_machine.travel(TODAY)
def test_retroactivity_is_refused_at_entry_into_force_when_the_reason_was_removed(
    mad_descendante, territory
):
    convention = reach(mad_descendante.convention, "submit")
    add_deliberations(
        convention,
        [territory.epci, territory.commune_a, territory.commune_b],
        day=date(2026, 2, 10),
    )
    Convention.objects.filter(pk=convention.pk).update(retroactivity_reason="Service rendu.")
    convention = reach(
        Convention.objects.get(pk=convention.pk),
        "deliberate",
        "sign",
        signature_date=date(2026, 2, 20),
    )
    convention = make_enforceable(convention, day=date(2026, 2, 24))
    Convention.objects.filter(pk=convention.pk).update(retroactivity_reason="")
    message = refusal(Convention.objects.get(pk=convention.pk), "enter_into_force")
    assert (
        "ne devient exécutoire que le 24/02/2026, après sa date de prise d'effet (01/01/2026)"
        in (message)
    )


@time_machine.travel(TODAY)
def test_the_manager_records_the_transmission_in_the_browser_forms(client, personas, signed):
    client.force_login(personas.manager)
    deliberation = signed.deliberations.first()
    url = reverse("conventions:deliberation-publicity", args=[signed.reference, deliberation.pk])
    response = client.post(url, {"transmitted_on": "2025-12-22", "published_on": "2025-12-22"})
    assert response.status_code == 200
    assert "Indiquez le n° de l&#x27;accusé de réception" in response.content.decode()
    response = client.post(
        url,
        {
            "transmitted_on": "2025-12-09",
            "acknowledgement_number": "063-1",
            "published_on": "2025-12-22",
        },
    )
    assert "ne peut être transmise avant sa séance" in response.content.decode()
    response = client.post(
        url,
        {
            "transmitted_on": "2025-12-22",
            "acknowledgement_number": "063-1",
            "published_on": "2025-12-22",
        },
    )
    assert response.status_code == 302
    deliberation.refresh_from_db()
    assert (deliberation.transmitted_on, deliberation.acknowledgement_number) == (
        date(2025, 12, 22),
        "063-1",
    )
    response = client.post(
        reverse("conventions:publicity", args=[signed.reference]),
        {
            "transmitted_on": "2025-12-22",
            "acknowledgement_number": "063-CONV",
            "notified_on": "2025-12-23",
        },
    )
    assert response.status_code == 302
    signed.refresh_from_db()
    assert signed.notified_on == date(2025, 12, 23)
    page = client.get(signed.get_absolute_url()).content.decode()
    assert "accusé de réception n° 063-CONV" in page


@time_machine.travel(TODAY)
@pytest.mark.parametrize("persona", ["finance", "reader_a", "reader_b", "outsider"])
def test_only_a_manager_records_a_transmission(client, personas, signed, persona):
    client.force_login(getattr(personas, persona))
    response = client.post(
        reverse("conventions:publicity", args=[signed.reference]),
        {
            "transmitted_on": "2025-12-22",
            "acknowledgement_number": "X",
            "notified_on": "2025-12-23",
        },
    )
    assert response.status_code in (403, 404)
    signed.refresh_from_db()
    assert signed.transmitted_on is None


def test_an_ascending_mad_names_the_transfer_whose_service_the_commune_kept(territory):
    from conventions.models import ConventionService, Party, PartyRole, UsageForecast
    from conventions.services.gates import gaps_for
    from tests.factories import ConventionFactory, ServiceFactory, TermsFactory

    convention = ConventionFactory(title="MAD ascendante voirie", preamble="")
    Party.objects.create(
        convention=convention, organisation=territory.commune_a, role=PartyRole.PROVIDER
    )
    Party.objects.create(
        convention=convention, organisation=territory.epci, role=PartyRole.BENEFICIARY
    )
    service = ServiceFactory(provider=territory.commune_a)
    line = ConventionService.objects.create(
        convention=convention, service=service, unit_type=service.unit_type
    )
    terms = TermsFactory(convention=convention)
    UsageForecast.objects.create(
        terms=terms, service=line, beneficiary=territory.epci, year=2026, units=10
    )
    gaps = " ".join(gaps_for(convention, Status.CONSULTATION))
    assert "Mise à disposition ascendante : indiquez le transfert de compétence" in gaps
    Convention.objects.filter(pk=convention.pk).update(
        retained_service_basis="l'arrêté préfectoral n° 17-01 du 2 janvier 2017"
    )
    convention.refresh_from_db()
    assert gaps_for(convention, Status.CONSULTATION) == []
    from conventions.services import documents
    from tests.conventions.test_convention_document import text_of

    text = text_of(documents.render_convention(convention))
    assert "L. 5211-4-1 II (mise à disposition de services)" in text
    assert "Vu l'arrêté préfectoral n° 17-01 du 2 janvier 2017, la commune ayant conservé" in text
