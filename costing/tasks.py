"""Celery tasks of the costing module."""

from celery import shared_task


@shared_task
def run_statement_batch(job_id: int) -> None:
    """Issue and/or export a year's statements (see costing.statements.batch_run)."""
    from costing.statements import batch_run

    batch_run(job_id)


@shared_task
def run_usage_import(import_id: int, phase: str) -> None:
    """Check or import a large usage file (see costing.resources.usage_import_run)."""
    from costing.resources import usage_import_run

    usage_import_run(import_id, phase)
