import pytest

from mutualisation.collation import french_sort_key


def test_communes_sort_in_french_alphabetical_order():
    names = ["Cournon-d'Auvergne", "Ceyrat", "Cébazat", "Châteaugay", "Chamalières", "Aubière"]
    assert sorted(names, key=french_sort_key) == [
        "Aubière",
        "Cébazat",
        "Ceyrat",
        "Chamalières",
        "Châteaugay",
        "Cournon-d'Auvergne",
    ]


def test_accented_name_sorts_after_its_unaccented_twin():
    assert sorted(["côte", "cote"], key=french_sort_key) == ["cote", "côte"]


# --- in the database: lists of choices and sorted columns ------------------------------------

NAMES = ["Cournon-d'Auvergne", "Ceyrat", "Cébazat", "Aulnat", "Aubière", "Le Cendre"]
FRENCH_ORDER = ["Aubière", "Aulnat", "Cébazat", "Ceyrat", "Cournon-d'Auvergne", "Le Cendre"]


@pytest.mark.django_db
def test_the_database_sorts_names_in_french_on_every_engine():
    from mutualisation.collation import FrenchOrder
    from mutualisation.models import Organisation
    from tests.factories import OrganisationFactory

    for name in NAMES:
        OrganisationFactory(name=name)
    names = list(
        Organisation.objects.filter(name__in=NAMES)
        .order_by(FrenchOrder("name"))
        .values_list("name", flat=True)
    )
    assert names == FRENCH_ORDER


@pytest.mark.django_db
def test_the_parties_offered_on_the_convention_form_are_in_french_order(
    client, personas, territory
):
    from django.urls import reverse

    from tests.factories import EpciMembershipFactory, OrganisationFactory

    for name in NAMES:
        EpciMembershipFactory(member=OrganisationFactory(name=name), epci=territory.epci)
    client.force_login(personas.manager)
    form = client.get(reverse("conventions:create")).context["formsets"]["parties"].forms[0]
    offered = [label for _value, label in form.fields["organisation"].choices if _value]
    assert [name for name in offered if name in NAMES] == FRENCH_ORDER


@pytest.mark.django_db
def test_the_convention_list_sorts_its_status_column_by_lifecycle(client, personas):
    from django.urls import reverse

    from conventions.models import Status
    from tests.factories import ConventionFactory

    for status in (Status.IN_FORCE, Status.DRAFT, Status.SIGNED, Status.CONSULTATION):
        ConventionFactory(status=status)
    client.force_login(personas.manager)
    table = client.get(reverse("conventions:list") + "?sort=status").context["table"]
    assert [row.record.status for row in table.rows] == [
        Status.DRAFT,
        Status.CONSULTATION,
        Status.SIGNED,
        Status.IN_FORCE,
    ]
