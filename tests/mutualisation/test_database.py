"""Writes wait for one another (SQLite: IMMEDIATE transactions, WAL, busy timeout; PostgreSQL:
lock_timeout), and only a write that waited too long is taken for a busy database."""

import pytest
from django.db import DatabaseError, OperationalError, connection

from mutualisation.database import is_busy


@pytest.mark.django_db
def test_connections_wait_for_a_writer_as_configured():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            assert connection.transaction_mode == "IMMEDIATE"
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA busy_timeout")
            assert cursor.fetchone()[0] == 20_000  # DJANGO_DB_LOCK_TIMEOUT, in milliseconds
            cursor.execute("PRAGMA recursive_triggers")  # costing/apps.py still sets it
            assert cursor.fetchone()[0] == 1
        else:
            cursor.execute("SHOW lock_timeout")
            assert cursor.fetchone()[0] == "20s"


@pytest.mark.parametrize(
    ("error", "busy"),
    [
        (OperationalError("database is locked"), True),
        (OperationalError("no such table: costing_statement"), False),
        (DatabaseError("database is locked"), False),  # not an OperationalError
    ],
)
def test_only_a_write_that_waited_too_long_is_a_busy_database(error, busy):
    assert is_busy(error) is busy
