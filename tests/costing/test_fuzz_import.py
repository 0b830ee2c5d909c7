"""Fuzzing of the usage import (costing.resources.import_usage_file) with generated CSV and XLSX
files: it raises ImportFileError or returns a report, nothing else; every message is French,
without Python internals; a file with any error writes nothing, even with ``commit``.

Only the public interface is used (import_usage_file, ImportReport, RowError, ImportFileError):
the internals are free to change."""

import re
from types import SimpleNamespace

import pytest
from hypothesis import currently_in_test_context, event, given
from hypothesis import strategies as st

from costing.models import UsageRecord
from costing.resources import ImportFileError, ImportReport, import_usage_file
from tests.conventions.conftest import mad_descendante  # noqa: F401
from tests.costing.conftest import after_year_end, billed, unit_cost_kwargs  # noqa: F401
from tests.costing.test_fuzz_forms import catalogue, world  # noqa: F401
from tests.fuzz import (
    IMPORT_COLUMNS,
    IMPORT_OPTIONAL,
    assert_french,
    budget,
    changed_tables,
    example_rolled_back,
    fingerprint,
    usage_file,
)

pytestmark = pytest.mark.django_db

# What a message shown about a file never holds, once the values it quotes are set aside.
INTERNALS = re.compile(r"Traceback|object|None|Decimal\(|<|>|Exception|Error|\\x|\bb'")


def assert_import_message(message):
    assert isinstance(message, str)
    assert message.strip()
    quoted_aside = re.sub(r"«.*?»", "«»", message, flags=re.DOTALL)
    found = INTERNALS.search(quoted_aside)
    assert found is None, f"Python internals ({found.group()!r}) in {message!r}"
    assert_french(message)


@pytest.fixture
def importing(world):  # noqa: F811
    return SimpleNamespace(catalogue=catalogue(world), user=world.personas.manager)


@budget(2)
@given(st.data())
def test_the_import_reads_any_file_without_breaking_and_a_failure_writes_nothing(importing, data):
    content, name = data.draw(usage_file(importing.catalogue), label="file")
    commit = data.draw(st.booleans(), label="commit")
    replace = data.draw(st.booleans(), label="replace")
    check_one_import(importing, content, name, commit=commit, replace=replace)


def note(outcome):
    if currently_in_test_context():  # also called by the plain tests below
        event(outcome)


def check_one_import(importing, content, name, *, commit, replace):
    with example_rolled_back():
        before = fingerprint()
        count = UsageRecord.objects.count()
        try:
            report = import_usage_file(
                content, name, user=importing.user, commit=commit, replace=replace
            )
        except ImportFileError as error:
            note("fichier refusé")
            assert_import_message(str(error))
            assert changed_tables(before, fingerprint()) == []
            return
        assert isinstance(report, ImportReport)
        for error in report.errors:
            assert isinstance(error.line, int)
            assert error.line >= 1
            assert error.column in ("", *IMPORT_COLUMNS, *IMPORT_OPTIONAL), error.column
            assert_import_message(error.message)
        after = fingerprint()
        if commit and report.ok:
            note("importé")
            assert report.imported
            assert UsageRecord.objects.count() == count + report.rows - report.replaced
        else:
            note("lignes refusées" if report.errors else "aperçu")
            assert not report.imported
            assert changed_tables(before, after) == []


def zip_without_workbook():
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bonjour.txt", "pas un classeur")
    return buffer.getvalue()


ROW = "{ref};{insee};{service};2026-05;3;{cell}"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        # Before: « Fichier illisible : list index out of range ».
        (b"", "recours.csv", "Le fichier est vide"),
        (b"\xef\xbb\xbf\r\n", "recours.csv", "Le fichier est vide"),
        # Before: stored with its NUL on SQLite; « Erreur inattendue : A string literal cannot
        # contain NUL (0x00) characters. » on PostgreSQL.
        ("ROW", "recours.csv", "caractère nul"),
        # Before: « Fichier illisible : field larger than field limit (131072) ».
        ("LONG", "recours.csv", "Fichier CSV illisible"),
        # Before: « Fichier illisible : "There is no item named '[Content_Types].xml' … ».
        ("ZIP", "recours.xlsx", "Fichier XLSX illisible"),
    ],
)
def test_files_that_broke_the_import_are_refused_in_french(
    importing,
    world,  # noqa: F811
    content,
    name,
    message,
):
    header = "convention;beneficiaire;service;mois;quantite;reference"
    row = ROW.format(
        ref=world.convention.reference,
        insee=world.territory.commune_a.insee_code,
        service=world.service.code,
        cell="A\x00B",
    )
    content = {
        "ROW": f"{header}\n{row}\n".encode(),
        "LONG": (header + "\n" + row.replace("A\x00B", "x" * 140_000) + "\n").encode(),
        "ZIP": zip_without_workbook(),
    }.get(content, content)
    with pytest.raises(ImportFileError, match=message) as refused:
        import_usage_file(content, name, user=importing.user, commit=True)
    assert_import_message(str(refused.value))
    check_one_import(importing, content, name, commit=True, replace=True)
