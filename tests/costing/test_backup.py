"""A backup restored as docs/exploitation.md says gives the same totals and statement
fingerprints (`manage.py verify_integrity` on the copy prints what it printed on the original),
and its triggers still refuse to change an issued statement.

SQLite: the online backup API (what the sqlite3 shell's `.backup` does). PostgreSQL: the real
pg_dump -Fc and pg_restore into a new database, dropped at the end."""

import secrets
import shutil
import sqlite3
import subprocess
import sys
from io import StringIO
from pathlib import Path

import psycopg2
import pytest
from django.core.management import call_command
from django.db import connection

from costing import statements
from tests.costing.conftest import issue_after_review

ROOT = Path(__file__).resolve().parents[2]
# The refusals of the triggers (costing migrations 0003 and 0008), whichever fires first.
REFUSED = "etat annuel emis"
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def issued_and_draft(billed, flushable_statements):
    """Committed (transactional test): an issued statement and a draft, as backed up."""
    prepared = {s.payer.name: s for s in statements.statements_prepare(2026)}
    return issue_after_review(prepared["Commune A"]), prepared["Commune B"]


def verify_here() -> str:
    out = StringIO()
    call_command("verify_integrity", stdout=out)
    return out.getvalue()


def verify_restored(database_url: str) -> subprocess.CompletedProcess:
    """The command as an operator runs it on the restored database: production settings."""
    return subprocess.run(
        [sys.executable, "manage.py", "verify_integrity"],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_ENV_FILE": "/dev/null",
            "DJANGO_SETTINGS_MODULE": "mutualisation.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DATABASE_URL": database_url,
        },
        capture_output=True,
        text=True,
        check=False,
    )


@transactional
def test_a_sqlite_backup_gives_the_same_totals_and_fingerprints(issued_and_draft, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite backup; PostgreSQL has its own test below.")
    issued, _draft = issued_and_draft
    original = verify_here()
    assert "Exercice 2026 : 1 état émis dont 0 annulé ; total 8\u00a0965,47\u00a0€" in original

    copy = tmp_path / "mutualis-copie.sqlite3"
    connection.ensure_connection()
    with sqlite3.connect(copy) as target:
        connection.connection.backup(target)
    target.close()

    restored = verify_restored(f"sqlite:///{copy}")
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout == original
    with sqlite3.connect(copy) as copied:
        pdf, fingerprint = copied.execute(
            "SELECT pdf, pdf_sha256 FROM costing_statement WHERE id = ?", [issued.pk]
        ).fetchone()
        assert (bytes(pdf), fingerprint) == (bytes(issued.pdf), issued.pdf_sha256)
        with pytest.raises(sqlite3.DatabaseError, match=REFUSED):
            copied.execute("UPDATE costing_statement SET total = 0 WHERE id = ?", [issued.pk])
    copied.close()


def pg_command(program: str, *args: str) -> None:
    settings = connection.settings_dict
    subprocess.run(
        [
            program,
            "-h",
            settings["HOST"] or "127.0.0.1",
            "-p",
            str(settings["PORT"] or 5432),
            "-U",
            settings["USER"],
            *args,
        ],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "PGPASSWORD": settings["PASSWORD"] or ""},
    )


@transactional
def test_a_postgresql_dump_restored_gives_the_same_totals_and_fingerprints(
    issued_and_draft, tmp_path
):
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL dump and restore; SQLite has its own test above.")
    if not (shutil.which("pg_dump") and shutil.which("pg_restore")):
        pytest.fail("pg_dump et pg_restore sont requis (paquet postgresql-client).")
    issued, _draft = issued_and_draft
    original = verify_here()
    assert "Exercice 2026 : 1 état émis dont 0 annulé ; total 8\u00a0965,47\u00a0€" in original

    settings = connection.settings_dict
    dump = tmp_path / "mutualis.dump"
    restored_name = f"{settings['NAME']}_restauree"
    pg_command("pg_dump", "--format=custom", f"--file={dump}", settings["NAME"])
    pg_command("dropdb", "--if-exists", restored_name)
    pg_command("createdb", restored_name)
    try:
        pg_command("pg_restore", "--exit-on-error", f"--dbname={restored_name}", str(dump))
        password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
        url = (
            f"postgres://{settings['USER']}{password}@"
            f"{settings['HOST'] or '127.0.0.1'}:{settings['PORT'] or 5432}/{restored_name}"
        )
        restored = verify_restored(url)
        assert restored.returncode == 0, restored.stderr
        assert restored.stdout == original

        copied = psycopg2.connect(
            dbname=restored_name,
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
        )
        try:
            with copied.cursor() as cursor:
                cursor.execute(
                    "SELECT pdf, pdf_sha256 FROM costing_statement WHERE id = %s", [issued.pk]
                )
                pdf, fingerprint = cursor.fetchone()
                assert (bytes(pdf), fingerprint) == (bytes(issued.pdf), issued.pdf_sha256)
                with pytest.raises(psycopg2.errors.IntegrityConstraintViolation, match=REFUSED):
                    cursor.execute(
                        "UPDATE costing_statement SET total = 0 WHERE id = %s", [issued.pk]
                    )
            copied.rollback()
            with copied.cursor() as cursor, pytest.raises(psycopg2.Error, match=REFUSED):
                cursor.execute("TRUNCATE costing_statement CASCADE")
        finally:
            copied.close()
    finally:
        pg_command("dropdb", "--if-exists", restored_name)
