import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from mutualisation.models import (
    EpciMembership,
    Membership,
    Organisation,
    OrganisationKind,
    PopulationRecord,
    Service,
    UnitType,
)
from tests.conftest import run_seed_demo

pytestmark = pytest.mark.django_db


def seed_twice():
    run_seed_demo()
    run_seed_demo()


def test_seed_demo_twice_loads_the_territory_once():
    seed_twice()
    assert Organisation.objects.filter(kind=OrganisationKind.EPCI).count() == 1
    assert Organisation.objects.filter(kind=OrganisationKind.COMMUNE).count() == 21
    assert EpciMembership.objects.count() == 21
    assert PopulationRecord.objects.count() == 42
    assert Service.objects.count() == 8
    assert get_user_model().objects.count() == 5
    assert Membership.objects.count() == 5


def test_seeded_metropole_and_clermont_ferrand_carry_their_official_identifiers():
    seed_twice()
    metropole = Organisation.objects.get(siren="246300701")
    assert (metropole.name, metropole.epci_nature, metropole.tax_regime) == (
        "Clermont Auvergne Métropole",
        "METRO",
        "FPU",
    )
    clermont = Organisation.objects.get(insee_code="63113")
    assert (clermont.name, clermont.siren) == ("Clermont-Ferrand", "216301135")


def test_seeded_populations_sum_to_the_published_totals():
    seed_twice()
    totals = PopulationRecord.objects.totals_by_vintage(
        organisations=Organisation.objects.communes(), vintages=[2023, 2022]
    )
    assert totals[2023].municipal == 295_488
    assert totals[2023].total == 300_969
    assert totals[2022].municipal == 296_677


def test_seed_restores_reference_values_changed_by_hand():
    seed_twice()
    PopulationRecord.objects.filter(organisation__insee_code="63113", vintage=2023).update(
        municipal=1
    )
    run_seed_demo()
    record = PopulationRecord.objects.get(organisation__insee_code="63113", vintage=2023)
    assert record.municipal == 146_351


def test_ads_unit_type_is_weighted_in_equivalent_permis():
    seed_twice()
    ads = UnitType.objects.get(code="equivalent-permis")
    assert {w.code: str(w.weight) for w in ads.weights.all()} == {
        "PC": "1.000",
        "DP": "0.500",
        "CU": "0.200",
    }
    assert Service.objects.get(code="voirie-entretien").provider.siren == "216301135"


def test_demo_users_get_one_role_each():
    seed_twice()
    roles = dict(Membership.objects.values_list("user__username", "role"))
    assert roles == {
        "gestionnaire": "MANAGER",
        "finances": "FINANCE",
        "lecteur.clermont": "COMMUNE_READER",
        "lecteur.aubiere": "COMMUNE_READER",
        "admin": "ADMINISTRATOR",
    }


def test_demo_users_are_refused_outside_development(settings):
    settings.DEMO_USERS_ENABLED = False
    with pytest.raises(CommandError, match="qu'en développement"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()
    run_seed_demo("--no-users")
    assert Organisation.objects.count() == 22
    assert not get_user_model().objects.exists()
