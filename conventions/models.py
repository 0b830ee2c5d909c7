"""Models of the conventions app (built in a later issue)."""
