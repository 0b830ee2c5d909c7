"""The database itself refuses what must never hold; model validation explains it in French."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from mutualisation.models import (
    EpciMembership,
    Membership,
    Organisation,
    OrganisationKind,
    PopulationRecord,
    Role,
)
from tests.factories import (
    EpciFactory,
    EpciMembershipFactory,
    OrganisationFactory,
    PopulationRecordFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def assert_refused_by_database(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_siren_is_unique_in_the_database():
    commune = OrganisationFactory()
    assert_refused_by_database(lambda: OrganisationFactory(siren=commune.siren))


def test_insee_code_is_unique_in_the_database():
    commune = OrganisationFactory()
    assert_refused_by_database(lambda: OrganisationFactory(insee_code=commune.insee_code))


def test_several_non_communes_may_have_no_insee_code():
    EpciFactory()
    EpciFactory()
    OrganisationFactory(kind=OrganisationKind.ATTACHED_BODY, insee_code=None)
    assert Organisation.objects.filter(insee_code__isnull=True).count() == 3


def test_a_commune_without_insee_code_is_refused_by_the_database():
    assert_refused_by_database(lambda: OrganisationFactory(insee_code=None))


def test_epci_nature_is_required_for_an_epci_and_forbidden_elsewhere():
    assert_refused_by_database(lambda: EpciFactory(epci_nature=""))
    assert_refused_by_database(lambda: OrganisationFactory(tax_regime="FPU"))


def test_invalid_siren_is_reported_in_french_by_model_validation():
    commune = OrganisationFactory.build(siren="216301134")
    with pytest.raises(ValidationError) as error:
        commune.full_clean()
    assert "clé de contrôle" in error.value.message_dict["siren"][0]


def test_one_population_record_per_organisation_and_vintage():
    record = PopulationRecordFactory()
    assert_refused_by_database(
        lambda: PopulationRecordFactory(organisation=record.organisation, vintage=record.vintage)
    )
    PopulationRecordFactory(organisation=record.organisation, vintage=2022, in_force_year=2025)


@pytest.mark.parametrize(
    "values",
    [
        {"municipal": 0, "total": None},
        {"municipal": 1000, "total": 999},
        {"vintage": 2023, "in_force_year": 2022},
    ],
    ids=["municipal-not-positive", "total-below-municipal", "in-force-before-vintage"],
)
def test_population_invariants_are_enforced_by_the_database(values):
    assert_refused_by_database(lambda: PopulationRecordFactory(**values))


def test_population_invariant_is_explained_in_french_by_model_validation():
    record = PopulationRecordFactory.build(
        organisation=OrganisationFactory(), municipal=1000, total=10
    )
    with pytest.raises(ValidationError) as error:
        record.full_clean()
    assert "population totale ne peut être inférieure" in str(error.value)


def test_population_totals_by_vintage_sum_communes_and_flag_missing_totals():
    a, b = OrganisationFactory(), OrganisationFactory()
    PopulationRecordFactory(organisation=a, municipal=100, total=110)
    PopulationRecordFactory(organisation=b, municipal=50, total=55)
    PopulationRecordFactory(
        organisation=a, vintage=2022, in_force_year=2025, municipal=98, total=None
    )
    PopulationRecordFactory(
        organisation=b, vintage=2022, in_force_year=2025, municipal=52, total=70
    )
    totals = PopulationRecord.objects.totals_by_vintage(organisations=[a, b], vintages=[2023, 2022])
    assert totals[2023] == (150, 165)
    assert totals[2022].municipal == 150
    assert totals[2022].total is None


def test_membership_end_before_start_is_refused_by_the_database():
    assert_refused_by_database(
        lambda: EpciMembershipFactory(valid_from=date(2020, 1, 1), valid_until=date(2019, 1, 1))
    )


def test_overlapping_epci_memberships_are_refused_in_french():
    first = EpciMembershipFactory(valid_from=date(2018, 1, 1))
    second = EpciMembership(member=first.member, epci=EpciFactory(), valid_from=date(2020, 1, 1))
    with pytest.raises(ValidationError) as error:
        second.full_clean()
    assert "déjà membre d'un EPCI" in error.value.message_dict["valid_from"][0]


def test_consecutive_epci_memberships_are_accepted():
    first = EpciMembershipFactory(valid_from=date(2010, 1, 1), valid_until=date(2017, 12, 31))
    EpciMembership(member=first.member, epci=first.epci, valid_from=date(2018, 1, 1)).full_clean()


def test_only_a_commune_can_be_member_of_an_epci():
    membership = EpciMembership(
        member=EpciFactory(), epci=EpciFactory(), valid_from=date(2020, 1, 1)
    )
    with pytest.raises(ValidationError) as error:
        membership.full_clean()
    assert "Seule une commune" in error.value.message_dict["member"][0]


def test_current_memberships_exclude_ended_ones():
    EpciMembershipFactory(valid_from=date(2010, 1, 1), valid_until=date(2011, 1, 1))
    current = EpciMembershipFactory(valid_from=date(2010, 1, 1))
    assert list(EpciMembership.objects.current()) == [current]


@pytest.mark.parametrize("role", [Role.MANAGER, Role.FINANCE, Role.ADMINISTRATOR])
def test_epci_roles_cannot_be_held_in_a_commune(role):
    membership = Membership(user=UserFactory(), organisation=OrganisationFactory(), role=role)
    with pytest.raises(ValidationError) as error:
        membership.full_clean()
    assert "au sein de l'EPCI" in error.value.message_dict["organisation"][0]


def test_commune_reader_cannot_be_attached_to_the_epci():
    membership = Membership(
        user=UserFactory(), organisation=EpciFactory(), role=Role.COMMUNE_READER
    )
    with pytest.raises(ValidationError) as error:
        membership.full_clean()
    assert "rattaché à une commune" in error.value.message_dict["organisation"][0]


def test_changes_to_reference_data_are_kept_in_history():
    commune = OrganisationFactory(name="Ancien nom")
    commune.name = "Nouveau nom"
    commune.save()
    assert [h.name for h in commune.history.order_by("history_date")] == [
        "Ancien nom",
        "Nouveau nom",
    ]


def test_a_membership_names_its_epci_with_an_elided_de():
    membership = EpciMembership(
        member=Organisation(name="Le Cendre"), epci=Organisation(name="Issoire Communauté")
    )
    assert str(membership) == "Le Cendre, membre d'Issoire Communauté"
