"""Writes that wait for one another: recognising the one that waited too long.

SQLite lets one writer at a time; the others wait ``DJANGO_DB_LOCK_TIMEOUT`` seconds (its busy
timeout) and then fail with « database is locked ». PostgreSQL waits on a locked row as long as
its ``lock_timeout`` (the same setting), and breaks a deadlock by failing one transaction. In
each case the transaction was rolled back and trying again moments later succeeds.
"""

from django.db import OperationalError

# lock_not_available (lock_timeout), deadlock_detected, serialization_failure
POSTGRES_BUSY_CODES = {"55P03", "40P01", "40001"}
SQLITE_BUSY_MESSAGES = ("database is locked", "database table is locked")


def is_busy(error: BaseException) -> bool:
    """Whether ``error`` is a write that gave up waiting for another (nothing else: a lost
    connection or a broken query is a real error)."""
    if not isinstance(error, OperationalError):
        return False
    if getattr(error.__cause__, "pgcode", None) in POSTGRES_BUSY_CODES:
        return True
    return str(error).startswith(SQLITE_BUSY_MESSAGES)
