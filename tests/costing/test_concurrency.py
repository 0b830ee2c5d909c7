"""Simultaneous requests: they wait for one another, or get a French message, never a 500
(issue 10, point 13). Real threads on the real database (the SQLite file or PostgreSQL), each
thread with its own connection, through the views where a person would click.

Several tests hold a write open in the test's own thread for a moment (``write_in_progress``),
as a colleague's request or a batch would, so that the threads run into it every time rather
than by chance."""

import re
import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conventions.models import Convention, Status
from costing import statements
from costing.models import (
    BatchJob,
    CostBase,
    Statement,
    StatementStatus,
    UnitCost,
    UsageRecord,
    UsageSource,
)
from tests.costing.conftest import cost_base

transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class Together:
    """Calls run in threads released at the same instant; ``join`` gives (results, errors) in
    call order (an exception is a thread's entry in ``errors``)."""

    def __init__(self, *calls):
        barrier = threading.Barrier(len(calls))
        self.results, self.errors = [None] * len(calls), [None] * len(calls)

        def run(index, call):
            try:
                barrier.wait()
                self.results[index] = call()
            except Exception as error:  # reported to the test
                self.errors[index] = error
            finally:
                connection.close()

        self.threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
        for thread in self.threads:
            thread.start()

    def join(self, timeout=60):
        for thread in self.threads:
            thread.join(timeout=timeout)
        assert not any(thread.is_alive() for thread in self.threads), "un fil est resté bloqué"
        return self.results, self.errors


def at_once(*calls):
    return Together(*calls).join()


@contextmanager
def write_in_progress(*rows, seconds=1.0):
    """Another request writing, for ``seconds`` after the block: it holds the 2026 statements'
    lock (as issuing or a batch does) and ``rows`` locked for update; on SQLite, the database's
    write lock. Threads started in the block run into it."""
    with transaction.atomic():
        statements.lock_year(2026)
        for row in rows:
            type(row).objects.select_for_update().get(pk=row.pk)
        yield
        time.sleep(seconds)


def issuable_drafts(year=2026):
    """The year's drafts, the communes' review window over (time travel reaches the threads,
    but the drafts were prepared 'today')."""
    prepared = statements.statements_prepare(year)
    Statement.objects.filter(pk__in=[s.pk for s in prepared]).update(review_until="2027-01-01")
    return [Statement.objects.get(pk=s.pk) for s in prepared]


def signed_in(user):
    client = Client()
    client.force_login(user)
    return client


def messages_of(response) -> list[str]:
    """The flash messages on the page, read from the HTML (the test client's captured context
    mixes the templates that every thread renders)."""
    html = response.content.decode()
    found = re.findall(r'<div class="alert [^"]*" role="[a-z]+">(.*?)</div>', html, re.S)
    return [re.sub(r"\s+", " ", unescape(m)).strip() for m in found]


def text_of(response) -> str:
    return re.sub(r"\s+", " ", unescape(response.content.decode()))


# --- issuing -------------------------------------------------------------------------------------


@transactional
def test_two_people_issuing_the_same_statement_at_once(billed, personas, flushable_statements):
    """One issues it; the other is told, in French, that it is already issued."""
    draft, _other = issuable_drafts()
    url = reverse("costing:statement-issue", args=[draft.pk])
    clients = [signed_in(personas.finance), signed_in(personas.admin)]
    responses, errors = at_once(*(lambda c=c: c.post(url, follow=True) for c in clients))
    assert errors == [None, None]
    said = sorted(m for r in responses for m in messages_of(r))
    assert said == [
        "Cet état est déjà émis (EA-2026-0001).",
        "État émis sous le numéro EA-2026-0001.",
    ]
    assert Statement.objects.get(pk=draft.pk).number == "EA-2026-0001"


@transactional
def test_an_issue_that_waits_too_long_answers_a_french_page_not_an_error(
    billed, personas, flushable_statements, monkeypatch
):
    """Before: OperationalError (« database is locked » on SQLite, lock_not_available on
    PostgreSQL), a 500. The wait is shortened here to 0.3 s (DJANGO_DB_LOCK_TIMEOUT: 20 s)."""
    options = connection.settings_dict["OPTIONS"]  # read by the threads' new connections
    if connection.vendor == "sqlite":
        monkeypatch.setitem(options, "timeout", 0.3)
    else:
        monkeypatch.setitem(options, "options", "-c lock_timeout=300ms")
    draft, _other = issuable_drafts()
    client = signed_in(personas.finance)
    with write_in_progress(seconds=1.5):
        issuing = Together(lambda: client.post(reverse("costing:statement-issue", args=[draft.pk])))
    [response], errors = issuing.join()
    assert errors == [None]
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    body = unescape(response.content.decode())
    assert "Une autre opération est en cours" in body
    assert "Réessayez dans quelques instants." in body
    assert Statement.objects.get(pk=draft.pk).status == StatementStatus.DRAFT
    # Once the other write is over, the same click issues it.
    client.post(reverse("costing:statement-issue", args=[draft.pk]))
    assert Statement.objects.get(pk=draft.pk).number == "EA-2026-0001"


# --- batches ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_second_batch_of_the_year_is_refused_while_one_is_pending(personas):
    personas.finance.first_name, personas.finance.last_name = "Camille", "Martin"
    personas.finance.save()
    first = statements.batch_start(year=2026, action=BatchJob.Action.EXPORT, user=personas.finance)
    with pytest.raises(statements.BatchRefused) as refused:
        statements.batch_start(
            year=2026, action=BatchJob.Action.ISSUE_AND_EXPORT, user=personas.admin
        )
    started = timezone.localtime(first.created_at).strftime("%H:%M")
    assert refused.value.reasons == [
        f"Un traitement de l'exercice 2026 est déjà en cours, lancé par Camille Martin à {started} : "
        "attendez qu'il se termine avant d'en lancer un autre."
    ]
    assert refused.value.job == first
    # Another year is free; so is this one once the batch is over, or if its worker died.
    statements.batch_start(year=2025, action=BatchJob.Action.EXPORT, user=personas.admin)
    BatchJob.objects.filter(pk=first.pk).update(created_at=timezone.now() - timedelta(minutes=31))
    stale = statements.batch_start(year=2026, action=BatchJob.Action.EXPORT, user=personas.admin)
    BatchJob.objects.filter(pk=stale.pk).update(status=BatchJob.JobStatus.DONE)
    statements.batch_start(year=2026, action=BatchJob.Action.EXPORT, user=personas.admin)


@transactional
def test_a_batch_submitted_twice_at_once_runs_once(
    billed, personas, flushable_statements, monkeypatch
):
    """Before: two jobs (a double click, or two colleagues). Now the second request is sent to
    the running job's page with the French message. The job waits in Celery's in-memory queue
    (not run within the first request), so that the second request always finds it pending,
    however slowly the machine schedules the threads; the worker's run follows."""
    from mutualisation.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", False)
    issuable_drafts()
    url = reverse("costing:batch-start", args=[2026])
    clients = [signed_in(personas.finance), signed_in(personas.finance)]
    with write_in_progress(seconds=0.5):
        posting = Together(
            *(lambda c=c: c.post(url, {"action": "ISSUE"}, follow=True) for c in clients)
        )
    responses, errors = posting.join()
    assert errors == [None, None]
    job = BatchJob.objects.get()
    assert job.status == BatchJob.JobStatus.PENDING
    job = statements.batch_run(job.pk)  # what the worker does with the queued task
    assert job.status == BatchJob.JobStatus.DONE, job.error
    assert all(
        r.redirect_chain[-1][0] == reverse("costing:batch", args=[job.pk]) for r in responses
    )
    said = [m for r in responses for m in messages_of(r)]
    assert [m for m in said if "déjà en cours" in m] == [
        "Un traitement de l'exercice 2026 est déjà en cours, lancé par finances à "
        f"{timezone.localtime(job.created_at):%H:%M} : attendez qu'il se termine avant d'en "
        "lancer un autre."
    ]
    issued = Statement.objects.filter(year=2026, status=StatementStatus.ISSUED)
    assert sorted(issued.values_list("number", flat=True)) == ["EA-2026-0001", "EA-2026-0002"]


@transactional
def test_two_batches_running_at_once_issue_each_statement_once(
    billed, personas, flushable_statements
):
    """Two batches of a year running together (a task delivered twice, a batch started after the
    other was thought dead): each statement is issued once, numbers follow, and neither batch
    reports as « non émis » what the other issued."""
    issuable_drafts()
    jobs = [
        BatchJob.objects.create(
            year=2026, action=BatchJob.Action.ISSUE_AND_EXPORT, created_by=personas.finance
        )
        for _ in range(2)
    ]
    with write_in_progress(seconds=0.5):
        running = Together(*(lambda j=j: statements.batch_run(j.pk) for j in jobs))
    _results, errors = running.join()
    assert errors == [None, None]
    for job in BatchJob.objects.all():
        assert (job.status, job.error) == (BatchJob.JobStatus.DONE, "")
    issued = Statement.objects.filter(year=2026, status=StatementStatus.ISSUED)
    assert sorted(issued.values_list("number", flat=True)) == ["EA-2026-0001", "EA-2026-0002"]


# --- usage grid ---------------------------------------------------------------------------------


@pytest.fixture
def grid(mad_descendante, territory, personas):
    Convention.objects.filter(pk=mad_descendante.convention.pk).update(status=Status.IN_FORCE)
    url = reverse(
        "costing:usage-grid",
        args=[mad_descendante.convention.reference, mad_descendante.service.code, 2026],
    )
    client = signed_in(personas.manager)
    page = client.get(url)
    cell = page.context["form"].key(territory.commune_a.pk, 3)  # commune A, March
    return url, cell, page.context["loaded"], mad_descendante.convention


@transactional
def test_a_grid_saved_while_another_write_is_in_progress_waits_for_it(personas, grid):
    """Before, on SQLite: the save read the grid, then could not write (another writer held
    the database) and failed at once with « database is locked », whatever the timeout."""
    url, cell, loaded, _convention = grid
    client = signed_in(personas.manager)
    with write_in_progress(seconds=0.5):
        saving = Together(lambda: client.post(url, {cell: "7", "loaded": loaded}))
    [response], errors = saving.join()
    assert errors == [None]
    assert response.status_code == 302
    assert UsageRecord.objects.get(source=UsageSource.GRID).quantity == Decimal("7")


@transactional
def test_two_people_filling_the_same_empty_cell_at_once(personas, grid):
    """Before: two records of the cell on PostgreSQL (the usage counted twice), « database is
    locked » on SQLite. Now the second is told the cell was filled meanwhile (409)."""
    url, cell, loaded, convention = grid
    clients = [signed_in(personas.manager), signed_in(personas.admin)]
    with write_in_progress(convention):
        saving = Together(
            *(
                lambda c=c, q=q: c.post(url, {cell: q, "loaded": loaded})
                for c, q in zip(clients, ("7", "9"), strict=True)
            )
        )
    responses, errors = saving.join()
    assert errors == [None, None]
    assert sorted(r.status_code for r in responses) == [302, 409]
    [refused] = [r for r in responses if r.status_code == 409]
    assert "Ces cases ont été modifiées par quelqu'un d'autre" in text_of(refused)
    [record] = UsageRecord.objects.filter(source=UsageSource.GRID)
    assert record.quantity in (Decimal("7"), Decimal("9"))


# --- cost bases and unit costs --------------------------------------------------------------------


@transactional
def test_one_unit_cost_computed_twice_at_once_makes_one_version(personas, mad_descendante):
    """A double click on « Calculer ». Before: both wrote version 1 and the second failed on
    the unique key (IntegrityError, a 500); on SQLite, « database is locked »."""
    base = cost_base(mad_descendante.service)
    url = reverse("costing:unit-cost-compute", args=[base.pk])
    clients = [signed_in(personas.finance), signed_in(personas.finance)]
    with write_in_progress(mad_descendante.service):
        computing = Together(*(lambda c=c: c.post(url) for c in clients))
    responses, errors = computing.join()
    assert errors == [None, None]
    assert [r.status_code for r in responses] == [302, 302]
    assert list(UnitCost.objects.values_list("version", "amount")) == [(1, Decimal("36500.00"))]


@transactional
def test_the_same_cost_base_created_twice_at_once_is_refused_in_french(personas, mad_descendante):
    """Both forms were valid when checked; the second insert broke the unique key (a 500)."""
    service = mad_descendante.service
    data = {
        "service": service.pk,
        "year": "2027",
        "source": "CA",
        "source_year": "2025",
        "reference_units": "1",
        "reference_basis": "FORECAST",
        "notes": "",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "1000",
        "lines-0-label": "Agents",
        "lines-0-category": "PERSONNEL",
        "lines-0-account": "6411",
        "lines-0-accounts_amount": "1000",
        "lines-0-budget_adjustment": "0",
        "lines-0-eligible": "on",
    }
    url = reverse("costing:cost-base-create")
    clients = [signed_in(personas.finance), signed_in(personas.admin)]
    with write_in_progress(service):
        creating = Together(*(lambda c=c: c.post(url, data) for c in clients))
    responses, errors = creating.join()
    assert errors == [None, None]
    assert sorted(r.status_code for r in responses) == [302, 409]
    [refused] = [r for r in responses if r.status_code == 409]
    assert "Une base de coûts existe déjà pour ce service et cette année." in text_of(refused)
    assert CostBase.objects.filter(service=service, year=2027).count() == 1


# --- usage imports -----------------------------------------------------------------------------


def usage_file(billed, quantity="3"):
    a, b = billed.territory.commune_a, billed.territory.commune_b
    rows = [
        f"{billed.convention.reference};{commune.siren};{billed.service.code};2026-{month:02d};"
        f"{quantity};IMP-{commune.pk}-{month}"
        for commune in (a, b)
        for month in range(5, 11)
    ]
    return ("convention;beneficiaire;service;mois;quantite;reference\n" + "\n".join(rows)).encode()


@transactional
def test_two_replacing_imports_of_the_same_months_at_once_leave_one_set_of_records(
    billed, flushable_statements
):
    """Before: each import chose the records to replace before the other wrote, so both sets
    stayed and the months were billed twice (PostgreSQL). Now they run one after the other under
    the year's lock, the second replacing what the first wrote."""
    from costing.resources import import_usage_file

    content = usage_file(billed)
    with write_in_progress(seconds=0.5):
        importing = Together(
            *(
                lambda: import_usage_file(content, "r.csv", commit=True, replace=True)
                for _ in range(2)
            )
        )
    reports, errors = importing.join()
    assert errors == [None, None]
    assert all(report.imported for report in reports)
    imported = UsageRecord.objects.filter(reference__startswith="IMP-")
    assert imported.count() == 12


@transactional
def test_an_import_checked_while_the_year_is_issued_is_refused_whole(
    billed, personas, flushable_statements
):
    """The check reads without locking; the writing, under the year's lock, sees the statement
    issued meanwhile and refuses the file in French (nothing written in an issued year)."""
    from costing.resources import import_usage_file

    draft = next(s for s in issuable_drafts() if s.payer == billed.territory.commune_a)
    content = usage_file(billed)
    with write_in_progress(seconds=0.5):
        importing = Together(lambda: import_usage_file(content, "r.csv", commit=True))
        time.sleep(0.3)  # the import has read and checked the file; it now waits to write
        statements.statement_issue(draft, user=personas.finance)
    [report], errors = importing.join()
    assert errors == [None]
    assert not report.imported
    assert report.errors[0].message == (
        "L'état n° EA-2026-0001, émis pendant la vérification du fichier, couvre les recours "
        "2026 de Commune A : rien n'a été importé."
    )
    assert not UsageRecord.objects.filter(reference__startswith="IMP-").exists()


# --- territories ---------------------------------------------------------------------------------


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite locks the whole database on every write"
)
@transactional
def test_a_territory_prepares_its_statements_while_another_territory_holds_its_year(billed):
    """Many EPCIs on one database: one territory's issue, batch or import holds the year of its
    own statements only; another territory's finance officer prepares hers meanwhile."""
    from tests.factories import ConventionFactory, EpciFactory

    other = EpciFactory()  # numbers with a prefix of its own: the first EPCI has the defaults
    ConventionFactory(territory=other)  # not billed: preparing only takes the lock
    done, failed = threading.Event(), []

    def prepare_other():
        try:
            statements.statements_prepare(2026, Convention.objects.filter(territory=other))
            done.set()
        except Exception as error:  # reported to the test
            failed.append(error)
        finally:
            connection.close()

    with transaction.atomic():
        statements.lock_year(2026, [billed.convention.territory_id])
        thread = threading.Thread(target=prepare_other)
        thread.start()
        finished_meanwhile = done.wait(timeout=15)
    thread.join(timeout=30)
    assert not failed
    assert finished_meanwhile, "l'autre territoire a attendu la fin de la transaction"
