"""Lists load the columns they show: never the stored PDFs, ZIP archives, snapshots or long
texts of the rows they list (at national scale, megabytes per row)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from costing import statements
from costing.models import BatchJob, Statement, UsageImport

pytestmark = pytest.mark.django_db


def selected_columns(captured, table):
    """The columns of ``table`` each SELECT of the request read."""
    found = set()
    for query in captured.captured_queries:
        sql = query["sql"]
        if sql.startswith("SELECT") and f'"{table}"' in sql:
            select = sql.split(" FROM ")[0]
            found |= set(re.findall(rf'"{table}"\."(\w+)"', select))
    return found


def test_the_statements_list_reads_no_pdf_snapshot_nor_batch_plan(
    client, billed, personas, territory
):
    statements.statements_prepare(2026)
    Statement.objects.update(pdf=b"%PDF-" + b"0" * 1000, snapshot={"lines": ["x"] * 100})
    BatchJob.objects.create(
        year=2026,
        action=BatchJob.Action.EXPORT,
        territory=territory.epci,
        archive="batches/etats-2026.zip",
        plan={"chunks": [[{"id": 1}]] * 1000},
        total=1,
        created_by=personas.finance,
    )
    client.force_login(personas.finance)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("costing:statements", args=[2026]))
    assert response.status_code == 200
    assert list(response.context["table"].page.object_list)
    assert response.context["jobs"]
    statement_columns = selected_columns(captured, "costing_statement")
    assert {"number", "total", "balance"} <= statement_columns
    assert not statement_columns & {"pdf", "snapshot", "correction_reason"}
    assert not selected_columns(captured, "conventions_convention") & {"object", "preamble"}
    job_columns = selected_columns(captured, "costing_batchjob")
    assert "status" in job_columns
    assert not job_columns & {"plan", "chunks_done"}


def test_the_imports_list_reads_no_file_errors_nor_preview(client, personas):
    UsageImport.objects.create(
        created_by=personas.manager,
        filename="recours.csv",
        errors=["x"] * 100,
        preview=[["x"]] * 100,
    )
    client.force_login(personas.manager)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(reverse("costing:usage-import"))
    assert response.status_code == 200
    columns = selected_columns(captured, "costing_usageimport")
    assert "filename" in columns
    assert not columns & {"file", "errors", "preview"}


def test_the_statements_list_is_paged(client, billed, personas, monkeypatch):
    """Thousands of statements a year in a large territory: the list shows one page at a time
    (the page's rows only are read), with links to the others."""
    from costing import views

    statements.statements_prepare(2026)
    monkeypatch.setattr(views, "STATEMENTS_PER_PAGE", 1)
    client.force_login(personas.finance)
    shown = []
    for page in (1, 2):
        response = client.get(reverse("costing:statements", args=[2026]), {"page": page})
        rows = [row.record for row in response.context["table"].page.object_list]
        assert len(rows) == 1
        shown += [statement.payer.name for statement in rows]
        assert f"page {page} sur 2" in response.content.decode()
    assert sorted(shown) == ["Commune A", "Commune B"]
