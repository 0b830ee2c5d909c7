"""Statement numbers per territory: the counter is keyed by (prefix, year), the prefix being the
territory's own (Organisation.statement_prefix of the convention's EPCI) or EA.

The triggers of 0008 that refuse a forged issue compare the number with the counter's; they now
read the counter of the statement's territory prefix. On SQLite the trigger that reads
costing_statementcounter is dropped before the table is rebuilt, then created again.
"""

import importlib

from django.db import migrations, models

immutability = importlib.import_module("costing.migrations.0003_issued_statements_are_immutable")
forgery = importlib.import_module(
    "costing.migrations.0008_issued_statements_cannot_be_replaced_or_forged"
)

SQLITE_PREFIX = """(SELECT COALESCE(NULLIF(o.statement_prefix, ''), 'EA')
      FROM conventions_convention cv JOIN mutualisation_organisation o ON o.id = cv.territory_id
      WHERE cv.id = NEW.convention_id)"""
SQLITE_EXPECTED_NUMBER = f"""(SELECT c.prefix || '-' || NEW.year || '-' || printf('%04d', c.last_number)
      FROM costing_statementcounter c WHERE c.year = NEW.year AND c.prefix = {SQLITE_PREFIX})"""


def sqlite_trigger(expected):
    return f"""CREATE TRIGGER costing_statement_issued_by_issue_only BEFORE UPDATE ON costing_statement
    WHEN NEW.status IS NOT 'DRAFT' AND (
      NEW.status IS NOT 'ISSUED' OR OLD.status IS NOT 'DRAFT'
      OR NEW.number IS NULL OR NEW.number IS NOT {expected}
      OR NEW.pdf IS NULL OR length(NEW.pdf_sha256) IS NOT 64 OR NEW.issued_at IS NULL)
    BEGIN SELECT RAISE(ABORT, '{forgery.FORGED}'); END;"""


SQLITE_DROP = ["DROP TRIGGER IF EXISTS costing_statement_issued_by_issue_only;"]

OLD_PG_SELECT = """SELECT 'EA-' || NEW.year || '-'
             || lpad(c.last_number::text, greatest(4, length(c.last_number::text)), '0')
        INTO expected FROM costing_statementcounter c WHERE c.year = NEW.year;"""
NEW_PG_SELECT = """SELECT c.prefix || '-' || NEW.year || '-'
             || lpad(c.last_number::text, greatest(4, length(c.last_number::text)), '0')
        INTO expected FROM costing_statementcounter c
        WHERE c.year = NEW.year AND c.prefix = (
          SELECT COALESCE(NULLIF(o.statement_prefix, ''), 'EA')
          FROM conventions_convention cv
          JOIN mutualisation_organisation o ON o.id = cv.territory_id
          WHERE cv.id = NEW.convention_id);"""
OLD_PG_FUNCTION = forgery.POSTGRES_FORWARD[0]
assert OLD_PG_SELECT in OLD_PG_FUNCTION
NEW_PG_FUNCTION = OLD_PG_FUNCTION.replace(OLD_PG_SELECT, NEW_PG_SELECT)


class Migration(migrations.Migration):
    dependencies = [
        ("costing", "0010_history_change_reason_as_text"),
        ("conventions", "0013_convention_territory_required"),
    ]

    operations = [
        migrations.RunPython(
            immutability.run({"sqlite": SQLITE_DROP, "postgresql": []}),
            immutability.run(
                {"sqlite": [sqlite_trigger(forgery.SQLITE_EXPECTED_NUMBER)], "postgresql": []}
            ),
        ),
        migrations.AddField(
            model_name="statementcounter",
            name="prefix",
            field=models.CharField(default="EA", max_length=8, verbose_name="préfixe"),
        ),
        migrations.AlterField(
            model_name="statementcounter",
            name="year",
            field=models.PositiveSmallIntegerField(verbose_name="année"),
        ),
        migrations.AddConstraint(
            model_name="statementcounter",
            constraint=models.UniqueConstraint(
                fields=("prefix", "year"), name="one_statement_counter"
            ),
        ),
        migrations.RunPython(
            immutability.run(
                {
                    "sqlite": [sqlite_trigger(SQLITE_EXPECTED_NUMBER)],
                    "postgresql": [NEW_PG_FUNCTION],
                }
            ),
            immutability.run(
                {
                    "sqlite": SQLITE_DROP,
                    "postgresql": [OLD_PG_FUNCTION],
                }
            ),
        ),
    ]
