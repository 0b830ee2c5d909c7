"""Admin of the costing app (models come in a later issue)."""
