"""French alphabetical order for names (Cébazat before Ceyrat, Le Cendre among the L).

Databases sort by their own collation (binary on SQLite, locale-dependent on PostgreSQL); lists
of communes shown to people are sorted with this key so they read the same everywhere.
"""

import unicodedata


def french_sort_key(text: str) -> tuple[str, str]:
    """Accents and case ignored first, then used to break ties (« cote » < « côte »)."""
    decomposed = unicodedata.normalize("NFKD", text)
    base = "".join(char for char in decomposed if not unicodedata.combining(char))
    return (base.casefold(), text)
