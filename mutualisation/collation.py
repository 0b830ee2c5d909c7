"""French alphabetical order for names (Cébazat before Ceyrat, Le Cendre among the L).

Databases sort by their own collation (binary on SQLite, locale-dependent on PostgreSQL); lists
of communes shown to people are sorted with this key so they read the same everywhere.
"""

import unicodedata

from django.db.models import Func


def french_sort_key(text: str) -> tuple[str, str]:
    """Accents and case ignored first, then used to break ties (« cote » < « côte »)."""
    decomposed = unicodedata.normalize("NFKD", text)
    base = "".join(char for char in decomposed if not unicodedata.combining(char))
    return (base.casefold(), text)


def french_compare(left: str, right: str) -> int:
    """-1, 0 or 1 as ``french_sort_key`` orders two names (SQLite's « french » collation)."""
    a, b = french_sort_key(left), french_sort_key(right)
    return (a > b) - (a < b)


# The ICU collation of French on PostgreSQL (built with ICU, as Debian's and most are).
POSTGRESQL_COLLATION = "fr-x-icu"
SQLITE_COLLATION = "french"


class FrenchOrder(Func):
    """A text column ordered in French by the database: ``order_by(FrenchOrder("name"))``.
    PostgreSQL uses its ICU collation for French; SQLite the « french » collation each new
    connection registers (``register_sqlite_collation``), built on ``french_sort_key``."""

    arity = 1

    def as_sql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"{sql} COLLATE {SQLITE_COLLATION}", params

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = compiler.compile(self.source_expressions[0])
        return f'{sql} COLLATE "{POSTGRESQL_COLLATION}"', params


def register_sqlite_collation(sender, connection, **kwargs):
    """``connection_created`` receiver: SQLite learns the « french » collation."""
    if connection.vendor == "sqlite":
        connection.connection.create_collation(SQLITE_COLLATION, french_compare)
