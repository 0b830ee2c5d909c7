"""Who may do what with conventions, on top of the scopes of mutualisation/rules.py.

Managers (and administrators) create and edit; finance reads; a commune reader sees only the
conventions their commune is party to; querysets filter with ``Convention.objects.visible_to``.
"""

import rules

from mutualisation.rules import has_any_role, is_administrator, is_manager, scope_of


@rules.predicate
def can_see_convention(user, convention):
    if convention is None:
        return has_any_role(user)
    scope = scope_of(user)
    if scope.works_on(convention.territory_id):
        return True
    return convention.parties.filter(organisation_id__in=scope.organisation_ids).exists()


@rules.predicate
def works_on_convention(user, convention):
    """Staff of the convention's territory: a party from another territory reads it only."""
    return convention is None or scope_of(user).works_on(convention.territory_id)


is_convention_editor = is_manager | is_administrator

rules.add_perm("conventions.view_convention", can_see_convention)
rules.add_perm("conventions.add_convention", is_convention_editor)
rules.add_perm("conventions.change_convention", is_convention_editor & works_on_convention)


# --- the schéma de mutualisation -----------------------------------------------------------------
# Querysets filter with ``Scheme.objects.visible_to`` (the territory's staff and the readers of
# its member communes); the territory's managers and administrators change it, finance reads.


@rules.predicate
def works_on_scheme(user, scheme):
    return scheme is None or scope_of(user).works_on(scheme.territory_id)


@rules.predicate
def can_see_scheme_action(user, action):
    """The staff of the scheme's territory see every action; a commune reader those concerning
    their commune (the scheme itself being visible to them: ``Scheme.objects.visible_to``)."""
    if action is None:
        return has_any_role(user)
    scope = scope_of(user)
    if scope.works_on(action.scheme.territory_id):
        return True
    return action.communes.filter(pk__in=scope.organisation_ids).exists()


is_scheme_editor = is_manager | is_administrator

rules.add_perm("conventions.view_schemeaction", can_see_scheme_action)
rules.add_perm("conventions.add_scheme", is_scheme_editor)
rules.add_perm("conventions.change_scheme", is_scheme_editor & works_on_scheme)
