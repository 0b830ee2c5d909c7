"""The database, not only the application, keeps issued statements: no REPLACE can delete or
overwrite one (SQLite), no row is born issued, a draft is issued only with the next number of the
counter, and no TRUNCATE wipes an issued statement or its lines (PostgreSQL)."""

import hashlib
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    connection,
    connections,
    transaction,
)

from costing import statements
from costing.models import (
    Statement,
    StatementCounter,
    StatementLine,
    StatementStatus,
    UsageRecord,
)
from tests.costing.conftest import issue_after_review

pytestmark = pytest.mark.django_db

STATEMENT = Statement._meta.db_table
LINE = StatementLine._meta.db_table
SQLITE = pytest.mark.skipif("connection.vendor != 'sqlite'", reason="SQLite only")
POSTGRES = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL only")
ISSUED = "etat annuel emis : modification ou suppression interdite"


def execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def refused(sql, params=(), *, error=DatabaseError, match=None):
    """The statement fails, and its failure leaves the transaction usable."""
    with pytest.raises(error, match=match), transaction.atomic():
        execute(sql, params)


@contextmanager
def recursive_triggers(on):
    """SQLite: the triggers must hold whatever a connection says of recursive triggers (another
    client, the sqlite3 shell, does not run the application's connection setup)."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA recursive_triggers")
        previous = cursor.fetchone()[0]
    execute(f"PRAGMA recursive_triggers = {'ON' if on else 'OFF'}")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA recursive_triggers")
        assert cursor.fetchone()[0] == on
    try:
        yield
    finally:
        execute(f"PRAGMA recursive_triggers = {previous}")


@pytest.fixture
def issued_and_draft(billed):
    prepared = {s.payer.name: s for s in statements.statements_prepare(2026)}
    issued = issue_after_review(prepared["Commune A"])
    return issued, prepared["Commune B"]


def fingerprint(statement):
    row = Statement.objects.filter(pk=statement.pk).values_list(
        "status", "number", "total", "pdf_sha256", "year", "payer_id"
    )
    lines = StatementLine.objects.filter(statement_id=statement.pk).values_list(
        "id", "position", "amount"
    )
    return list(row), list(lines)


def assert_intact(issued, before):
    assert fingerprint(issued) == before
    assert before[0][0][:2] == (StatementStatus.ISSUED, "EA-2026-0001")
    assert before[1], "the issued statement has its line"
    reloaded = Statement.objects.get(pk=issued.pk)
    assert reloaded.pdf_sha256 == hashlib.sha256(bytes(reloaded.pdf)).hexdigest()


# 1. REPLACE (SQLite) cannot delete nor overwrite an issued statement or its lines.


@SQLITE
@pytest.mark.parametrize("recursive", [True, False], ids=["recursive-on", "recursive-off"])
def test_update_or_replace_onto_an_issued_number_deletes_nothing(issued_and_draft, recursive):
    issued, draft = issued_and_draft
    before = fingerprint(issued)
    with recursive_triggers(recursive):
        refused(
            f"UPDATE OR REPLACE {STATEMENT} SET number = '{issued.number}' WHERE id = {draft.pk}",
            error=IntegrityError,
            match="etat annuel",  # a draft has no number, let alone an issued one's
        )
        # Issuing the draft under the number the counter gave last (EA-2026-0001: as if the
        # counter had been set back) is refused for the collision alone.
        refused(
            f"UPDATE OR REPLACE {STATEMENT} SET status = 'ISSUED', number = '{issued.number}',"
            f" pdf = X'00', pdf_sha256 = '{'f' * 64}', issued_at = '2027-02-01 00:00:00'"
            f" WHERE id = {draft.pk}",
            error=IntegrityError,
            match=ISSUED,
        )
    assert_intact(issued, before)
    assert Statement.objects.get(pk=draft.pk).number is None


@SQLITE
@pytest.mark.parametrize("recursive", [True, False], ids=["recursive-on", "recursive-off"])
@pytest.mark.parametrize(
    ("status", "number"), [("ISSUED", "EA-2026-0001"), ("DRAFT", None)], ids=["forged", "draft"]
)
def test_insert_or_replace_onto_an_issued_id_overwrites_nothing(
    issued_and_draft, recursive, status, number
):
    issued, _ = issued_and_draft
    before = fingerprint(issued)
    with recursive_triggers(recursive):
        refused(
            f"INSERT OR REPLACE INTO {STATEMENT} (id, year, convention_id, payer_id, payee_id,"
            " status, number, total, instalments_called, balance, ac_deduction, settlement_mode,"
            " balance_channel, snapshot, pdf, pdf_sha256, issued_at, correction_reason)"
            " VALUES (%s, 2026, %s, %s, %s, %s, %s, 0, 0, 0, 0, '', '', '{}', X'00', %s, %s, '')",
            [
                issued.pk,
                issued.convention_id,
                issued.payer_id,
                issued.payee_id,
                status,
                number,
                "f" * 64,
                datetime(2027, 2, 1, tzinfo=UTC).isoformat(),
            ],
            error=IntegrityError,
            match=ISSUED if status == "DRAFT" else "etat annuel emis",
        )
    assert_intact(issued, before)


@SQLITE
@pytest.mark.parametrize("recursive", [True, False], ids=["recursive-on", "recursive-off"])
def test_update_or_replace_onto_a_cancelled_statement_keeps_its_issued_correction(
    issued_and_draft, recursive
):
    issued, draft = issued_and_draft
    correction = statements.statement_correct(issued, reason="Recours de mars saisi deux fois.")
    UsageRecord.objects.filter(beneficiary__name="Commune A", period_start__month=3).delete()
    correction = issue_after_review(correction)
    before = fingerprint(correction)
    with recursive_triggers(recursive):
        refused(
            f"UPDATE OR REPLACE {STATEMENT} SET cancels_id = {issued.pk},"
            f" correction_reason = 'x' WHERE id = {draft.pk}",
            error=IntegrityError,
            match=ISSUED,
        )
    assert fingerprint(correction) == before
    assert Statement.objects.get(pk=correction.pk).cancels_id == issued.pk


@SQLITE
@pytest.mark.parametrize("recursive", [True, False], ids=["recursive-on", "recursive-off"])
def test_replace_onto_an_issued_line_deletes_nothing(issued_and_draft, recursive):
    issued, draft = issued_and_draft
    before = fingerprint(issued)
    issued_line = issued.lines.get()
    draft_line = draft.lines.get()
    columns = (
        "statement_id, position, service_id, period_start, period_end, basis, units, amount,"
        " revenue_account, expense_account, usage_count"
    )
    with recursive_triggers(recursive):
        refused(
            f"INSERT OR REPLACE INTO {LINE} (id, {columns}) SELECT {issued_line.pk}, {columns}"
            f" FROM {LINE} WHERE id = {draft_line.pk}",
            error=IntegrityError,
            match=ISSUED,
        )
        refused(
            f"UPDATE OR REPLACE {LINE} SET id = {issued_line.pk} WHERE id = {draft_line.pk}",
            error=IntegrityError,
            match=ISSUED,
        )
    assert_intact(issued, before)


@SQLITE
def test_the_application_s_sqlite_connections_fire_delete_triggers_on_replace():
    fresh = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with fresh.cursor() as cursor:
            cursor.execute("PRAGMA recursive_triggers")
            assert cursor.fetchone()[0] == 1
    finally:
        fresh.close()


def test_the_same_collisions_are_refused_on_every_database(issued_and_draft):
    """What REPLACE does on SQLite is a plain conflict elsewhere: refused, nothing deleted."""
    issued, draft = issued_and_draft
    before = fingerprint(issued)
    refused(f"UPDATE {STATEMENT} SET number = '{issued.number}' WHERE id = {draft.pk}")
    refused(f"UPDATE {STATEMENT} SET id = {issued.pk} WHERE id = {draft.pk}")
    if connection.vendor == "postgresql":  # REPLACE is not even PostgreSQL syntax
        refused(f"UPDATE OR REPLACE {STATEMENT} SET number = 'x' WHERE id = {draft.pk}")
        refused(f"INSERT OR REPLACE INTO {STATEMENT} (id) VALUES ({issued.pk})")
        refused(
            f"INSERT INTO {STATEMENT} SELECT * FROM {STATEMENT} WHERE id = {issued.pk}"
            f" ON CONFLICT (id) DO UPDATE SET total = 0"
        )
    assert_intact(issued, before)


# 2. Only the issue path makes an issued statement.


def test_a_statement_cannot_be_created_issued(issued_and_draft):
    issued, _ = issued_and_draft
    with pytest.raises(IntegrityError, match="emis que par"), transaction.atomic():
        Statement.objects.create(
            year=2026,
            convention_id=issued.convention_id,
            payer_id=issued.payer_id,
            payee_id=issued.payee_id,
            status=StatementStatus.ISSUED,
            number="X",
            total=Decimal("1.00"),
            pdf=b"%PDF",
            pdf_sha256=hashlib.sha256(b"%PDF").hexdigest(),
            issued_at=datetime(2027, 2, 1, tzinfo=UTC),
        )
    assert not Statement.objects.filter(number="X").exists()


def test_a_draft_cannot_hold_a_number(issued_and_draft):
    issued, draft = issued_and_draft
    with pytest.raises(IntegrityError, match="ne porte pas de numero"), transaction.atomic():
        Statement.objects.filter(pk=draft.pk).update(number="EA-2026-0002")
    with pytest.raises(IntegrityError, match="ne porte pas de numero"), transaction.atomic():
        Statement.objects.create(
            year=2026,
            convention_id=issued.convention_id,
            payer_id=issued.payer_id,
            payee_id=issued.payee_id,
            number="EA-2026-0003",
        )


def forge(draft, **changes):
    pdf = b"%PDF-forged"
    values = {
        "status": StatementStatus.ISSUED,
        "number": f"EA-2026-{StatementCounter.objects.get(year=2026).last_number:04d}",
        "pdf": pdf,
        "pdf_sha256": hashlib.sha256(pdf).hexdigest(),
        "issued_at": datetime(2027, 2, 1, tzinfo=UTC),
        **changes,
    }
    Statement.objects.filter(pk=draft.pk).update(**values)


def test_a_draft_issued_with_the_number_the_counter_gave_is_accepted(issued_and_draft):
    """The control of the refusals below: what the issue path writes passes the triggers."""
    _, draft = issued_and_draft
    statements.next_number(2026)
    forge(draft)
    assert Statement.objects.get(pk=draft.pk).number == "EA-2026-0002"


@pytest.mark.parametrize(
    "changes",
    [
        {"number": "X"},
        {"number": None},
        {"number": "EA-2026-0003"},  # the next one, but the counter has not given it
        {"number": "EA-2025-0002"},
        {"number": "EA-2026-2"},
        {"pdf": None},
        {"pdf_sha256": ""},
        {"issued_at": None},
    ],
    ids=["outside", "none", "not-given", "other-year", "unpadded", "no-pdf", "no-hash", "no-date"],
)
def test_a_draft_is_issued_only_with_the_number_the_counter_gave(issued_and_draft, changes):
    _, draft = issued_and_draft
    statements.next_number(2026)  # as the issue path does: the counter gives EA-2026-0002
    with pytest.raises(IntegrityError, match="emis que par"), transaction.atomic():
        forge(draft, **changes)
    assert Statement.objects.get(pk=draft.pk).status == StatementStatus.DRAFT


def test_the_issue_path_still_issues_the_next_number(issued_and_draft):
    _, draft = issued_and_draft
    assert issue_after_review(draft).number == "EA-2026-0002"


@POSTGRES
def test_postgresql_checks_the_pdf_fingerprint_at_issue(issued_and_draft):
    _, draft = issued_and_draft
    statements.next_number(2026)
    with pytest.raises(IntegrityError, match="empreinte"), transaction.atomic():
        forge(draft, pdf_sha256="f" * 64)


# 3. TRUNCATE (PostgreSQL) cannot wipe issued statements or their lines.


@POSTGRES
@pytest.mark.parametrize(
    "sql",
    [
        f"TRUNCATE {LINE}",
        f"TRUNCATE {STATEMENT} CASCADE",
        f"TRUNCATE costing_statementremark, {LINE}, {STATEMENT}",
        "TRUNCATE costing_statementcounter, costing_statementremark, "
        f"{LINE}, {STATEMENT} RESTART IDENTITY",
    ],
    ids=["lines", "cascade", "both", "flush-like"],
)
def test_truncate_cannot_wipe_issued_statements(issued_and_draft, sql):
    issued, _ = issued_and_draft
    before = fingerprint(issued)
    execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign key check blocks a TRUNCATE
    refused(sql, error=IntegrityError, match=ISSUED)
    assert_intact(issued, before)


@POSTGRES
def test_truncate_still_empties_drafts(billed):
    statements.statements_prepare(2026)
    execute("SET CONSTRAINTS ALL IMMEDIATE")
    execute(f"TRUNCATE {LINE}, costing_statementremark, {STATEMENT}")
    assert not Statement.objects.exists()
