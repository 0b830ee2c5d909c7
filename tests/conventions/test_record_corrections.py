"""Opinions and deliberations entered wrongly are corrected or removed by the manager until the
act is deliberated; afterwards they are locked, and their history stays."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from conventions.models import Deliberation, Opinion, StaffBody, StaffBodyOpinion
from conventions.services import transitions
from tests.conventions.conftest import add_deliberations
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 28)


@pytest.fixture
def wrong_opinion(service_commun, territory):
    return StaffBodyOpinion.objects.create(
        convention=service_commun.convention,
        organisation=territory.commune_a,
        body=StaffBody.CST,
        date=date(2025, 11, 1),
        opinion=Opinion.UNFAVOURABLE,
    )


def edit_url(record, kind):
    return reverse("conventions:record-edit", args=[record.convention.reference, kind, record.pk])


def delete_url(record, kind):
    return reverse("conventions:record-delete", args=[record.convention.reference, kind, record.pk])


@time_machine.travel(TODAY)
def test_the_manager_corrects_an_opinion_before_the_deliberation(client, personas, wrong_opinion):
    client.force_login(personas.manager)
    page = client.get(edit_url(wrong_opinion, "avis"))
    assert page.status_code == 200
    response = client.post(
        edit_url(wrong_opinion, "avis"),
        {
            "organisation": wrong_opinion.organisation_id,
            "body": StaffBody.CST,
            "date": "2025-11-02",
            "opinion": Opinion.FAVOURABLE,
        },
    )
    assert response.status_code == 302
    wrong_opinion.refresh_from_db()
    assert (wrong_opinion.opinion, wrong_opinion.date) == (Opinion.FAVOURABLE, date(2025, 11, 2))
    assert wrong_opinion.history.count() == 2


@time_machine.travel(TODAY)
def test_the_correction_form_refuses_a_non_party_and_a_future_date(client, personas, wrong_opinion):
    client.force_login(personas.manager)
    stranger = OrganisationFactory(name="Commune étrangère")
    response = client.post(
        edit_url(wrong_opinion, "avis"),
        {
            "organisation": stranger.pk,
            "body": StaffBody.CST,
            "date": "2027-01-01",
            "opinion": Opinion.FAVOURABLE,
        },
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Cette date ne peut être dans le futur" in body
    assert "Sélectionnez un choix valide" in body
    wrong_opinion.refresh_from_db()
    assert wrong_opinion.opinion == Opinion.UNFAVOURABLE


@time_machine.travel(TODAY)
def test_the_manager_deletes_a_wrong_opinion_and_its_history_stays(client, personas, wrong_opinion):
    client.force_login(personas.manager)
    pk = wrong_opinion.pk
    response = client.post(delete_url(wrong_opinion, "avis"))
    assert response.status_code == 302
    assert not StaffBodyOpinion.objects.filter(pk=pk).exists()
    deleted = StaffBodyOpinion.history.filter(id=pk, history_type="-").get()
    assert deleted.history_user == personas.manager


@time_machine.travel(TODAY)
def test_once_deliberated_opinions_and_deliberations_are_locked(
    client, personas, service_commun, territory
):
    from tests.conventions.conftest import complete_service_commun_file

    convention = service_commun.convention
    everyone = [territory.epci, territory.commune_a, territory.commune_b]
    complete_service_commun_file(convention, everyone)
    convention = transitions.convention_transition(convention, "submit")
    add_deliberations(convention, everyone)
    convention = transitions.convention_transition(convention, "deliberate")
    opinion = convention.opinions.first()
    deliberation = convention.deliberations.first()
    client.force_login(personas.manager)
    response = client.post(delete_url(opinion, "avis"), follow=True)
    assert "ne se modifient plus que par avenant" in response.content.decode()
    assert StaffBodyOpinion.objects.filter(pk=opinion.pk).exists()
    response = client.get(edit_url(deliberation, "deliberation"), follow=True)
    assert "ne se modifient plus que par avenant" in response.content.decode()
    response = client.post(delete_url(deliberation, "deliberation"))
    assert Deliberation.objects.filter(pk=deliberation.pk).exists()


@time_machine.travel(TODAY)
@pytest.mark.parametrize("persona", ["finance", "reader_a", "reader_b", "outsider"])
def test_only_the_manager_corrects_or_deletes(client, personas, wrong_opinion, persona):
    client.force_login(getattr(personas, persona))
    assert client.get(edit_url(wrong_opinion, "avis")).status_code in (403, 404)
    assert client.post(delete_url(wrong_opinion, "avis")).status_code in (403, 404)
    assert StaffBodyOpinion.objects.filter(pk=wrong_opinion.pk).exists()


@time_machine.travel(TODAY)
def test_a_deliberation_form_offers_only_the_parties(client, personas, mad_descendante, territory):
    convention = mad_descendante.convention
    stranger = OrganisationFactory(name="Commune hors convention")
    add_deliberations(convention, [territory.epci])
    deliberation = convention.deliberations.get()
    client.force_login(personas.manager)
    page = client.get(edit_url(deliberation, "deliberation")).content.decode()
    assert str(territory.commune_a) in page
    assert "Commune hors convention" not in page
    edit = client.get(reverse("conventions:edit", args=[convention.reference])).content.decode()
    assert "Commune hors convention" not in edit.split('id="id_deliberations-TOTAL_FORMS"')[1]
    assert stranger.pk
