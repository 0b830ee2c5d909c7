"""Who may do what with costs: finance officers (and administrators) build cost bases and unit
costs; they and the convention managers record usage and simulate; everyone with a role reads
the reimbursements that concern them (commune readers: their commune's only)."""

import rules

from mutualisation.rules import has_any_role, is_administrator, is_finance, is_manager

rules.add_perm("costing.view_reimbursements", has_any_role)
rules.add_perm("costing.manage_costs", is_finance | is_administrator)
rules.add_perm("costing.record_usage", is_finance | is_manager | is_administrator)
rules.add_perm("costing.simulate", is_finance | is_manager | is_administrator)
rules.add_perm("costing.issue_statements", is_finance | is_administrator)
