"""The usage import at scale and against doubles (issue 10, points 6, 7 and 12): rows are
checked in bulk (the queries do not grow with the file), the same rows are never added twice
(before: re-importing a file doubled the usage), months stay within the convention's years,
and text with a NUL character is refused in French."""

import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from costing.models import UsageImport, UsageRecord, UsageSource
from costing.resources import (
    ImportFileError,
    import_usage_file,
    usage_import_confirm,
    usage_import_submit,
)
from tests.costing.test_usage_corrections import HEADER, csv_of

pytestmark = pytest.mark.django_db


def rows_for(billed, count, year=2026):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    return [
        ((a, b)[n % 2], f"{year}-{n % 12 + 1:02d}", str(n % 7 + 1), f"R-{n:05d}", "")
        for n in range(count)
    ]


def imported_units(billed):
    return sum(
        UsageRecord.objects.filter(
            convention=billed.convention, source=UsageSource.IMPORT
        ).values_list("units", flat=True),
        Decimal(0),
    )


def test_checking_a_file_takes_the_same_queries_for_20_rows_as_for_2000(billed):
    def queries(count):
        content = csv_of(billed, *rows_for(billed, count))
        with CaptureQueriesContext(connection) as captured:
            report = import_usage_file(content, "r.csv", commit=False)
        assert report.ok, report.errors[:3]
        return len(captured)

    assert queries(2000) == queries(20)


def test_importing_the_same_rows_twice_is_refused_and_names_the_first_import(billed, personas):
    content = csv_of(billed, *rows_for(billed, 30))
    first = import_usage_file(content, "janvier.csv", user=personas.finance, commit=True)
    assert first.imported
    before = imported_units(billed)

    with pytest.raises(ImportFileError) as refused:
        import_usage_file(content, "janvier-bis.csv", user=personas.finance, commit=True)

    assert "déjà été importées" in str(refused.value)
    assert "« janvier.csv »" in str(refused.value)
    assert imported_units(billed) == before
    assert UsageImport.objects.get(status=UsageImport.ImportStatus.IMPORTED).rows == 30
    assert UsageRecord.objects.filter(imported_from__filename="janvier.csv").count() == 30


def test_the_same_rows_resaved_as_xlsx_in_another_order_are_still_a_double(billed):
    rows = rows_for(billed, 12)
    assert import_usage_file(csv_of(billed, *rows), "r.csv", commit=True).imported
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(";"))
    for beneficiary, month, quantity, reference, motif in reversed(rows):
        # INSEE code instead of SIREN, « 3,0 » instead of « 3 »: the same rows.
        sheet.append(
            [
                billed.convention.reference.lower(),
                beneficiary.insee_code,
                billed.service.code.upper(),
                month,
                f"{quantity},0",
                "",
                reference,
                motif,
            ]
        )
    buffer = io.BytesIO()
    workbook.save(buffer)

    with pytest.raises(ImportFileError, match="déjà été importées"):
        import_usage_file(buffer.getvalue(), "r.xlsx", commit=True)


def test_replacing_with_the_same_rows_leaves_the_usage_unchanged(billed):
    content = csv_of(billed, *rows_for(billed, 24, year=2027))
    assert import_usage_file(content, "r.csv", commit=True).imported
    before = imported_units(billed)

    report = import_usage_file(content, "r.csv", commit=True, replace=True)

    assert report.imported
    assert report.replaced == 24
    assert imported_units(billed) == before


def test_a_month_outside_the_conventions_years_is_refused(billed):
    a = billed.territory.commune_a
    content = csv_of(billed, (a, "2025-12", "1", "AVANT", ""), (a, "2029-01", "1", "APRES", ""))

    report = import_usage_file(content, "r.csv", commit=True)

    assert not report.imported
    reference = billed.convention.reference
    assert [(e.line, e.column, e.message) for e in report.errors] == [
        (2, "mois", f"Mois 12/2025 antérieur à la prise d'effet de {reference} (01/01/2026)."),
        (3, "mois", f"Mois 01/2029 postérieur à l'échéance de {reference} (31/12/2028)."),
    ]


def test_a_nul_character_in_a_reference_is_refused_in_french(billed):
    a = billed.territory.commune_a
    content = csv_of(billed, (a, "2026-05", "1", "DOSSIER\x001", ""))

    with pytest.raises(ImportFileError, match="Ligne 2 : caractère nul dans une cellule"):
        import_usage_file(content, "r.csv", commit=True)

    assert not UsageRecord.objects.filter(reference__startswith="DOSSIER").exists()


def test_imported_records_keep_their_history_and_their_author(billed, personas):
    content = csv_of(billed, *rows_for(billed, 3))

    import_usage_file(content, "r.csv", user=personas.finance, commit=True)

    record = UsageRecord.objects.get(reference="R-00001")
    assert record.recorded_by == personas.finance
    assert record.history.get().history_user == personas.finance


def test_a_large_file_is_checked_then_imported_as_a_job_whose_progress_the_page_shows(
    client, billed, personas, settings, django_capture_on_commit_callbacks
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    settings.MUTUALIS_IMPORT_SYNC_ROWS = 10
    client.force_login(personas.finance)
    content = csv_of(billed, *rows_for(billed, 40, year=2027))

    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(
            reverse("costing:usage-import"), {"file": SimpleUploadedFile("gros.csv", content)}
        )
    job = UsageImport.objects.get()
    assert response.url == reverse("costing:usage-import-detail", args=[job.pk])
    waiting = client.get(response.url).content.decode()
    assert "Vérification en cours — 0 lignes vérifiées sur 40" in waiting
    assert 'hx-trigger="every 1s"' in waiting
    assert len(queued) == 1

    queued[0]()  # what the Celery worker runs
    checked = client.get(response.url).content.decode()
    assert "40 lignes vérifiées, sans erreur." in checked
    assert "hx-trigger" not in checked
    assert not UsageRecord.objects.filter(imported_from=job).exists()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("costing:usage-import-confirm", args=[job.pk]))
    job.refresh_from_db()
    assert (job.status, job.done, job.records.count()) == (
        UsageImport.ImportStatus.IMPORTED,
        40,
        40,
    )
    assert "40 lignes importées le" in client.get(response.url).content.decode()


def test_a_file_of_too_many_rows_is_refused_at_once_and_nothing_is_kept(client, personas, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    settings.MUTUALIS_IMPORT_MAX_ROWS = 1000
    content = (HEADER + "\n" + "CONV-X;63014;ads;2026-11;1;;;\n" * 1001).encode()
    client.force_login(personas.finance)

    response = client.post(
        reverse("costing:usage-import"), {"file": SimpleUploadedFile("r.csv", content)}
    )

    assert "Le fichier compte 1001 lignes : 1000 au plus par import." in response.content.decode()
    assert not UsageImport.objects.exists()


def test_files_never_imported_are_purged_after_the_retention_and_imported_ones_kept(
    billed, personas, settings
):
    settings.MUTUALIS_IMPORT_RETENTION_DAYS = 30
    imported = usage_import_submit(
        content=csv_of(billed, *rows_for(billed, 2)),
        filename="a.csv",
        replace=False,
        user=personas.finance,
    )
    usage_import_confirm(imported, user=personas.finance)
    left = usage_import_submit(
        content=csv_of(billed, *rows_for(billed, 3, year=2027)),
        filename="b.csv",
        replace=False,
        user=personas.finance,
    )
    refused = usage_import_submit(
        content=b"convention;beneficiaire;service;mois;quantite\nX;1;s;2026-13;1\n",
        filename="c.csv",
        replace=False,
        user=personas.finance,
    )
    assert (left.status, refused.status) == ("CHECKED", "REFUSED")
    UsageImport.objects.update(created_at=timezone.now() - datetime.timedelta(days=31))
    stored = refused.file.name

    call_command("purge_usage_imports", stdout=io.StringIO())

    assert list(UsageImport.objects.values_list("filename", flat=True)) == ["a.csv"]
    assert not refused.file.storage.exists(stored)
    assert UsageRecord.objects.filter(imported_from__filename="a.csv").count() == 2


def test_a_file_with_its_header_only_is_refused_in_french(billed):
    content = b"convention;beneficiaire;service;mois;quantite\n"

    with pytest.raises(ImportFileError, match="aucune ligne de recours sous l'en-tête"):
        import_usage_file(content, "r.csv", commit=True)

    assert not UsageImport.objects.exists()
