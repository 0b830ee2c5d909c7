"""« Télécharger le modèle » of the usage import: a CSV and an XLSX with the importer's exact
header and one row per convention, beneficiary and service in force in the territory for the
month, so that the finance officer only types the quantities and the file imports back."""

import csv
import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from costing.models import UsageRecord, UsageSource
from costing.resources import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    MonthWidget,
    import_usage_file,
)
from tests.conftest import log_in

pytestmark = pytest.mark.django_db

HEADER = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]


def template_url(fmt, year=2026, month=6):
    return reverse("costing:usage-template", kwargs={"year": year, "month": month, "fmt": fmt})


@pytest.fixture
def finance(client, personas):
    assert log_in(client, "finances")
    return client


def csv_rows(content: bytes) -> list[list[str]]:
    assert content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


def xlsx_rows(content: bytes) -> list[list]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    return [list(row) for row in sheet.iter_rows(values_only=True)]


def expected_rows(billed):
    t = billed.territory
    return sorted(
        [
            billed.convention.reference,
            commune.insee_code,
            billed.service.code,
            "2026-06",
            "",
            "",
            "",
            "",
        ]
        for commune in (t.commune_a, t.commune_b)
    )


def test_the_csv_template_has_the_exact_header_and_a_row_per_beneficiary_and_service(
    billed, finance
):
    response = finance.get(template_url("csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="modele-recours-2026-06.csv"' in response["Content-Disposition"]
    header, *rows = csv_rows(response.content)
    assert header == HEADER
    assert sorted(rows) == expected_rows(billed)


def test_the_xlsx_template_has_the_same_rows_as_text(billed, finance):
    response = finance.get(template_url("xlsx"))
    assert response.status_code == 200
    assert "spreadsheetml" in response["Content-Type"]
    header, *rows = xlsx_rows(response.content)
    assert header == HEADER
    assert sorted([cell or "" for cell in row] for row in rows) == expected_rows(billed)


def test_a_template_leaves_out_the_months_a_convention_does_not_cover(billed, finance):
    before_start = billed.convention.start_date.year - 1
    header, *rows = csv_rows(finance.get(template_url("csv", year=before_start)).content)
    assert header == HEADER
    assert rows == []


def fill_csv(content: bytes, quantities) -> bytes:
    header, *rows = csv_rows(content)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")
    writer.writerow(header)
    for row, quantity in zip(sorted(rows), quantities, strict=True):
        row[header.index("quantite")] = quantity
        writer.writerow(row)
    return ("\ufeff" + out.getvalue()).encode()


def fill_xlsx(content: bytes, quantities) -> bytes:
    book = openpyxl.load_workbook(io.BytesIO(content))
    sheet = book.active
    rows = sorted(range(2, sheet.max_row + 1), key=lambda r: sheet.cell(r, 2).value)
    for row, quantity in zip(rows, quantities, strict=True):
        sheet.cell(row, HEADER.index("quantite") + 1).value = quantity
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "fill", "quantities"),
    [
        ("csv", fill_csv, ["3,5", "1 234,25"]),
        # What a spreadsheet stores once a person types the numbers.
        ("xlsx", fill_xlsx, [3.5, 1234.25]),
    ],
)
def test_a_filled_template_imports_back_cleanly(billed, finance, personas, fmt, fill, quantities):
    t = billed.territory
    filled = fill(finance.get(template_url(fmt)).content, quantities)
    report = import_usage_file(filled, f"modele.{fmt}", user=personas.finance, commit=True)
    assert report.ok, report.errors
    assert report.imported
    june = UsageRecord.objects.filter(
        convention=billed.convention, period_start__month=6, source=UsageSource.IMPORT
    )
    by_commune = {record.beneficiary_id: record.quantity for record in june}
    low, high = sorted([t.commune_a, t.commune_b], key=lambda c: c.insee_code)
    assert by_commune == {low.pk: Decimal("3.5"), high.pk: Decimal("1234.25")}


def save_as_french_excel(content: bytes, quantities) -> bytes:
    """What French Excel writes when the CSV template is opened, filled and saved as « CSV
    (séparateur : point-virgule) »: Windows-1252 without BOM, CRLF line ends, the month read as
    a date and written back as « juin-26 », leading zeros of a code read as a number lost, the
    quantities with a decimal comma."""
    header, *rows = csv_rows(content)
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    for row, quantity in zip(sorted(rows), quantities, strict=True):
        row[header.index("quantite")] = quantity
        row[header.index("mois")] = "juin-26"
        beneficiary = header.index("beneficiaire")
        row[beneficiary] = row[beneficiary].lstrip("0")
        row[header.index("reference")] = "Relevé d'août"
        writer.writerow(row)
    return out.getvalue().encode("cp1252")


def test_the_csv_template_saved_by_french_excel_imports_back(billed, finance, personas):
    t = billed.territory
    t.commune_a.insee_code = "01053"  # Bourg-en-Bresse: a code Excel reads as 1053
    t.commune_a.save()
    saved = save_as_french_excel(finance.get(template_url("csv")).content, ["3,5", "12"])
    assert b";1053;" in saved
    assert "Relevé d'août".encode("cp1252") in saved  # one byte per accented letter
    report = import_usage_file(saved, "modele.csv", user=personas.finance, commit=True)
    assert report.ok, report.errors
    june = UsageRecord.objects.filter(
        convention=billed.convention, period_start__month=6, source=UsageSource.IMPORT
    )
    assert sorted(record.quantity for record in june) == [Decimal("3.5"), Decimal("12")]
    assert {record.reference for record in june} == {"Relevé d'août"}


@pytest.mark.parametrize(
    ("written", "month"),
    [
        ("juin-26", (2026, 6)),
        ("janv.-27", (2027, 1)),
        ("févr.-2026", (2026, 2)),
        ("Août 2026", (2026, 8)),
        ("déc.-26", (2026, 12)),
        ("01/06/2026", (2026, 6)),
        ("2026-06-01", (2026, 6)),
    ],
)
def test_a_month_as_a_spreadsheet_writes_it_is_read(written, month):
    assert MonthWidget().clean(written) == date(*month, 1)


@pytest.mark.parametrize("written", ["15/06/2026", "juni-26", "juin-", "13/2026", "2026-06-15"])
def test_a_day_within_the_month_or_an_unknown_month_name_is_refused(written):
    with pytest.raises(ValueError, match="Mois invalide"):
        MonthWidget().clean(written)


def test_the_import_page_offers_the_template_for_this_month_and_the_last(billed, finance):
    # billed lives on 15 January 2027.
    html = finance.get(reverse("costing:usage-import")).content.decode()
    assert "Télécharger le modèle" in html
    for year, month in ((2027, 1), (2026, 12)):
        for fmt in ("csv", "xlsx"):
            assert template_url(fmt, year=year, month=month) in html


@pytest.mark.parametrize("persona", ["lecteur.a", "exterieur"])
def test_a_commune_reader_and_an_outsider_cannot_download_the_template(
    billed, client, personas, persona
):
    assert log_in(client, persona)
    assert client.get(template_url("csv")).status_code == 403
    assert client.get(template_url("xlsx")).status_code == 403


def test_an_unknown_format_or_month_is_not_found(billed, finance):
    assert finance.get(template_url("ods")).status_code == 404
    assert finance.get(template_url("csv", month=13)).status_code == 404
    assert finance.get(template_url("csv", month=0)).status_code == 404
