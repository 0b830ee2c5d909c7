"""Models of the costing app (built in a later issue)."""
