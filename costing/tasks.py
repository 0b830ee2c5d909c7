"""Celery tasks of the costing module."""

from celery import group, shared_task


@shared_task
def run_statement_batch(job_id: int) -> None:
    """Plan a year's batch (prepare the drafts, choose the numbers), then hand its chunks to
    every worker at once (see costing.statements.batch_plan)."""
    from costing.statements import batch_plan

    job = batch_plan(job_id)
    group(render_statement_chunk.si(job_id, index) for index in range(job.chunks_total)).delay()


@shared_task
def render_statement_chunk(job_id: int, index: int) -> None:
    """Render one chunk of a batch; the chunk that finishes last queues the assembly. A join on
    the database (the job's finished chunks, under its row lock) rather than a Celery chord:
    no result backend is needed, and a chunk delivered twice counts once."""
    from costing.statements import batch_render_chunk

    if batch_render_chunk(job_id, index):
        finish_statement_batch.delay(job_id)


@shared_task
def finish_statement_batch(job_id: int) -> None:
    """Issue the planned drafts and write the batch's ZIP (see costing.statements.batch_finish)."""
    from costing.statements import batch_finish

    batch_finish(job_id)


@shared_task
def run_usage_import(import_id: int, phase: str) -> None:
    """Check or import a large usage file (see costing.resources.usage_import_run)."""
    from costing.resources import usage_import_run

    usage_import_run(import_id, phase)


# E-mails (see costing.notifications): queued once the writes they announce have committed.


@shared_task
def send_drafts_ready(statement_ids: list[int]) -> None:
    from costing import notifications

    notifications.send_drafts_ready(statement_ids)


@shared_task
def send_remark_added(remark_id: int) -> None:
    from costing import notifications

    notifications.send_remark_added(remark_id)


@shared_task
def send_remark_answered(remark_id: int) -> None:
    from costing import notifications

    notifications.send_remark_answered(remark_id)
