"""Statements at scale (issue 11): preparing, issuing and exporting a year cost a number of
queries that does not grow with the number of statements; the batch is shared by workers in
chunks; its ZIP is a file, not a database value."""

import io
import zipfile
from decimal import Decimal

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from pypdf import PdfReader

from costing import statements
from costing.models import (
    BatchJob,
    Statement,
    StatementCounter,
    StatementLine,
    StatementStatus,
    UsageRecord,
)
from mutualisation.templatetags.money import euros
from tests.costing.conftest import more_billed_conventions


def pdf_text(content: bytes) -> str:
    """The PDF's text, its no-break spaces as spaces."""
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    return spaced(text)


def spaced(text: str) -> str:
    return text.replace("\u00a0", " ").replace("\u202f", " ")


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
def test_issuing_a_batch_does_not_prepare_the_year_again_for_each_statement(
    billed, personas, settings
):
    """Before: 53 queries per statement issued (the year recomputed for each). Issuing cannot
    be constant (the counter gives each number, the database checks each issued row), but each
    more statement costs a handful of queries, not a preparation; exporting costs nothing per
    statement. (One chunk for both batches: a chunk's own few queries are not a statement's.)"""
    settings.MUTUALIS_BATCH_CHUNK_SIZE = 50
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


@pytest.mark.django_db
def test_a_batch_in_chunks_numbers_its_drafts_in_order_and_counts_a_chunk_run_twice_once(
    billed, personas, settings
):
    settings.MUTUALIS_BATCH_CHUNK_SIZE = 1
    more_billed_conventions(billed, 1)
    job = issuing_batch(2026, personas)
    job = statements.batch_plan(job.pk)
    assert job.chunks_total == 4 + 1  # a chunk per draft, and the summary's one part
    assert [statements.batch_render_chunk(job.pk, i) for i in (0, 1, 1, 2, 4, 3, 3)] == [
        False,
        False,
        False,  # delivered twice: counted once
        False,
        False,
        True,  # the last chunk to finish queues the assembly
        False,
    ]
    job = statements.batch_finish(job.pk)
    assert (job.status, job.error) == (BatchJob.JobStatus.DONE, "")
    issued = Statement.objects.filter(status=StatementStatus.ISSUED).order_by(
        "convention__reference", "payer__siren"
    )
    assert [s.number for s in issued] == [f"EA-2026-{n:04d}" for n in range(1, 5)]
    for statement in issued:  # the PDF its chunk rendered, with its number
        assert statement.number in pdf_text(bytes(statement.pdf))
    assert not default_storage.listdir("batches/parts/")[1]  # the parts are removed


@pytest.mark.django_db
def test_a_draft_recomputed_after_its_chunk_was_rendered_is_issued_with_its_new_figures(
    billed, personas
):
    job = statements.batch_plan(issuing_batch(2026, personas).pk)
    statements.batch_render_chunk(job.pk, 0)
    UsageRecord.objects.filter(beneficiary=billed.territory.commune_b).update(
        quantity=Decimal("30"), units=Decimal("30")
    )
    statements.batch_finish(job.pk)
    commune_b = Statement.objects.get(payer=billed.territory.commune_b)
    assert commune_b.status == StatementStatus.ISSUED
    assert commune_b.total == Decimal("30") * Decimal("242.31")
    assert spaced(euros(commune_b.total)) in pdf_text(bytes(commune_b.pdf))


@pytest.mark.django_db
def test_a_failing_chunk_fails_the_batch_in_french_and_issues_nothing(
    billed, personas, monkeypatch
):
    job = statements.batch_plan(issuing_batch(2026, personas).pk)

    def broken(statement):
        raise OSError("disque plein")

    monkeypatch.setattr(statements, "render_statement_pdf", broken)
    with pytest.raises(OSError, match="disque plein"):
        statements.batch_render_chunk(job.pk, 0)
    job.refresh_from_db()
    assert job.status == BatchJob.JobStatus.FAILED
    assert job.error == "disque plein (OSError) ; relancez le traitement."
    assert statements.batch_finish(job.pk).status == BatchJob.JobStatus.FAILED
    assert not Statement.objects.filter(status=StatementStatus.ISSUED).exists()
    assert not StatementCounter.objects.filter(last_number__gt=0).exists()  # no gap


@pytest.mark.django_db
def test_the_batch_zip_is_a_file_in_storage_not_a_database_value(billed, personas):
    job = statements.batch_run(issuing_batch(2026, personas).pk)
    assert job.archive.name.startswith(f"batches/{job.created_at:%Y/%m}/etats-2026-{job.pk}")
    assert job.archive.name.endswith(".zip")
    assert default_storage.exists(job.archive.name)
    columns = {f.column: f.get_internal_type() for f in BatchJob._meta.concrete_fields}
    assert "BinaryField" not in columns.values()


@pytest.mark.django_db
def test_the_years_summary_in_parts_lists_every_statement_and_the_totals_once(billed, settings):
    settings.MUTUALIS_SUMMARY_PART_ROWS = 1
    more_billed_conventions(billed, 1)
    statements.statements_prepare(2026)
    drafts = list(statements.current_statements(2026))
    content = statements.render_summary_pdf(2026, drafts)
    text = pdf_text(content)
    assert len(drafts) == 4
    assert text.count("Récapitulatif des états annuels de remboursement") == 1
    pages = [spaced(p.extract_text()) for p in PdfReader(io.BytesIO(content)).pages]
    assert len(pages) == 4
    for number, page in enumerate(pages, start=1):  # the pages numbered on across the parts
        assert page.endswith(f"4 états Page {number} / 4"), page
    for draft in drafts:
        assert draft.convention.reference in text
    total, balance = sum(d.total for d in drafts), sum(d.balance for d in drafts)
    assert text.count(f"\nTotal {spaced(euros(total))} {spaced(euros(balance))}\n") == 1


def summary_of(job: BatchJob) -> bytes:
    with job.archive.open("rb") as stored, zipfile.ZipFile(stored) as archive:
        return archive.read(f"recapitulatif-{job.year}.pdf")


@pytest.mark.django_db
def test_a_batch_renders_its_summary_parts_among_its_chunks_and_numbers_the_pages_across_them(
    billed, personas, settings, monkeypatch
):
    """The year's summary is rendered by the workers in parts, with the statements, instead of
    by the last step alone (33 s for 2 600 statements at scale); the assembly joins the parts
    and numbers the pages from the first to the last."""
    settings.MUTUALIS_SUMMARY_PART_ROWS = 1
    settings.MUTUALIS_BATCH_CHUNK_SIZE = 2
    more_billed_conventions(billed, 1)
    job = statements.batch_plan(issuing_batch(2026, personas).pk)
    assert job.chunks_total == 2 + 4  # two chunks of two drafts, four parts of the summary
    for index in range(job.chunks_total):
        statements.batch_render_chunk(job.pk, index)
    rendered = []
    render = statements.render_pdf
    monkeypatch.setattr(
        statements,
        "render_pdf",
        lambda name, context: rendered.append(name) or render(name, context),
    )
    job = statements.batch_finish(job.pk)
    assert (job.status, job.error) == (BatchJob.JobStatus.DONE, "")
    assert "costing/statement_summary_pdf.html" not in rendered  # the chunks rendered it
    pages = [spaced(p.extract_text()) for p in PdfReader(io.BytesIO(summary_of(job))).pages]
    assert len(pages) == 4
    numbers = [f"EA-2026-{n:04d}" for n in range(1, 5)]
    for number, page in zip(numbers, pages, strict=True):  # one issued statement per part
        assert number in page
    for index, page in enumerate(pages, start=1):
        assert page.endswith(f"Page {index} / 4"), page


@pytest.mark.django_db
def test_a_summary_part_rendered_before_a_draft_was_recomputed_shows_its_new_figures(
    billed, personas
):
    job = statements.batch_plan(issuing_batch(2026, personas).pk)
    for index in range(job.chunks_total):
        statements.batch_render_chunk(job.pk, index)
    UsageRecord.objects.filter(beneficiary=billed.territory.commune_b).update(
        quantity=Decimal("30"), units=Decimal("30")
    )
    job = statements.batch_finish(job.pk)
    text = pdf_text(summary_of(job))
    assert spaced(euros(Decimal("30") * Decimal("242.31"))) in text


# serialized_rollback as every transactional test here: a flush without it recreates the content
# types that the next serialized test then loads again.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_moves_the_zips_kept_in_the_database_to_files(personas):
    before = [("costing", "0012_stored_reimbursement_results")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        zipped = b"PK\x05\x06" + bytes(18)  # an empty ZIP
        old_job = old_apps.get_model("costing", "BatchJob").objects.create(
            year=2025,
            action="EXPORT",
            status="DONE",
            created_by_id=personas.finance.pk,
            archive=zipped,
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    job = BatchJob.objects.get(pk=old_job.pk)
    assert job.archive.name.startswith("batches/")
    assert job.archive.name.endswith(f"/etats-2025-{job.pk}.zip")
    with job.archive.open("rb") as stored:
        assert stored.read() == zipped


@pytest.mark.django_db
def test_an_organisations_summary_is_rendered_in_parts_its_position_printed_once_at_the_end(
    billed, settings, client, personas
):
    """Before: an organisation's summary was one WeasyPrint document however long: an EPCI
    payee of 3 600 statements took 16 s and 584 MiB in a web worker (docs/performance.md)."""
    from django.urls import reverse

    settings.MUTUALIS_SUMMARY_PART_ROWS = 1
    more_billed_conventions(billed, 1)
    statements.statements_prepare(2026)
    epci = billed.territory.epci
    listed = [s for s in statements.current_statements(2026) if epci.pk in (s.payer_id, s.payee_id)]
    assert len(listed) > 1
    client.force_login(personas.finance)
    response = client.get(reverse("costing:commune-summary", args=[2026, epci.siren]))
    assert response.status_code == 200
    pages = [spaced(p.extract_text()) for p in PdfReader(io.BytesIO(response.content)).pages]
    assert len(pages) == len(listed)  # one part per statement, joined
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} / {len(pages)}" in page, page
    text = "\n".join(pages)
    assert text.count("Position nette") == 1
    assert "Position nette" in pages[-1]
    assert text.count(epci.name) >= 1
    for statement in listed:
        assert statement.convention.reference in text
