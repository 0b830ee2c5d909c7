"""The one place that decides what a user may see and do.

Every view and queryset asks here: ``scope_of(user)`` for filtering querysets (each app's
``visible_to`` method) and the ``rules`` predicates and permissions below for actions. Roles come
from ``Membership`` rows; a user without one (an "outsider") sees nothing of the territory.
"""

from dataclasses import dataclass

import rules

from mutualisation.models import EPCI_ROLES, Membership, Role


@dataclass(frozen=True)
class Scope:
    """What a user's memberships open: roles held, and the organisations they belong to."""

    roles: frozenset[str]
    organisation_ids: frozenset[int]
    is_superuser: bool = False

    @property
    def territory_wide(self) -> bool:
        """Staff of the EPCI (and superusers) work on every commune of the territory."""
        return self.is_superuser or bool(self.roles & set(EPCI_ROLES))

    @property
    def has_any_role(self) -> bool:
        return self.is_superuser or bool(self.roles)


NO_SCOPE = Scope(roles=frozenset(), organisation_ids=frozenset())


def scope_of(user) -> Scope:
    """The user's scope, computed once per request (cached on the user object)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return NO_SCOPE
    cached = getattr(user, "_mutualis_scope", None)
    if cached is not None:
        return cached
    rows = list(Membership.objects.filter(user=user).values_list("role", "organisation_id"))
    scope = Scope(
        roles=frozenset(role for role, _ in rows),
        organisation_ids=frozenset(org for _, org in rows),
        is_superuser=user.is_superuser,
    )
    user._mutualis_scope = scope
    return scope


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


@rules.predicate
def is_territory_wide(user):
    return scope_of(user).territory_wide


# The territory's reference data (communes, populations, services) is shown to every user who
# holds a role; editing it is the administrators' job, in the Django admin.
rules.add_perm("mutualisation.view_territory", has_any_role)
rules.add_perm("mutualisation.use_admin", is_administrator)
