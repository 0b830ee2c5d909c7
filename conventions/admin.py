"""Admin of the conventions app (models come in a later issue)."""
