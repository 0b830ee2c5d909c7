"""Batches of statements (ZIP), the Celery path on a real Redis broker, exports."""

import csv
import io
import os
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from conventions.models import Convention
from costing import statements
from costing.models import BatchJob, Statement, StatementStatus
from mutualisation.celery import app as celery_app
from tests.conftest import log_in, run_seed_demo
from tests.costing.conftest import issue_after_review, more_billed_conventions

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "demo-mutualis-2026"


def stored_archive(job) -> bytes:
    with job.archive.open("rb") as stored:
        stored.seek(0)
        return stored.read()


def zip_of(job):
    return zipfile.ZipFile(io.BytesIO(stored_archive(job)))


@pytest.mark.django_db
def test_zip_of_the_demo_year_matches_the_dashboard_to_the_cent(
    client, django_capture_on_commit_callbacks
):
    run_seed_demo()
    [draft, *_] = statements.statements_prepare(2025)
    # The batch issues once the communes' review window has closed.
    with (
        time_machine.travel(draft.review_until + timedelta(days=1)),
        django_capture_on_commit_callbacks(execute=True),
    ):
        log_in(client, "finances", PASSWORD)
        started = client.post(reverse("costing:batch-start", args=[2025]), {"action": "ISSUE"})
    response = client.get(started["Location"])
    job = BatchJob.objects.get()
    assert job.status == BatchJob.JobStatus.DONE, job.error
    assert "archive ZIP" in response.content.decode()
    issued = Statement.objects.filter(year=2025, status=StatementStatus.ISSUED)
    archive = zip_of(job)
    names = archive.namelist()
    assert sorted(n for n in names if n.startswith("EA-")) == sorted(
        f"{s.number}.pdf" for s in issued
    )
    assert len(issued) == 9
    assert "recapitulatif-2025.pdf" in names
    for statement in issued:
        assert archive.read(f"{statement.number}.pdf") == bytes(statement.pdf)
    rows = list(csv.DictReader(io.StringIO(archive.read("lignes-2025.csv").decode())))
    assert len(rows) == 9  # one line per payer and period in 2025
    csv_total = sum(Decimal(row["montant"]) for row in rows)
    dashboard = client.get(reverse("costing:dashboard", args=[2025]))
    # Before issue 8 the ADS service commun was billed 4 560,90 € above its eligible cost.
    assert csv_total == dashboard.context["total"] == Decimal("719377.33")
    download = client.get(reverse("costing:batch-download", args=[job.pk]))
    assert download["Content-Type"] == "application/zip"
    assert b"".join(download.streaming_content) == stored_archive(job)


@pytest.mark.django_db
def test_titres_and_mandats_mirror_each_other_to_the_cent(client):
    run_seed_demo()
    for draft in statements.statements_prepare(2025):
        issue_after_review(draft)
    log_in(client, "finances", PASSWORD)

    def rows(kind):
        content = client.get(reverse("costing:export", args=[2025, kind, "csv"])).content.decode()
        return list(csv.DictReader(io.StringIO(content)))

    titres, mandats = rows("titres"), rows("mandats")
    # One piece for the voirie MAD (by titre), two for each of the 8 ADS communes (mixed: the
    # AC imputation, then the balance by titre or by mandat).
    assert len(titres) == len(mandats) == 17
    for titre, mandat in zip(titres, mandats, strict=True):
        assert (titre["reference"], titre["montant"]) == (mandat["reference"], mandat["montant"])
        assert titre["debiteur_siren"] == mandat["emetteur_siren"]
        assert not titre["montant"].startswith("-")
        assert mandat["nature"] == statements.DEBTOR_MIRROR[titre["nature"]]
        if titre["nature"] == "IMPUTATION_AC":
            assert (titre["compte"], mandat["compte"]) == ("739211", "73211")
        else:
            assert titre["compte"] in ("70875", "70876")
            assert mandat["compte"] in ("62876", "62875")


@pytest.mark.django_db
def test_an_xlsx_cell_starting_with_equals_is_escaped(client, billed, personas):
    service = billed.service
    service.name = '=HYPERLINK("http://exemple.invalid","cliquez")'
    service.save()
    for draft in statements.statements_prepare(2026):
        issue_after_review(draft)
    client.force_login(personas.finance)
    content = client.get(reverse("costing:export", args=[2026, "lignes", "xlsx"])).content
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    header = [cell.value for cell in sheet[1]]
    services_column = [
        row[header.index("service")] for row in sheet.iter_rows(min_row=2, values_only=True)
    ]
    assert services_column
    assert all(not str(value).startswith("=") for value in services_column)
    assert all("HYPERLINK" in str(value) for value in services_column)


@pytest.mark.django_db
def test_commune_readers_and_managers_cannot_run_batches_or_exports(client, personas):
    for persona in ("reader_a", "manager"):
        client.force_login(getattr(personas, persona))
        assert (
            client.post(
                reverse("costing:batch-start", args=[2025]), {"action": "EXPORT"}
            ).status_code
            == 403
        )
        assert (
            client.get(reverse("costing:export", args=[2025, "titres", "csv"])).status_code == 403
        )
        assert client.get(reverse("costing:dashboard", args=[2025])).status_code == 403


# --- the Celery path on a real broker ----------------------------------------------------------


def reset_celery_connections():
    """Earlier (eager) tests leave connection pools bound to the old broker: drop them."""
    celery_app.close()
    celery_app.amqp._producer_pool = None


def redis_available() -> bool:
    import redis

    try:
        return redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        return False


def database_url() -> str:
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    return f"postgres://{settings_dict['USER']}@{settings_dict['HOST'] or '127.0.0.1'}:{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_batch_runs_in_chunks_on_two_real_celery_worker_processes_through_redis(
    billed, personas, flushable_statements, tmp_path
):
    """The batch is split in chunks (one draft each here) that the worker's two processes
    share; the last chunk queues the assembly; the ZIP is a file both processes see."""
    if not redis_available():
        pytest.fail("Redis ne répond pas sur 127.0.0.1:6379 : .ci/run le démarre.")
    broker = "redis://127.0.0.1:6379/15"
    queue = f"mutualis-test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mutualisation.settings",
        "DJANGO_SECRET_KEY": "celery-test-" + uuid.uuid4().hex * 2,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_WORKER_MAX_TASKS_PER_CHILD": "1",
        "DJANGO_MEDIA_ROOT": str(tmp_path),
        "MUTUALIS_BATCH_CHUNK_SIZE": "1",
        "CELERY_TASK_DEFAULT_QUEUE": queue,
    }
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "mutualisation",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "-Q",
            queue,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    previous = dict(celery_app.conf)
    shared_files = override_settings(  # the worker's files, seen from here
        STORAGES={
            **django_settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        },
        MEDIA_ROOT=str(tmp_path),
    )
    shared_files.enable()
    try:
        celery_app.conf.update(task_always_eager=False, broker_url=broker, task_default_queue=queue)
        reset_celery_connections()
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=3)
        # The worker runs on the real clock, before the end of 2026: the first convention's
        # statements are issued here (after the year end and the review window), the worker
        # exports them with the other convention's two drafts, rendered in two chunks.
        for draft in statements.statements_prepare(
            2026, Convention.objects.filter(pk=billed.convention.pk)
        ):
            issue_after_review(draft)
        more_billed_conventions(billed, 1)
        job = statements.batch_start(
            year=2026, action=BatchJob.Action.EXPORT, user=personas.finance
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status in (BatchJob.JobStatus.DONE, BatchJob.JobStatus.FAILED):
                break
            time.sleep(0.5)
        assert job.status == BatchJob.JobStatus.DONE, job.error or "le worker n'a pas terminé"
        assert job.done == job.total > 0
        # two chunks of drafts, the summary's part
        assert (job.chunks_total, sorted(job.chunks_done)) == (3, [0, 1, 2])
        names = zip_of(job).namelist()
        assert sorted(n for n in names if n.startswith("EA-")) == [
            "EA-2026-0001.pdf",
            "EA-2026-0002.pdf",
        ]
        assert len([n for n in names if n.startswith("PROJET-2026-")]) == 2
    finally:
        celery_app.conf.update(
            task_always_eager=previous["task_always_eager"],
            broker_url=previous["broker_url"],
            task_default_queue=previous["task_default_queue"],
        )
        reset_celery_connections()
        shared_files.disable()
        worker.terminate()
        try:
            output = worker.communicate(timeout=20)[0].decode(errors="replace")
        except subprocess.TimeoutExpired:
            worker.kill()
            output = ""
        print(output[-3000:])
