"""Who may do what with costs: finance officers (and administrators) build cost bases and unit
costs; they and the convention managers record usage and simulate; everyone with a role reads
the reimbursements that concern them (commune readers: their commune's only)."""

import rules
from django.utils import timezone

from mutualisation.rules import has_any_role, is_administrator, is_finance, is_manager, scope_of


@rules.predicate
def may_remark(user, statement):
    """The debtor commune's reader, on a draft, within its review window."""
    scope = scope_of(user)
    return (
        statement is not None
        and not statement.is_issued
        and not scope.is_staff_of_a_territory
        and statement.payer_id in scope.organisation_ids
        and (statement.review_until is None or timezone.localdate() <= statement.review_until)
    )


@rules.predicate
def may_approve(user, statement):
    """A user of the debtor organisation, on a draft not yet approved (Métropole staff do not
    approve on a commune's behalf)."""
    return (
        statement is not None
        and not statement.is_issued
        and statement.approved_at is None
        and statement.payer_id in scope_of(user).organisation_ids
    )


rules.add_perm("costing.view_reimbursements", has_any_role)
rules.add_perm("costing.manage_costs", is_finance | is_administrator)
rules.add_perm("costing.record_usage", is_finance | is_manager | is_administrator)
rules.add_perm("costing.simulate", is_finance | is_manager | is_administrator)
# « Recalculer » the stored year's reimbursements (a page recomputes by itself when data changed).
rules.add_perm("costing.recompute_reimbursements", is_finance | is_manager | is_administrator)
rules.add_perm("costing.issue_statements", is_finance | is_administrator)
rules.add_perm("costing.remark_statement", may_remark)
rules.add_perm("costing.approve_statement", may_approve)
