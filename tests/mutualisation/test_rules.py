"""The one place deciding what a user may see: scopes, predicates and visible organisations."""

import pytest

from mutualisation.models import Organisation
from mutualisation.rules import scope_of

pytestmark = pytest.mark.django_db


def test_metropole_staff_work_on_their_territory(personas, territory):
    for user in (personas.manager, personas.finance, personas.admin):
        scope = scope_of(user)
        assert scope.is_staff_of_a_territory
        assert scope.territory_ids == {territory.epci.pk}
        assert scope.works_on(territory.epci.pk)


def test_commune_reader_scope_is_their_commune(personas, territory):
    scope = scope_of(personas.reader_a)
    assert not scope.is_staff_of_a_territory
    assert not scope.works_on(territory.epci.pk)
    assert scope.organisation_ids == {territory.commune_a.pk}


def test_organisations_visible_to_each_persona(personas, territory):
    everything = set(Organisation.objects.all())
    assert set(Organisation.objects.visible_to(personas.manager)) == everything
    assert set(Organisation.objects.visible_to(personas.finance)) == everything
    assert list(Organisation.objects.visible_to(personas.reader_a)) == [territory.commune_a]
    assert list(Organisation.objects.visible_to(personas.reader_b)) == [territory.commune_b]
    assert not Organisation.objects.visible_to(personas.outsider).exists()


def test_anonymous_user_sees_nothing(territory):
    from django.contrib.auth.models import AnonymousUser

    assert not Organisation.objects.visible_to(AnonymousUser()).exists()


@pytest.mark.parametrize(
    ("persona", "territory_view", "admin_use"),
    [
        ("manager", True, False),
        ("finance", True, False),
        ("reader_a", True, False),
        ("reader_b", True, False),
        ("admin", True, True),
        ("outsider", False, False),
    ],
)
def test_permissions_by_persona(personas, persona, territory_view, admin_use):
    user = getattr(personas, persona)
    assert user.has_perm("mutualisation.view_territory") is territory_view
    assert user.has_perm("mutualisation.use_admin") is admin_use


def test_scope_is_computed_once_per_user_object(personas, django_assert_num_queries):
    user = personas.reader_a
    with django_assert_num_queries(1):
        scope_of(user)
        scope_of(user)
        scope_of(user)


def test_a_territory_wide_page_shows_the_users_own_territory_and_no_other(personas, territory):
    from mutualisation.rules import chosen_territory, own_communes
    from tests.factories import EpciFactory

    other = EpciFactory(name="Autre territoire")
    assert chosen_territory(personas.manager) == territory.epci
    assert chosen_territory(personas.manager, other.siren) is None
    assert chosen_territory(personas.reader_a) == territory.epci
    assert chosen_territory(personas.outsider) is None
    assert own_communes(personas.finance, territory.epci) is None
    assert own_communes(personas.reader_a, territory.epci) == {territory.commune_a.pk}
