"""Statements at scale (issue 11): preparing, issuing and exporting a year cost a number of
queries that does not grow with the number of statements; the batch is shared by workers in
chunks; its ZIP is a file, not a database value."""

import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from costing import statements
from costing.models import BatchJob, Statement, StatementLine, StatementStatus
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


def issuing_batch(year, personas) -> BatchJob:
    """A batch that issues the year's drafts, their review window over."""
    statements.statements_prepare(year)
    Statement.objects.filter(status=StatementStatus.DRAFT).update(review_until="2027-01-01")
    return BatchJob.objects.create(
        year=year, action=BatchJob.Action.ISSUE_AND_EXPORT, created_by=personas.finance
    )


@pytest.mark.django_db
def test_issuing_a_batch_does_not_prepare_the_year_again_for_each_statement(billed, personas):
    """Before: 53 queries per statement issued (the year recomputed for each). Issuing cannot
    be constant (the counter gives each number, the database checks each issued row), but each
    more statement costs a handful of queries, not a preparation; exporting costs nothing per
    statement."""
    more_billed_conventions(billed, 1)
    small_job = issuing_batch(2026, personas)
    small = queries_of(lambda: statements.batch_run(small_job.pk))
    assert Statement.objects.filter(status=StatementStatus.ISSUED).count() == 4
    more_billed_conventions(billed, 4)
    large_job = issuing_batch(2026, personas)
    large = queries_of(lambda: statements.batch_run(large_job.pk))
    assert Statement.objects.filter(status=StatementStatus.ISSUED).count() == 12
    for job in (small_job, large_job):
        job.refresh_from_db()
        assert (job.status, job.error) == (BatchJob.JobStatus.DONE, "")
    numbers = sorted(Statement.objects.values_list("number", flat=True))
    assert numbers == [f"EA-2026-{n:04d}" for n in range(1, 13)]
    # 4 more issued (and 8 more exported): the counter's next number and the issued row, each
    per_statement = (large - small) / (8 - 4)
    assert per_statement <= 5, (small, large)
