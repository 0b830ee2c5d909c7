"""The avenant screens: a manager brings a commune into a convention by avenant, enters its
forecast and, for a service commun, the CST opinions on the avenant."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from conventions.models import Convention, Party, StaffBodyOpinion, Status, UsageForecast
from tests.factories import EpciMembershipFactory, OrganisationFactory

pytestmark = pytest.mark.django_db

TODAY = date(2026, 11, 28)


def avenant_data(**extra):
    return {
        "object": "Entrée d'une commune",
        "effective_from": "2026-07-01",
        "terms-settlement_mode": "TITRE",
        "terms-periodicity_months": "12",
        "terms-instalment_count": "4",
        "terms-unit_cost_method": "Coût / unités.",
        "terms-notice_months": "3",
        **extra,
    }


@time_machine.travel(TODAY)
def test_a_manager_brings_a_commune_in_by_avenant_and_enters_its_forecast(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)
    newcomer = OrganisationFactory(name="Commune nouvelle")
    EpciMembershipFactory(member=newcomer, epci=territory.epci, valid_from=date(2020, 1, 1))
    client.force_login(personas.manager)
    url = reverse("conventions:amendment-create", args=[convention.reference])
    page = client.get(url).content.decode()
    assert "Commune nouvelle" in page
    response = client.post(url, avenant_data(joining=[newcomer.pk]))
    assert response.status_code == 302
    party = Party.objects.get(convention=convention, organisation=newcomer)
    amendment = party.joined_by
    assert amendment.number == 1
    forecasts_url = reverse(
        "conventions:amendment-forecasts", args=[convention.reference, amendment.number]
    )
    page = client.get(forecasts_url).content.decode()
    assert "Commune nouvelle" in page
    existing = list(amendment.terms.forecasts.all())
    data = {
        "forecasts-TOTAL_FORMS": str(len(existing) + 1),
        "forecasts-INITIAL_FORMS": str(len(existing)),
        "forecasts-MIN_NUM_FORMS": "0",
        "forecasts-MAX_NUM_FORMS": "1000",
    }
    for index, forecast in enumerate(existing):
        data |= {
            f"forecasts-{index}-id": forecast.pk,
            f"forecasts-{index}-service": forecast.service_id,
            f"forecasts-{index}-beneficiary": forecast.beneficiary_id,
            f"forecasts-{index}-year": forecast.year,
            f"forecasts-{index}-units": str(forecast.units).replace(".", ","),
        }
    new = len(existing)
    data |= {
        f"forecasts-{new}-service": mad_descendante.line.pk,
        f"forecasts-{new}-beneficiary": newcomer.pk,
        f"forecasts-{new}-year": "2026",
        f"forecasts-{new}-units": "30",
    }
    assert client.post(forecasts_url, data).status_code == 302
    assert UsageForecast.objects.filter(terms=amendment.terms, beneficiary=newcomer).exists()
    detail = client.get(convention.get_absolute_url()).content.decode()
    assert "entrée par l'avenant n° 1 au 01/07/2026" in detail


@time_machine.travel(TODAY)
def test_a_non_member_commune_is_not_offered_and_is_refused(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)
    stranger = OrganisationFactory(name="Commune étrangère")
    client.force_login(personas.manager)
    url = reverse("conventions:amendment-create", args=[convention.reference])
    assert "Commune étrangère" not in client.get(url).content.decode()
    response = client.post(url, avenant_data(joining=[stranger.pk]))
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in response.content.decode()
    assert not convention.amendments.exists()


@time_machine.travel(TODAY)
def test_the_cst_opinion_on_a_service_commun_avenant_is_entered_on_the_avenant(
    client, personas, service_commun, territory
):
    convention = service_commun.convention
    Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)
    client.force_login(personas.manager)
    leaving = Party.objects.get(convention=convention, organisation=territory.commune_b)
    response = client.post(
        reverse("conventions:amendment-create", args=[convention.reference]),
        avenant_data(
            leaving=[leaving.pk],
            impact_established_on="2026-04-01",
            impact_summary="Un instructeur rejoint la commune B.",
            **{"terms-settlement_mode": "TITRE", "terms-managing_share_mode": "NONE"},
        ),
    )
    assert response.status_code == 302
    amendment = convention.amendments.get()
    assert amendment.impact_summary == "Un instructeur rejoint la commune B."
    response = client.post(
        reverse("conventions:amendment-opinion", args=[convention.reference, amendment.number]),
        {
            "organisation": territory.commune_b.pk,
            "body": "CST",
            "date": "2026-05-02",
            "opinion": "FAVOURABLE",
        },
    )
    assert response.status_code == 302
    assert StaffBodyOpinion.objects.get(amendment=amendment).organisation == territory.commune_b


@pytest.mark.parametrize("persona", ["finance", "reader_a", "reader_b", "outsider"])
def test_only_a_manager_creates_an_avenant(client, personas, mad_descendante, persona):
    convention = mad_descendante.convention
    Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)
    client.force_login(getattr(personas, persona))
    response = client.post(
        reverse("conventions:amendment-create", args=[convention.reference]), avenant_data()
    )
    assert response.status_code in (403, 404)
    assert not convention.amendments.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["joining", "leaving", "removed_services"])
@pytest.mark.parametrize("value", ["99999999999999999999", "-99999999999999999999"])
def test_an_id_beyond_the_databases_integers_is_an_invalid_choice_not_a_crash(
    mad_descendante, field, value
):
    """Found by the form fuzzing: SQLite raised OverflowError on a 20-digit id."""
    from conventions.forms import AmendmentForm

    form = AmendmentForm(
        {"object": "Avenant", "effective_from": "2026-06-01", field: [value]},
        convention=mad_descendante.convention,
    )
    assert not form.is_valid()
    assert form.errors[field] == [f"Sélectionnez un choix valide. {value} n’en fait pas partie."]


@time_machine.travel(TODAY)
def test_an_avenant_offers_and_adds_only_its_own_territorys_services(
    client, personas, mad_descendante, territory
):
    """The convention's provider also provides a service in another territory: that service,
    with its cost base, is not offered, is refused in French if posted, and no line of it
    lands on this convention (its cost lines would then be read by this territory's staff)."""
    from conventions.models import ConventionService
    from conventions.services import TransitionRefused, amendments
    from tests.costing.conftest import cost_base
    from tests.factories import EpciFactory, ServiceFactory

    convention = mad_descendante.convention
    Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)
    provider = convention.parties.get(role="PROVIDER").organisation
    elsewhere = EpciFactory(name="Autre EPCI")
    foreign = ServiceFactory(provider=provider, territory=elsewhere, name="Service d'ailleurs")
    base = cost_base(foreign)
    client.force_login(personas.manager)
    url = reverse("conventions:amendment-create", args=[convention.reference])
    assert "ailleurs" not in client.get(url).content.decode()
    response = client.post(
        url, avenant_data(new_service=foreign.pk, new_unit_type=foreign.unit_type_id)
    )
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in response.content.decode()
    assert not ConventionService.objects.filter(service=foreign).exists()

    # The service refuses it too, whatever form or API calls it.
    from conventions.models import Amendment, Terms
    from conventions.services.in_force import current_terms

    with pytest.raises(TransitionRefused, match="Service d'ailleurs"):
        amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Ajout", effective_from=date(2026, 7, 1)),
            terms=Terms(
                **{
                    f.name: getattr(current_terms(convention), f.name)
                    for f in Terms._meta.concrete_fields
                    if f.name not in ("id", "convention", "amendment", "effective_from")
                }
            ),
            new_services=[ConventionService(service=foreign, unit_type=foreign.unit_type)],
        )
    assert base.pk


@time_machine.travel(TODAY)
def test_a_line_of_another_territorys_service_gives_no_sight_of_its_cost_lines(
    personas, mad_descendante
):
    """Data entered before the rule above: a reader of a commune party to the convention sees
    the cost bases of the convention's own services, not of another territory's."""
    from conventions.models import ConventionService
    from costing.models import CostBase
    from tests.costing.conftest import cost_base
    from tests.factories import EpciFactory, ServiceFactory

    convention = mad_descendante.convention
    elsewhere = EpciFactory(name="Autre EPCI")
    foreign = ServiceFactory(provider=elsewhere, territory=elsewhere)
    ConventionService.objects.create(
        convention=convention, service=foreign, unit_type=foreign.unit_type
    )
    own, theirs = cost_base(mad_descendante.service), cost_base(foreign)
    visible = set(CostBase.objects.visible_to(personas.reader_a))
    assert own in visible
    assert theirs not in visible
