"""Spreadsheet files for people and for finance software: one tablib dataset of native values
(Decimal, date, int, text: django-import-export's ``force_native_type``), written three ways: a
plain CSV for the finance software (docs/statements.md: « , », decimal point, ISO dates), an XLSX
whose amounts, units and dates are numbers and dates in a number format (French Excel shows
« 8 965,47 » and sums them), and a CSV for French Excel (« ; », decimal comma, dd/mm/yyyy, UTF-8
BOM so accents open right). Used by the finance exports (costing) and the conventions' tables
(adhesions, staff)."""

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import openpyxl
from openpyxl.styles import Font


@dataclass(frozen=True)
class SpreadsheetFormat:
    suffix: str  # the file name's end after the export's kind and year
    content_type: str
    write: Callable  # tablib Dataset of native values → bytes


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value) -> str:
    """Text for a spreadsheet cell: a leading formula character is neutralised with a quote.
    Numbers and dates are written as values, never through here (a negative amount stays -5)."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(SPREADSHEET_TRIGGERS) else value


def plain_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return safe_text(value)
    return str(value)  # Decimal as stored (« 8965.47 »), date as ISO 8601


def french_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(value).replace(".", ",")  # no grouping: Excel reads « 8965,47 » as a number
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return safe_text(value)


def dataset_csv(dataset, *, cell, delimiter: str, bom: bool) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([cell(header) for header in dataset.headers])
    for row in dataset:
        writer.writerow([cell(value) for value in row])
    return (("\ufeff" if bom else "") + out.getvalue()).encode()


def plain_csv(dataset) -> bytes:
    return dataset_csv(dataset, cell=plain_cell, delimiter=",", bom=False)


def excel_csv(dataset) -> bytes:
    return dataset_csv(dataset, cell=french_cell, delimiter=";", bom=True)


def number_format(value: Decimal) -> str:
    """The XLSX format of a Decimal, from its decimals: cents « #,##0.00 », thousandths of a
    unit « #,##0.000 » (Excel shows its own grouping and decimal signs: « 8 965,47 »)."""
    decimals = max(0, -int(value.as_tuple().exponent))
    return "#,##0" + ("." + "0" * decimals if decimals else "")


def xlsx(dataset) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = (dataset.title or "export")[:31]
    sheet.append([None] * len(dataset.headers))
    for cell, header in zip(sheet[1], dataset.headers, strict=True):
        cell.value = str(header)
        cell.data_type = "s"  # a service's name heads a column: text, never a formula
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    for values in dataset:
        sheet.append([None] * len(values))
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(row=sheet.max_row, column=column)
            if isinstance(value, Decimal):
                cell.value = value
                cell.number_format = number_format(value)
            elif isinstance(value, date):
                cell.value = value
                cell.number_format = "DD/MM/YYYY"
            elif isinstance(value, int) and not isinstance(value, bool):
                cell.value = value
            elif value is not None:
                cell.value = str(value)
                cell.data_type = "s"  # text, never a formula, whatever it starts with
    for column in sheet.columns:
        width = max(len(plain_cell(cell.value)) for cell in column)
        sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 10), 60)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


SPREADSHEET_FORMATS = {
    "csv": SpreadsheetFormat(".csv", "text/csv; charset=utf-8", plain_csv),
    "xlsx": SpreadsheetFormat(
        ".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xlsx
    ),
    "tableur": SpreadsheetFormat("-tableur.csv", "text/csv; charset=utf-8", excel_csv),
}
