"""The year's reimbursements as plain data (JSON) and as CSV rows, in the documented schema
(docs/costing.md, « Format de sortie »). Amounts are strings of Decimals, never floats."""

import csv
import io
from collections import defaultdict
from decimal import Decimal

# The spreadsheet writers, re-exported for the finance exports (lignes, titres, mandats, acomptes).
from mutualisation.spreadsheets import (  # noqa: F401
    SPREADSHEET_FORMATS,
    SPREADSHEET_TRIGGERS,
    SpreadsheetFormat,
    dataset_csv,
    excel_csv,
    french_cell,
    number_format,
    plain_cell,
    plain_csv,
    safe_text,
    xlsx,
)

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


def year_part_as_dict(
    year: int, part: dict, lines, settlements, by_payer: dict, by_payee: dict
) -> dict:
    """A part of the year read from the stored results (``services.stored_visible_part``) in
    the shape of ``year_as_dict``, with only ``lines`` and ``settlements`` of its own (a page
    of each); the totals are the whole part's."""
    return {
        "schema": SCHEMA,
        "year": year,
        "currency": "EUR",
        "lines": [line_as_dict(line) for line in lines],
        "borne_by_payee": [line_as_dict(line) for line in part["borne"]],
        "settlements": [settlement_as_dict(row["settlement"]) for row in settlements],
        "positions": [position_as_dict(p) for p in part["positions"]],
        "findings": [
            {"convention": f.convention, "code": f.code, "message": f.message}
            for f in part["findings"]
        ],
        "totals": {
            "lines": len(part["lines"]),
            "amount": str(part["total"]),
            "by_payee": {siren: str(amount) for siren, amount in sorted(by_payee.items())},
            "by_payer": {siren: str(amount) for siren, amount in sorted(by_payer.items())},
        },
    }


def position_as_dict(p) -> dict:
    return {
        "organisation": organisation(p.party),
        "receivable": str(p.receivable),
        "payable": str(p.payable),
        "net": str(p.net),
        "settled": str(p.settled),
        "remaining": str(p.remaining),
    }


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
        "positions": [position_as_dict(p) for p in result.positions],
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
                safe_text(line.convention),
                line.payer.siren,
                safe_text(line.payer.name),
                line.payee.siren,
                safe_text(line.payee.name),
                safe_text(line.service),
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
