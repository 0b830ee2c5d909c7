"""`manage.py verify_integrity`: totals per year, every frozen PDF against its SHA-256, and the
protective triggers; a tampered PDF or a missing trigger fails it (docs/exploitation.md)."""

import hashlib
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from costing import statements
from costing.integrity import PROTECTIVE_TRIGGERS, active_triggers
from costing.models import Statement
from tests.costing.conftest import issue_after_review

pytestmark = pytest.mark.django_db


def verify():
    out = StringIO()
    call_command("verify_integrity", stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def issued(billed):
    prepared = {s.payer.name: s for s in statements.statements_prepare(2026)}
    return issue_after_review(prepared["Commune A"])


def test_the_list_of_protective_triggers_is_the_migrated_one():
    assert active_triggers() >= PROTECTIVE_TRIGGERS[connection.vendor]
    costing_or_conventions = {
        name for name in active_triggers() if name.startswith(("costing_", "conventions_"))
    }
    assert costing_or_conventions == PROTECTIVE_TRIGGERS[connection.vendor]


def test_prints_the_totals_of_each_year_and_finds_nothing_wrong(issued):
    output = verify()
    assert "Exercice 2026 : 1 état émis dont 0 annulé ; total 8\u00a0965,47\u00a0€" in output
    triggers = len(PROTECTIVE_TRIGGERS[connection.vendor])
    assert (
        f"Vérifiés : 1 état émis, 1 acte signé, 0 pièce jointe, {triggers} déclencheurs de protection"
        in output
    )
    assert "Aucune anomalie." in output


def test_the_fingerprint_changes_with_what_is_frozen(billed):
    prepared = {s.payer.name: s for s in statements.statements_prepare(2026)}
    before = verify().splitlines()[-2]
    issue_after_review(prepared["Commune A"])
    assert verify().splitlines()[-2] != before


def tamper(sql, params):
    """Change an issued statement behind the application's back, as someone holding the tables
    could: the triggers are lifted for this statement only (the test's transaction undoes it)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending event blocks ALTER
            cursor.execute("ALTER TABLE costing_statement DISABLE TRIGGER USER")
            cursor.execute(sql, params)
            cursor.execute("ALTER TABLE costing_statement ENABLE TRIGGER USER")
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master "
                "WHERE type = 'trigger' AND tbl_name = 'costing_statement'"
            )
            saved = cursor.fetchall()
            for name, _sql in saved:
                cursor.execute(f"DROP TRIGGER {name}")
            cursor.execute(sql, params)
            for _name, create in saved:
                cursor.execute(create)


def test_a_pdf_that_no_longer_matches_its_fingerprint_fails(issued):
    tamper("UPDATE costing_statement SET pdf = %s WHERE id = %s", [b"%PDF-1.7 autre", issued.pk])
    errors = StringIO()
    with pytest.raises(CommandError, match="^1 anomalie :"):
        call_command("verify_integrity", stdout=StringIO(), stderr=errors)
    assert (
        f"{issued.number} : le PDF ne correspond plus à son empreinte SHA-256." in errors.getvalue()
    )


def test_a_total_that_no_longer_matches_its_lines_fails(issued):
    tamper("UPDATE costing_statement SET total = 1 WHERE id = %s", [issued.pk])
    errors = StringIO()
    with pytest.raises(CommandError, match="^2 anomalies :"):
        call_command("verify_integrity", stdout=StringIO(), stderr=errors)
    assert (
        f"{issued.number} : total 1,00\u00a0€, mais ses lignes font 8\u00a0965,47\u00a0€."
        in errors.getvalue()
    )
    assert "son instantané ne porte pas le même numéro ou le même total" in errors.getvalue()


def test_a_missing_or_disabled_trigger_fails(issued):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(
                "ALTER TABLE costing_statement DISABLE TRIGGER costing_statement_issued_immutable"
            )
            missing = "costing_statement_issued_immutable"
        else:
            cursor.execute("DROP TRIGGER costing_statement_issued_no_update")
            missing = "costing_statement_issued_no_update"
    errors = StringIO()
    with pytest.raises(CommandError, match="^1 anomalie :"):
        call_command("verify_integrity", stdout=StringIO(), stderr=errors)
    assert f"Déclencheur de protection absent ou désactivé : {missing}." in errors.getvalue()
    assert Statement.objects.get(pk=issued.pk).is_issued


def test_a_signed_scan_missing_or_changed_in_the_media_files_fails(billed, personas):
    from django.core.files.base import ContentFile

    from conventions.models import Attachment

    scans = []
    for name in ("manquante.pdf", "modifiee.pdf"):
        content = b"%PDF-1.7 scan " + name.encode()
        scans.append(
            Attachment.objects.create(
                convention=billed.convention,
                title="Convention signée",
                file=ContentFile(content, name=name),
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                uploaded_by=personas.manager,
            )
        )
    intact = verify()
    assert "2 pièces jointes" in intact
    assert "Aucune anomalie." in intact
    missing, changed = scans
    missing.file.storage.delete(missing.file.name)
    changed.file.storage.delete(changed.file.name)
    changed.file.storage.save(changed.file.name, ContentFile(b"%PDF-1.7 autre chose"))
    errors = StringIO()
    with pytest.raises(CommandError, match="^2 anomalies :"):
        call_command("verify_integrity", stdout=StringIO(), stderr=errors)
    reference = billed.convention.reference
    assert f"{reference} : pièce jointe « {missing.file.name} » absente des fichiers." in (
        errors.getvalue()
    )
    assert (
        f"{reference} : la pièce jointe « {changed.file.name} » ne correspond plus à son empreinte."
        in errors.getvalue()
    )
