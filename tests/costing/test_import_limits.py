"""The usage import refuses what it must, in French, importing nothing: identical rows (before:
three identical rows were imported three times), too many rows for one request, and an XLSX
that expands far beyond its size (a ZIP bomb held a worker 126 s)."""

import io
import zipfile

import pytest

from costing.models import UsageRecord
from costing.resources import ImportFileError, import_usage_file
from tests.costing.test_views import demo, login  # noqa: F401 (the demo territory fixture)

pytestmark = pytest.mark.django_db

HEADER = "convention;beneficiaire;service;mois;quantite;ponderation;reference\n"
ROW = "CONV-2025-002;63014;ads;2026-11;3;PC;DUP-1\n"


def test_identical_rows_are_refused_with_their_line_numbers_and_nothing_is_imported(demo):  # noqa: F811
    content = (HEADER + ROW * 3).encode()
    report = import_usage_file(content, "r.csv", commit=True)
    assert not report.imported
    messages = [(e.line, e.message) for e in report.errors]
    assert (
        3,
        "Ligne identique à la ligne 2 : une même saisie n'est importée qu'une fois.",
    ) in messages
    assert (
        4,
        "Ligne identique à la ligne 2 : une même saisie n'est importée qu'une fois.",
    ) in messages
    assert not UsageRecord.objects.filter(reference="DUP-1").exists()


def test_a_file_above_the_row_limit_is_refused_before_any_check(settings):
    settings.MUTUALIS_IMPORT_MAX_ROWS = 10
    content = (
        HEADER + "".join(f"CONV-X;63014;ads;2026-11;{n};PC;R{n}\n" for n in range(11))
    ).encode()
    with pytest.raises(ImportFileError, match="11 lignes : 10 au plus par import"):
        import_usage_file(content, "r.csv", commit=False)


def test_an_xlsx_expanding_beyond_forty_megabytes_is_refused_unparsed():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * (41 * 1024 * 1024))
    content = buffer.getvalue()
    assert len(content) < 1024 * 1024  # small on disk
    with pytest.raises(ImportFileError, match="trop volumineux une fois décompressé"):
        import_usage_file(content, "bombe.xlsx", commit=False)


def test_a_file_that_is_not_a_workbook_is_refused_in_french():
    with pytest.raises(ImportFileError, match="ce n'est pas un classeur Excel"):
        import_usage_file(b"not a zip", "faux.xlsx", commit=False)
