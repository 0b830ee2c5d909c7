"""A batch's progress, counted in statements (each once), and its start that only enqueues it
when a broker is configured (issue 12)."""

import io
import zipfile
from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from costing import statements
from costing.models import BatchJob, Statement, StatementStatus
from mutualisation.celery import app as celery_app
from tests.costing.conftest import issue_after_review, more_billed_conventions
from tests.costing.test_batch import redis_available, reset_celery_connections


def statement_pdfs(job) -> list[str]:
    with job.archive.open("rb") as stored:
        names = zipfile.ZipFile(io.BytesIO(stored.read())).namelist()
    return [n for n in names if n.endswith(".pdf") and not n.startswith("recapitulatif")]


@pytest.mark.django_db
def test_a_batch_counts_its_progress_in_statements_each_once(billed, personas, settings):
    """Four statements (one issued already, three drafts): the batch counts 4, not a step per
    PDF rendered plus a step per PDF written to the ZIP plus the summary (which made 13
    statements read « 26 sur 26 »)."""
    settings.MUTUALIS_BATCH_CHUNK_SIZE = 1
    more_billed_conventions(billed, 1)
    first, *_ = statements.statements_prepare(2026)
    issue_after_review(first)
    job = BatchJob.objects.create(
        year=2026, action=BatchJob.Action.EXPORT, created_by=personas.finance
    )
    job = statements.batch_plan(job.pk)
    assert (job.done, job.total) == (1, 4)  # the issued one's PDF is ready already
    statements.batch_render_chunk(job.pk, 0)
    job.refresh_from_db()
    assert (job.done, job.total) == (2, 4)
    for index in range(1, job.chunks_total):
        statements.batch_render_chunk(job.pk, index)
    job.refresh_from_db()
    assert (job.status, job.done, job.total) == (BatchJob.JobStatus.RUNNING, 4, 4)
    job = statements.batch_finish(job.pk)
    assert (job.status, job.done, job.total) == (BatchJob.JobStatus.DONE, 4, 4)
    assert len(statement_pdfs(job)) == 4


@pytest.mark.django_db
def test_a_draft_correction_is_not_counted_as_one_more_statement(billed, personas):
    """A draft correction is rendered but the ZIP keeps the statement it would cancel: one
    statement, counted once."""
    first, second = statements.statements_prepare(2026)
    first = issue_after_review(first)
    issue_after_review(second)
    statements.statement_correct(first, reason="Erreur de saisie des recours")
    job = BatchJob.objects.create(
        year=2026, action=BatchJob.Action.EXPORT, created_by=personas.finance
    )
    job = statements.batch_run(job.pk)
    assert (job.status, job.done, job.total) == (BatchJob.JobStatus.DONE, 2, 2)
    assert len(statement_pdfs(job)) == 2


@pytest.mark.django_db
def test_an_issue_batch_says_where_it_says_terminé_how_many_it_issued(client, billed, personas):
    """Run within the communes' review window, « Émettre puis exporter » issues nothing: the
    line that says « Terminé — 2 états sur 2 » (the drafts exported) says so too, instead of
    reading as if the year were issued; once the window is over, it says how many it issued."""
    drafts = statements.statements_prepare(2026)
    client.force_login(personas.finance)
    early = BatchJob.objects.create(
        year=2026,
        action=BatchJob.Action.ISSUE_AND_EXPORT,
        created_by=personas.finance,
        territory=billed.convention.territory,
    )
    early = statements.batch_run(early.pk)
    assert (early.status, early.issued) == (BatchJob.JobStatus.DONE, 0)
    assert "Terminé — 2 états sur 2, aucun émis par ce lot" in progress_of(client, early)

    with time_machine.travel(drafts[0].review_until + timedelta(days=1)):
        client.force_login(personas.finance)  # weeks later: a new session
        later = BatchJob.objects.create(
            year=2026,
            action=BatchJob.Action.ISSUE_AND_EXPORT,
            created_by=personas.finance,
            territory=billed.convention.territory,
        )
        later = statements.batch_run(later.pk)
        assert later.issued == 2
        assert "Terminé — 2 états sur 2, dont 2 émis par ce lot" in progress_of(client, later)
        export = BatchJob.objects.create(
            year=2026,
            action=BatchJob.Action.EXPORT,
            created_by=personas.finance,
            territory=billed.convention.territory,
        )
        export = statements.batch_run(export.pk)
        assert "Terminé — 2 états sur 2</p>" in progress_of(client, export)  # exports only


def progress_of(client, job) -> str:
    return client.get(
        reverse("costing:batch", args=[job.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()


@pytest.mark.django_db
def test_the_batch_page_says_how_many_statements_and_terminé_only_when_done(
    client, personas, territory
):
    client.force_login(personas.finance)
    job = BatchJob.objects.create(
        year=2026,
        action=BatchJob.Action.ISSUE_AND_EXPORT,
        created_by=personas.finance,
        territory=territory.epci,
    )
    pending = progress_of(client, job)
    assert "En attente" in pending
    assert "hx-get" in pending
    assert "Terminé" not in pending
    assert 'data-percent="0"' in pending  # not 100 % before the plan counts the statements

    BatchJob.objects.filter(pk=job.pk).update(status="RUNNING", done=12, total=13)
    running = progress_of(client, job)
    assert "12 états sur 13" in running
    assert "Terminé" not in running
    assert "batch-download" not in running
    assert 'aria-live="polite"' in running

    BatchJob.objects.filter(pk=job.pk).update(done=1)
    assert "1 état sur 13" in progress_of(client, job)

    BatchJob.objects.filter(pk=job.pk).update(done=13)
    assembling = progress_of(client, job)
    assert "13 états sur 13" in assembling
    assert "Terminé" not in assembling
    assert "Assemblage de l’archive" in assembling

    BatchJob.objects.filter(pk=job.pk).update(status="DONE")
    done = progress_of(client, job)
    assert "Terminé — 13 états sur 13" in done
    assert reverse("costing:batch-download", args=[job.pk]) in done
    assert "hx-get" not in done  # no more polling


@pytest.mark.django_db
def test_starting_a_batch_with_a_broker_only_enqueues_it_and_redirects(
    client, billed, personas, django_capture_on_commit_callbacks
):
    """With a broker (the real Redis, no worker listening), the POST records the job, queues
    its task and answers with a redirect: nothing of the batch runs in the request."""
    if not redis_available():
        pytest.fail("Redis ne répond pas sur 127.0.0.1:6379 : .ci/run le démarre.")
    import uuid

    broker = "redis://127.0.0.1:6379/15"
    queue = f"mutualis-test-{uuid.uuid4().hex[:8]}"
    previous = dict(celery_app.conf)
    celery_app.conf.update(task_always_eager=False, broker_url=broker, task_default_queue=queue)
    reset_celery_connections()
    try:
        client.force_login(personas.finance)
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            response = client.post(reverse("costing:batch-start", args=[2026]), {"action": "ISSUE"})
        job = BatchJob.objects.get()
        assert response.status_code == 302
        assert response["Location"] == reverse("costing:batch", args=[job.pk])
        assert len(callbacks) == 1  # the task, queued once the job is committed
        assert (job.status, job.done, job.plan) == (BatchJob.JobStatus.PENDING, 0, {})
        assert not Statement.objects.filter(status=StatementStatus.ISSUED).exists()
        with celery_app.connection_for_write() as conn:
            queued = conn.default_channel.client.llen(queue)
        assert queued == 1
        page = client.get(response["Location"]).content.decode()
        assert "En attente" in page
        assert "hx-get" in page
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.client.delete(queue)
        celery_app.conf.update(
            task_always_eager=previous["task_always_eager"],
            broker_url=previous["broker_url"],
            task_default_queue=previous["task_default_queue"],
        )
        reset_celery_connections()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_batch_page_polls_and_shows_terminé_with_the_zip_only_once_done(
    live_server, page, personas, territory
):
    from tests.conftest import assert_accessible, browser_log_in, screenshot

    job = BatchJob.objects.create(
        year=2026,
        action=BatchJob.Action.ISSUE_AND_EXPORT,
        created_by=personas.finance,
        territory=territory.epci,
        status=BatchJob.JobStatus.RUNNING,
        done=12,
        total=13,
    )
    browser_log_in(page, live_server, "finances")
    page.goto(live_server.url + reverse("costing:batch", args=[job.pk]))
    status = page.locator("#progression [aria-live]")
    assert status.inner_text() == "En cours — 12 états sur 13"
    assert page.get_by_role("link", name="Télécharger l'archive ZIP").count() == 0
    screenshot(page, "batch-1-running")
    assert_accessible(page, "lot en cours")
    BatchJob.objects.filter(pk=job.pk).update(status=BatchJob.JobStatus.DONE, done=13, issued=13)
    page.get_by_role("link", name="Télécharger l'archive ZIP").wait_for(timeout=5000)
    assert (
        page.locator("#progression [aria-live]").inner_text()
        == "Terminé — 13 états sur 13, dont 13 émis par ce lot"
    )
    screenshot(page, "batch-2-done")
    assert_accessible(page, "lot terminé")
