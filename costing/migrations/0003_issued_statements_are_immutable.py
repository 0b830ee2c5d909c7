"""An issued statement, its lines and its PDF can never change: the database refuses it.

Triggers on both supported databases (SQLite and PostgreSQL): no UPDATE or DELETE of a statement
whose status is ISSUED, and no INSERT, UPDATE or DELETE of the lines of an issued statement.
The only update allowed is the one that issues a draft (status DRAFT → ISSUED).
"""

from django.db import migrations

MESSAGE = "etat annuel emis : modification ou suppression interdite"

SQLITE_FORWARD = [
    f"""CREATE TRIGGER costing_statement_issued_no_update BEFORE UPDATE ON costing_statement
    WHEN OLD.status = 'ISSUED' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER costing_statement_issued_no_delete BEFORE DELETE ON costing_statement
    WHEN OLD.status = 'ISSUED' BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER costing_statementline_issued_no_insert BEFORE INSERT ON costing_statementline
    WHEN (SELECT status FROM costing_statement WHERE id = NEW.statement_id) = 'ISSUED'
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER costing_statementline_issued_no_update BEFORE UPDATE ON costing_statementline
    WHEN (SELECT status FROM costing_statement WHERE id = OLD.statement_id) = 'ISSUED'
      OR (SELECT status FROM costing_statement WHERE id = NEW.statement_id) = 'ISSUED'
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER costing_statementline_issued_no_delete BEFORE DELETE ON costing_statementline
    WHEN (SELECT status FROM costing_statement WHERE id = OLD.statement_id) = 'ISSUED'
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS costing_statement_issued_no_update;",
    "DROP TRIGGER IF EXISTS costing_statement_issued_no_delete;",
    "DROP TRIGGER IF EXISTS costing_statementline_issued_no_insert;",
    "DROP TRIGGER IF EXISTS costing_statementline_issued_no_update;",
    "DROP TRIGGER IF EXISTS costing_statementline_issued_no_delete;",
]

POSTGRES_FORWARD = [
    f"""CREATE OR REPLACE FUNCTION costing_statement_immutable() RETURNS trigger AS $$
    BEGIN
      IF OLD.status = 'ISSUED' THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER costing_statement_issued_immutable BEFORE UPDATE OR DELETE ON costing_statement
    FOR EACH ROW EXECUTE FUNCTION costing_statement_immutable();""",
    f"""CREATE OR REPLACE FUNCTION costing_statementline_immutable() RETURNS trigger AS $$
    BEGIN
      IF (TG_OP <> 'INSERT' AND EXISTS (SELECT 1 FROM costing_statement s
            WHERE s.id = OLD.statement_id AND s.status = 'ISSUED'))
         OR (TG_OP <> 'DELETE' AND EXISTS (SELECT 1 FROM costing_statement s
            WHERE s.id = NEW.statement_id AND s.status = 'ISSUED')) THEN
        RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'integrity_constraint_violation';
      END IF;
      IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
      RETURN NEW;
    END; $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER costing_statementline_issued_immutable
    BEFORE INSERT OR UPDATE OR DELETE ON costing_statementline
    FOR EACH ROW EXECUTE FUNCTION costing_statementline_immutable();""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS costing_statementline_issued_immutable ON costing_statementline;",
    "DROP FUNCTION IF EXISTS costing_statementline_immutable();",
    "DROP TRIGGER IF EXISTS costing_statement_issued_immutable ON costing_statement;",
    "DROP FUNCTION IF EXISTS costing_statement_immutable();",
]


def run(statements_by_vendor):
    def apply(apps, schema_editor):
        vendor = schema_editor.connection.vendor
        if vendor not in statements_by_vendor:
            raise RuntimeError(f"Base de données non prise en charge pour les états annuels : {vendor}")
        for statement in statements_by_vendor[vendor]:
            schema_editor.execute(statement)

    return apply


class Migration(migrations.Migration):
    dependencies = [("costing", "0002_statements")]

    operations = [
        migrations.RunPython(
            run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        ),
    ]
