"""The finance exports as a French finance officer opens them: XLSX with numeric cells in a
number format, and a CSV for French Excel (« ; », decimal comma, UTF-8 BOM); the plain CSV for
the finance software stays as documented (docs/statements.md)."""

import csv
import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from costing import instalments, statements
from costing.models import Instalment, StatementLine
from tests.costing.conftest import issue_after_review

pytestmark = pytest.mark.django_db


def xlsx_rows(client, kind):
    content = client.get(reverse("costing:export", args=[2026, kind, "xlsx"])).content
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    header = [cell.value for cell in sheet[1]]
    return [dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2)]


def issued(billed):
    for draft in statements.statements_prepare(2026):
        issue_after_review(draft)


def test_xlsx_lines_hold_amounts_units_and_dates_as_formatted_numbers_equal_to_the_cent(
    client, billed, personas
):
    issued(billed)
    client.force_login(personas.finance)
    rows = xlsx_rows(client, "lignes")
    lines = {line.amount: line for line in StatementLine.objects.all()}
    assert len(rows) == len(lines) == 2
    for row in rows:
        amount, units, cost = row["montant"], row["unites"], row["cout_unitaire"]
        assert amount.data_type == units.data_type == cost.data_type == "n"
        assert amount.number_format == cost.number_format == "#,##0.00"
        assert units.number_format == "#,##0.000"
        line = lines[Decimal(str(amount.value)).quantize(Decimal("0.01"))]
        assert Decimal(str(units.value)).quantize(Decimal("0.001")) == line.units
        assert isinstance(row["periode_debut"].value, datetime)
        assert row["periode_debut"].value.date() == line.period_start
        assert row["periode_debut"].number_format == "DD/MM/YYYY"
        # Identifiers stay text: a SIREN or an account is not a quantity.
        assert row["debiteur_siren"].data_type == "s"
        assert row["compte_recette_creancier"].data_type == "s"


def test_xlsx_titres_hold_the_statements_totals_as_numbers(client, billed, personas):
    issued(billed)
    client.force_login(personas.finance)
    rows = xlsx_rows(client, "titres")
    assert rows
    for row in rows:
        for column in ("montant", "total_exercice", "deja_appele"):
            assert row[column].data_type == "n", column
            assert row[column].number_format == "#,##0.00"


def test_the_csv_for_french_excel_has_a_bom_semicolons_decimal_commas_and_french_dates(
    client, billed, personas
):
    issued(billed)
    client.force_login(personas.finance)
    response = client.get(reverse("costing:export", args=[2026, "lignes", "tableur"]))
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="lignes-2026-tableur.csv"' in response["Content-Disposition"]
    content = response.content
    assert content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))
    amounts = sorted(row["montant"] for row in rows)
    assert amounts == ["3028,88", "8965,47"]
    assert {row["unites"] for row in rows} == {"37,000", "12,500"}
    assert {row["periode_debut"] for row in rows} == {"01/01/2026"}
    assert {row["debiteur_siren"] for row in rows} == {
        billed.territory.commune_a.siren,
        billed.territory.commune_b.siren,
    }


def test_the_plain_csv_for_the_finance_software_is_unchanged(client, billed, personas):
    issued(billed)
    client.force_login(personas.finance)
    content = client.get(reverse("costing:export", args=[2026, "lignes", "csv"])).content
    assert not content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert sorted(row["montant"] for row in rows) == ["3028.88", "8965.47"]
    assert {row["periode_debut"] for row in rows} == {date(2026, 1, 1).isoformat()}
    assert {row["exercice"] for row in rows} == {"2026"}


def test_the_lines_export_holds_the_issued_statements_only_as_the_titres_do(
    client, billed, personas
):
    """A draft may still change while its commune reviews it: the finance software receives
    the lines of the issued statements, which add up to the titres of the same export."""
    drafts = {s.payer.name: s for s in statements.statements_prepare(2026)}
    number = issue_after_review(drafts["Commune A"]).number
    client.force_login(personas.finance)
    content = client.get(reverse("costing:export", args=[2026, "lignes", "csv"])).content
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert {row["numero_etat"] for row in rows} == {number}
    titres = client.get(reverse("costing:export", args=[2026, "titres", "csv"])).content
    pieces = list(csv.DictReader(io.StringIO(titres.decode())))
    assert {piece["total_exercice"] for piece in pieces} == {
        str(sum(Decimal(row["montant"]) for row in rows))
    }


def test_an_unknown_export_format_is_refused(client, billed, personas):
    client.force_login(personas.finance)
    response = client.get(reverse("costing:export", args=[2026, "lignes", "ods"]))
    assert response.status_code in (403, 404)


def test_acomptes_open_in_excel_with_due_dates_amounts_and_ranks_as_values(
    client, billed, personas
):
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))
    client.force_login(personas.finance)
    rows = sorted(xlsx_rows(client, "acomptes"), key=lambda row: row["debiteur"].value)
    assert [
        (r["debiteur"].value, r["rang"].value, r["echeance"].value.date(), r["montant"].value)
        for r in rows
    ] == [
        ("Commune A", 1, date(2026, 1, 1), 7269.3),
        ("Commune B", 1, date(2026, 1, 1), 4846.2),
    ]
    assert {r["echeance"].number_format for r in rows} == {"DD/MM/YYYY"}
    assert {r["montant"].number_format for r in rows} == {"#,##0.00"}
    assert {r["encaisse_le"].value for r in rows} == {None}
    french = client.get(reverse("costing:export", args=[2026, "acomptes", "tableur"]))
    lines = french.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("convention;rang;echeance;")
    assert any(";1;01/01/2026;" in line and ";7269,30;" in line for line in lines[1:])


def test_no_text_cell_of_a_csv_export_can_run_as_a_formula(client, billed, personas):
    """A titre number is free text: « =HYPERLINK(…) » typed there must reach neither CSV as a
    formula (a spreadsheet runs a cell starting with =, +, - or @)."""
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))
    Instalment.objects.filter(payer=billed.territory.commune_a).update(
        titre_number='=HYPERLINK("http://exemple.invalid","x")'
    )
    client.force_login(personas.finance)
    for fmt, delimiter, encoding in (("csv", ",", "utf-8"), ("tableur", ";", "utf-8-sig")):
        content = client.get(reverse("costing:export", args=[2026, "acomptes", fmt])).content
        rows = list(csv.DictReader(io.StringIO(content.decode(encoding)), delimiter=delimiter))
        titres = [row["titre"] for row in rows if "HYPERLINK" in row["titre"]]
        assert titres, fmt
        assert all(not titre.startswith(("=", "+", "-", "@")) for titre in titres), fmt


def test_the_reimbursements_csv_of_the_command_neutralises_formula_names(billed):
    """``manage.py compute_reimbursements`` writes the year as CSV: an organisation
    whose name starts with = + - @ is written after a quote."""
    from costing import exports, services

    territory = billed.territory
    territory.epci.name = "=1+2"
    territory.epci.save()
    territory.commune_a.name = "-Commune A"
    territory.commune_a.save()
    rows = list(
        csv.reader(
            io.StringIO(exports.year_as_csv(services.compute_reimbursements(2026))), delimiter=";"
        )
    )
    cells = [cell for row in rows[1:-1] for cell in row]
    assert "'=1+2" in cells
    assert "'-Commune A" in cells
    assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
