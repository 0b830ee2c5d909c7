"""Statements at scale (issue 11): preparing, issuing and exporting a year cost a number of
queries that does not grow with the number of statements; the batch is shared by workers in
chunks; its ZIP is a file, not a database value."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from costing import statements
from costing.models import Statement, StatementLine, StatementStatus
from tests.costing.conftest import more_billed_conventions


def queries_of(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


@pytest.mark.django_db
def test_preparing_the_years_drafts_takes_as_many_queries_for_14_drafts_as_for_4(billed):
    more_billed_conventions(billed, 1)
    small = queries_of(lambda: statements.statements_prepare(2026))
    small_refresh = queries_of(lambda: statements.statements_prepare(2026))
    assert Statement.objects.filter(status=StatementStatus.DRAFT).count() == 4
    StatementLine.objects.all().delete()
    Statement.objects.all().delete()
    more_billed_conventions(billed, 5)
    large = queries_of(lambda: statements.statements_prepare(2026))
    large_refresh = queries_of(lambda: statements.statements_prepare(2026))
    assert Statement.objects.filter(status=StatementStatus.DRAFT).count() == 14
    assert (large, large_refresh) == (small, small_refresh)


@pytest.mark.django_db
def test_the_statements_benchmark_leaves_the_database_unchanged(billed):
    out = io.StringIO()
    call_command("benchmark_statements", "--year", "2026", "--count", "1", stdout=out)
    assert "1 PDF en" in out.getvalue()
    assert not Statement.objects.exists()
    assert not StatementLine.objects.exists()
