"""The one place that decides what a user may see and do.

Every view and queryset asks here: ``scope_of(user)`` for filtering querysets (each app's
``visible_to`` method) and the ``rules`` predicates and permissions below for actions. Roles come
from ``Membership`` rows; a user without one (an "outsider") sees nothing of the territory.
"""

from dataclasses import dataclass

import rules
from django.db.models import Q

from mutualisation.models import (
    EPCI_ROLES,
    EpciMembership,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
)


@dataclass(frozen=True)
class Scope:
    """What a user's memberships open: roles held, the organisations they belong to, and the
    territories (EPCIs) whose staff they are.

    One deployment may host many territories: the staff of an EPCI (manager, finance,
    administrator) work on its conventions, services, costs and statements only; like a commune
    reader, they also see what concerns their own organisation in another territory's
    conventions (as a party). Superusers (the platform's operators) see every territory.
    """

    roles: frozenset[str]
    organisation_ids: frozenset[int]
    territory_ids: frozenset[int] = frozenset()
    is_superuser: bool = False

    @property
    def is_staff_of_a_territory(self) -> bool:
        return self.is_superuser or bool(self.territory_ids)

    @property
    def has_any_role(self) -> bool:
        return self.is_superuser or bool(self.roles)

    def works_on(self, territory_id) -> bool:
        """Whether the user is staff of this territory (or a superuser)."""
        return self.is_superuser or territory_id in self.territory_ids


NO_SCOPE = Scope(roles=frozenset(), organisation_ids=frozenset())


def scope_of(user) -> Scope:
    """The user's scope, computed once per request (cached on the user object)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_SCOPE
    cached = getattr(user, "_mutualis_scope", None)
    if cached is not None:
        return cached
    rows = list(
        Membership.objects.filter(user=user).values_list(
            "role", "organisation_id", "organisation__kind"
        )
    )
    scope = Scope(
        roles=frozenset(role for role, _, _ in rows),
        organisation_ids=frozenset(org for _, org, _ in rows),
        territory_ids=frozenset(
            org for role, org, kind in rows if role in EPCI_ROLES and kind == OrganisationKind.EPCI
        ),
        is_superuser=user.is_superuser,
    )
    user._mutualis_scope = scope
    return scope


def territories_of(user):
    """The EPCIs whose staff the user is (every EPCI for a superuser)."""
    scope = scope_of(user)
    epcis = Organisation.objects.epcis()
    return epcis if scope.is_superuser else epcis.filter(pk__in=scope.territory_ids)


def home_territories(user):
    """The territories whose reference data (communes, populations, services) the user reads:
    those whose staff they are, and the EPCIs their organisation is a member of."""
    scope = scope_of(user)
    if scope.is_superuser:
        return Organisation.objects.epcis()
    member_of = EpciMembership.objects.filter(member_id__in=scope.organisation_ids)
    return Organisation.objects.epcis().filter(
        Q(pk__in=scope.territory_ids) | Q(pk__in=member_of.values("epci_id"))
    )


@rules.predicate
def has_any_role(user):
    return scope_of(user).has_any_role


@rules.predicate
def is_administrator(user):
    scope = scope_of(user)
    return scope.is_superuser or Role.ADMINISTRATOR in scope.roles


@rules.predicate
def is_manager(user):
    return Role.MANAGER in scope_of(user).roles


@rules.predicate
def is_finance(user):
    return Role.FINANCE in scope_of(user).roles


@rules.predicate
def is_commune_reader(user):
    return Role.COMMUNE_READER in scope_of(user).roles


# The territory's reference data (communes, populations, services) is shown to every user who
# holds a role; editing it is the administrators' job, in the Django admin.
rules.add_perm("mutualisation.view_territory", has_any_role)
# The Django admin shows every territory: the platform's operators' (mutualisation/admin.py).
rules.add_perm("mutualisation.use_admin", rules.is_superuser)


def chosen_territory(user, siren: str | None = None):
    """The territory a territory-wide page (adhesion matrix, staff, annual report) shows: the one
    named by ``siren`` among the user's home territories, else the first of them by name; None
    when the user has none (or names one that is not theirs: the page answers 404)."""
    territories = home_territories(user).order_by("name")
    if siren:
        return territories.filter(siren=siren).first()
    return territories.first()


def own_communes(user, territory) -> frozenset[int] | None:
    """Which communes' rows a territory-wide page may show the user: None (all of them) for the
    staff of ``territory``; otherwise the user's own organisations (a commune reader's)."""
    scope = scope_of(user)
    if scope.works_on(territory.pk):
        return None
    return scope.organisation_ids
