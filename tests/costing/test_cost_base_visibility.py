"""A commune reader sees the cost bases behind its own conventions (the unit cost it pays) and
those of its own services, never another organisation's detailed cost lines."""

import pytest
from django.urls import reverse

from conventions.models import ConventionService, Party, PartyRole
from tests.costing.conftest import cost_base
from tests.factories import ConventionFactory, ServiceFactory, TermsFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bases(territory):
    """A service of the EPCI used by commune A only, and one of commune B's own services."""
    used_by_a = ServiceFactory(provider=territory.epci, name="Service utilisé par A")
    convention = ConventionFactory()
    Party.objects.create(
        convention=convention, organisation=territory.epci, role=PartyRole.PROVIDER
    )
    Party.objects.create(
        convention=convention, organisation=territory.commune_a, role=PartyRole.BENEFICIARY
    )
    ConventionService.objects.create(
        convention=convention, service=used_by_a, unit_type=used_by_a.unit_type
    )
    TermsFactory(convention=convention)
    own_of_b = ServiceFactory(provider=territory.commune_b, name="Service propre de B")
    return cost_base(used_by_a), cost_base(own_of_b)


@pytest.mark.parametrize(
    ("persona", "sees_a", "sees_b"),
    [
        ("manager", True, True),
        ("finance", True, True),
        ("reader_a", True, False),
        ("reader_b", False, True),
    ],
)
def test_a_reader_sees_only_the_cost_bases_that_concern_its_commune(
    client, personas, bases, persona, sees_a, sees_b
):
    base_a, base_b = bases
    client.force_login(getattr(personas, persona))
    listing = client.get(reverse("costing:cost-bases", args=[2026])).content.decode()
    assert ("Service utilisé par A" in listing) is sees_a
    assert ("Service propre de B" in listing) is sees_b
    for base, seen in ((base_a, sees_a), (base_b, sees_b)):
        response = client.get(reverse("costing:cost-base", args=[base.pk]))
        assert response.status_code == (200 if seen else 404)
