"""The year's reimbursements as plain data (JSON) and as CSV rows, in the documented schema
(docs/costing.md, « Format de sortie »). Amounts are strings of Decimals, never floats."""

import csv
import io
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import openpyxl
from openpyxl.styles import Font

SCHEMA = "mutualis.reimbursements/2"


def organisation(party) -> dict:
    return {"siren": party.siren, "name": party.name}


def decimal_or_none(value):
    return None if value is None else str(value)


def line_as_dict(line) -> dict:
    """An engine line as plain data: the one serialiser, used by the JSON export and by the
    statements' frozen snapshots."""
    return {
        "convention": line.convention,
        "payer": organisation(line.payer),
        "payee": organisation(line.payee),
        "service": line.service,
        "service_name": line.service_name,
        "period_start": line.period.start.isoformat(),
        "period_end": line.period.end.isoformat(),
        "basis": line.basis,
        "units": str(line.units),
        "unit_cost": decimal_or_none(line.unit_cost),
        "unit_cost_provisional": line.unit_cost_provisional,
        "amount": str(line.amount),
        "usage_count": line.usage_count,
        "key_weight": decimal_or_none(line.key_weight),
        "key_total": decimal_or_none(line.key_total),
        "shared_cost": decimal_or_none(line.shared_cost),
    }


def settlement_as_dict(s) -> dict:
    """A payer's settlement: forecast, AC deduction, acomptes planned and called (with their
    dates), actual, balance with its direction and channel."""
    return {
        "convention": s.convention,
        "payer": organisation(s.payer),
        "payee": organisation(s.payee),
        "settlement_mode": s.settlement_mode,
        "forecast": str(s.forecast),
        "ac_deduction": str(s.ac_deduction),
        "instalments_planned": [
            {"rank": i.rank, "due_date": i.due_date.isoformat(), "amount": str(i.amount)}
            for i in s.planned
        ],
        "instalments_called": [
            {
                "rank": i.rank,
                "due_date": i.due_date.isoformat(),
                "amount": str(i.amount),
                "titre_number": i.reference,
                "status": i.status,
            }
            for i in s.called
        ],
        "instalments_total": str(s.instalments_total),
        "actual": str(s.actual),
        "balance": str(s.balance),
        "direction": balance_direction(s.balance),
        "channel": s.channel,
    }


def balance_direction(balance) -> str:
    """Who pays the balance: TO_COLLECT (the payer owes it), TO_REFUND (the payee gives it
    back), SETTLED (nothing)."""
    return "TO_COLLECT" if balance > 0 else "TO_REFUND" if balance < 0 else "SETTLED"


def totals(result) -> dict:
    by_payee: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    by_payer: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for line in result.lines:
        by_payee[line.payee.siren] += line.amount
        by_payer[line.payer.siren] += line.amount
    return {
        "lines": len(result.lines),
        "amount": str(result.total),
        "by_payee": {siren: str(amount) for siren, amount in sorted(by_payee.items())},
        "by_payer": {siren: str(amount) for siren, amount in sorted(by_payer.items())},
    }


def year_as_dict(reimbursements) -> dict:
    result = reimbursements.result
    return {
        "schema": SCHEMA,
        "year": reimbursements.year,
        "currency": "EUR",
        "lines": [line_as_dict(line) for line in result.lines],
        "borne_by_payee": [line_as_dict(line) for line in result.borne_by_payee],
        "settlements": [settlement_as_dict(s) for s in result.settlements],
        "positions": [
            {
                "organisation": organisation(p.party),
                "receivable": str(p.receivable),
                "payable": str(p.payable),
                "net": str(p.net),
                "settled": str(p.settled),
                "remaining": str(p.remaining),
            }
            for p in result.positions
        ],
        "findings": [
            {"convention": f.convention, "code": f.code, "message": f.message}
            for f in reimbursements.findings
        ],
        "totals": totals(result),
    }


CSV_COLUMNS = [
    "convention",
    "payer_siren",
    "payer_name",
    "payee_siren",
    "payee_name",
    "service",
    "period_start",
    "period_end",
    "basis",
    "units",
    "unit_cost",
    "amount",
]


def year_as_csv(reimbursements) -> str:
    """One row per line, then a TOTAL row; ``;`` separated, decimal point (machine-readable)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in reimbursements.result.lines:
        writer.writerow(
            [
                line.convention,
                line.payer.siren,
                line.payer.name,
                line.payee.siren,
                line.payee.name,
                line.service,
                line.period.start.isoformat(),
                line.period.end.isoformat(),
                line.basis,
                line.units,
                "" if line.unit_cost is None else line.unit_cost,
                line.amount,
            ]
        )
    writer.writerow(["TOTAL", "", "", "", "", "", "", "", "", "", "", reimbursements.result.total])
    return out.getvalue()


# --- the finance exports as files (lignes, titres, mandats, acomptes) --------------------------
#
# One dataset of native values (Decimal, date, int, text: django-import-export's
# ``force_native_type``), written three ways: a plain CSV for the finance software
# (docs/statements.md: « , », decimal point, ISO dates), an XLSX whose amounts, units and dates
# are numbers and dates in a number format (French Excel shows « 8 965,47 » and sums them), and
# a CSV for French Excel (« ; », decimal comma, dd/mm/yyyy, UTF-8 BOM so accents open right).


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
    writer.writerow(dataset.headers)
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
    sheet.append(list(dataset.headers))
    for cell in sheet[1]:
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
