"""No statement is destroyed by a REPLACE, born issued, issued out of sequence or truncated.

Completes the triggers of 0003 (no UPDATE or DELETE of an issued statement or its lines):

- SQLite: ``INSERT OR REPLACE`` / ``UPDATE OR REPLACE`` resolve a UNIQUE conflict by deleting
  the conflicting row *without* firing its delete triggers (unless ``recursive_triggers`` is on,
  which costing/apps.py sets on the application's connections, but another client may not).
  So an INSERT or UPDATE is refused beforehand when it would collide, on any unique key (id,
  number, cancels), with an issued statement, or with a line (id) of an issued statement. On
  PostgreSQL such a collision is a plain unique violation.
- Both: a statement is inserted as a draft, without a number; a draft becomes issued only by an
  UPDATE carrying the number the counter (costing_statementcounter) has just given for its year
  (EA-<year>-<nnnn>), its PDF, its SHA-256 and its date (PostgreSQL also checks that the
  SHA-256 is the PDF's). That is what costing.statements.statement_issue writes, under the lock
  of the counter's row.
- PostgreSQL: TRUNCATE of costing_statement or costing_statementline (directly or by CASCADE) is
  refused while an issued statement exists; row triggers do not see a TRUNCATE.

SQLite drops a table's triggers when a migration rebuilds it: a later migration that alters
costing_statement or costing_statementline puts these back (see 0005).
"""

import importlib

from django.db import migrations

immutability = importlib.import_module("costing.migrations.0003_issued_statements_are_immutable")

ISSUED = immutability.MESSAGE
FORGED = (
    "etat annuel emis que par emission d un projet : "
    "numero suivant du compteur, PDF, empreinte et date requis"
)
NUMBERED_DRAFT = "etat annuel : un projet ne porte pas de numero"
FINGERPRINT = "etat annuel : l empreinte SHA-256 ne correspond pas au PDF"


def sqlite_collides(new, *, other_than=None):
    """SQL: ``new`` (NEW) would take the id, number or cancelled statement of an issued one."""
    other = "" if other_than is None else f" AND s.id <> {other_than}.id"
    return " OR ".join(
        f"EXISTS (SELECT 1 FROM costing_statement s WHERE s.{column} = {new}.{column}"
        f" AND s.status = 'ISSUED'{other})"
        for column in ("id", "number", "cancels_id")
    )


SQLITE_LINE_COLLIDES = """EXISTS (SELECT 1 FROM costing_statementline l
      JOIN costing_statement s ON s.id = l.statement_id
      WHERE l.id = NEW.id AND s.status = 'ISSUED')"""

SQLITE_EXPECTED_NUMBER = """(SELECT 'EA-' || NEW.year || '-' || printf('%04d', c.last_number)
      FROM costing_statementcounter c WHERE c.year = NEW.year)"""

SQLITE_FORWARD = [
    f"""CREATE TRIGGER costing_statement_born_draft BEFORE INSERT ON costing_statement
    WHEN NEW.status IS NOT 'DRAFT' BEGIN SELECT RAISE(ABORT, '{FORGED}'); END;""",
    f"""CREATE TRIGGER costing_statement_draft_unnumbered_insert
    BEFORE INSERT ON costing_statement WHEN NEW.status IS 'DRAFT' AND NEW.number IS NOT NULL
    BEGIN SELECT RAISE(ABORT, '{NUMBERED_DRAFT}'); END;""",
    f"""CREATE TRIGGER costing_statement_issued_no_replace_insert BEFORE INSERT ON costing_statement
    WHEN {sqlite_collides("NEW")} BEGIN SELECT RAISE(ABORT, '{ISSUED}'); END;""",
    f"""CREATE TRIGGER costing_statement_issued_no_replace_update BEFORE UPDATE ON costing_statement
    WHEN {sqlite_collides("NEW", other_than="OLD")} BEGIN SELECT RAISE(ABORT, '{ISSUED}'); END;""",
    f"""CREATE TRIGGER costing_statement_draft_unnumbered_update
    BEFORE UPDATE ON costing_statement WHEN NEW.status IS 'DRAFT' AND NEW.number IS NOT NULL
    BEGIN SELECT RAISE(ABORT, '{NUMBERED_DRAFT}'); END;""",
    f"""CREATE TRIGGER costing_statement_issued_by_issue_only BEFORE UPDATE ON costing_statement
    WHEN NEW.status IS NOT 'DRAFT' AND (
      NEW.status IS NOT 'ISSUED' OR OLD.status IS NOT 'DRAFT'
      OR NEW.number IS NULL OR NEW.number IS NOT {SQLITE_EXPECTED_NUMBER}
      OR NEW.pdf IS NULL OR length(NEW.pdf_sha256) IS NOT 64 OR NEW.issued_at IS NULL)
    BEGIN SELECT RAISE(ABORT, '{FORGED}'); END;""",
    f"""CREATE TRIGGER costing_statementline_issued_no_replace_insert
    BEFORE INSERT ON costing_statementline WHEN {SQLITE_LINE_COLLIDES}
    BEGIN SELECT RAISE(ABORT, '{ISSUED}'); END;""",
    f"""CREATE TRIGGER costing_statementline_issued_no_replace_update
    BEFORE UPDATE ON costing_statementline WHEN NEW.id IS NOT OLD.id AND {SQLITE_LINE_COLLIDES}
    BEGIN SELECT RAISE(ABORT, '{ISSUED}'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS costing_statement_born_draft;",
    "DROP TRIGGER IF EXISTS costing_statement_draft_unnumbered_insert;",
    "DROP TRIGGER IF EXISTS costing_statement_issued_no_replace_insert;",
    "DROP TRIGGER IF EXISTS costing_statement_issued_no_replace_update;",
    "DROP TRIGGER IF EXISTS costing_statement_draft_unnumbered_update;",
    "DROP TRIGGER IF EXISTS costing_statement_issued_by_issue_only;",
    "DROP TRIGGER IF EXISTS costing_statementline_issued_no_replace_insert;",
    "DROP TRIGGER IF EXISTS costing_statementline_issued_no_replace_update;",
]

POSTGRES_FORWARD = [
    f"""CREATE OR REPLACE FUNCTION costing_statement_issued_by_issue_only() RETURNS trigger AS $$
    DECLARE expected text;
    BEGIN
      IF TG_OP = 'INSERT' AND NEW.status <> 'DRAFT' THEN
        RAISE EXCEPTION '{FORGED}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF NEW.status = 'DRAFT' THEN
        IF NEW.number IS NOT NULL THEN
          RAISE EXCEPTION '{NUMBERED_DRAFT}' USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
      END IF;
      IF TG_OP = 'UPDATE' AND OLD.status = 'ISSUED' THEN
        RETURN NEW;  -- refused by costing_statement_immutable (0003)
      END IF;
      SELECT 'EA-' || NEW.year || '-'
             || lpad(c.last_number::text, greatest(4, length(c.last_number::text)), '0')
        INTO expected FROM costing_statementcounter c WHERE c.year = NEW.year;
      IF NEW.status <> 'ISSUED' OR NEW.number IS DISTINCT FROM expected OR expected IS NULL
         OR NEW.pdf IS NULL OR length(NEW.pdf_sha256) <> 64 OR NEW.issued_at IS NULL THEN
        RAISE EXCEPTION '{FORGED}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF encode(sha256(NEW.pdf), 'hex') <> NEW.pdf_sha256 THEN
        RAISE EXCEPTION '{FINGERPRINT}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NEW;
    END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER costing_statement_issued_by_issue_only
    BEFORE INSERT OR UPDATE ON costing_statement
    FOR EACH ROW EXECUTE FUNCTION costing_statement_issued_by_issue_only();""",
    f"""CREATE OR REPLACE FUNCTION costing_statement_no_truncate() RETURNS trigger AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM costing_statement WHERE status = 'ISSUED') THEN
        RAISE EXCEPTION '{ISSUED}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      RETURN NULL;
    END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER costing_statement_issued_no_truncate BEFORE TRUNCATE ON costing_statement
    FOR EACH STATEMENT EXECUTE FUNCTION costing_statement_no_truncate();""",
    """CREATE TRIGGER costing_statementline_issued_no_truncate
    BEFORE TRUNCATE ON costing_statementline
    FOR EACH STATEMENT EXECUTE FUNCTION costing_statement_no_truncate();""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS costing_statementline_issued_no_truncate ON costing_statementline;",
    "DROP TRIGGER IF EXISTS costing_statement_issued_no_truncate ON costing_statement;",
    "DROP FUNCTION IF EXISTS costing_statement_no_truncate();",
    "DROP TRIGGER IF EXISTS costing_statement_issued_by_issue_only ON costing_statement;",
    "DROP FUNCTION IF EXISTS costing_statement_issued_by_issue_only();",
]


class Migration(migrations.Migration):
    dependencies = [("costing", "0007_cost_base_version")]

    operations = [
        migrations.RunPython(
            immutability.run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            immutability.run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        ),
    ]
