"""`make bench`: Mutualis at national scale, each figure beside its floor, written to a report.

Runs against the database of DATABASE_URL, filled by ``generate_territory`` (bench/run.py does
the whole sequence). Measures, never asserts:

a. the year's computation (``services.compute_reimbursements``) for one territory and for all,
   against the bare aggregate ``SUM(units) GROUP BY beneficiary, service`` over the same rows,
   the units and the amounts checked equal;
b. the PDF of a statement and of a convention against a blank one-page PDF with the same fonts,
   and a batch of statements (``statements.batch_start``) run by 1 then 2 real Celery worker
   processes on the local Redis, against a smaller database (``--batch-database``);
c. p50/p95 of five pages through gunicorn (DEBUG off), and their SQL query count in-process;
d. peak memory of the year computation, of a batch and of the year's summary (the high-water
   mark of a subprocess's own memory, VmHWM).

Each timed part that needs a clean process runs as ``benchmark_scale --probe …`` in a
subprocess, which prints one JSON line.
"""

import io
import json
import os
import platform
import resource
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import django
from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from conventions.models import Convention
from costing.models import BatchJob, Statement, UsageRecord
from mutualisation.models import Membership, Organisation, OrganisationKind, Role

ROOT = Path(settings.BASE_DIR)
MANAGE = [sys.executable, str(ROOT / "manage.py")]
CELERY = str(Path(sys.executable).with_name("celery"))
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
CENT = Decimal("0.01")


# --- helpers ----------------------------------------------------------------------------------


def timed(function, repeat: int = 1) -> tuple[list[float], object]:
    """Durations in seconds of ``repeat`` calls, and the last result."""
    durations, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        durations.append(time.perf_counter() - started)
    return durations, result


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms".replace(",", " ")


def s(seconds: float) -> str:
    return f"{seconds:,.2f} s".replace(",", " ")


def mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} Mio".replace(",", " ")


def peak_memory_kib() -> int:
    """This process's peak resident memory (KiB): the high-water mark of its own memory
    (``VmHWM``), reset when the process starts a program. Not ``ru_maxrss``, which Linux
    carries over a fork and an exec: a probe started by a benchmark grown to 900 MiB would
    report 900 MiB whatever it used itself."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # no /proc: the best there is


def number(value: int) -> str:
    return f"{value:,}".replace(",", " ")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(name: str | None = None) -> str:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise CommandError("Le banc de mesure tourne sur PostgreSQL (DATABASE_URL).")
    user = db.get("USER") or "postgres"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{name or db['NAME']}"


def child_env(**extra) -> dict:
    env = {**os.environ, "DJANGO_SECRET_KEY": settings.SECRET_KEY, "DJANGO_DEBUG": "false"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def probe(name: str, *args: str, env=None) -> dict:
    """Run ``benchmark_scale --probe name`` in a fresh process; its JSON line."""
    completed = subprocess.run(
        [*MANAGE, "benchmark_scale", "--probe", name, *args],
        env=env or child_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise CommandError(f"Sonde {name} en échec :\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def first_territory() -> Organisation:
    """The territory with the most conventions (the heaviest of one territory's pages)."""
    return (
        Organisation.objects.filter(kind=OrganisationKind.EPCI)
        .annotate(conventions=Count("territory_conventions"))
        .order_by("-conventions", "pk")
        .first()
    )


# Rows of the plain table that fill one A4 page of templates/pdf/benchmark_full.html.
FULL_PAGE_ROWS = 30


def finance_user(territory: Organisation):
    membership = (
        Membership.objects.filter(organisation=territory, role=Role.FINANCE)
        .select_related("user")
        .first()
    )
    if membership is None:
        raise CommandError(f"Aucun agent des finances pour {territory} : generate_territory ?")
    return membership.user


# --- probes (run in a subprocess) -------------------------------------------------------------


def probe_year(year: int, territory_id: int | None) -> dict:
    from costing import services

    conventions = (
        Convention.objects.filter(territory_id=territory_id) if territory_id is not None else None
    )
    durations, computed = timed(lambda: services.compute_reimbursements(year, conventions))
    lines = computed.result.lines
    units, amount = unit_cost_sums(lines)
    return {
        "units": [[payer, service, str(value)] for (payer, service), value in units.items()],
        "amount": str(amount),
        "seconds": durations[0],
        "maxrss_kib": peak_memory_kib(),
        "conventions": len(computed.conventions),
        "lines": len(lines),
        "total": str(computed.result.total),
        "not_computed": sum(1 for f in computed.findings if f.code == "NOT_COMPUTED"),
    }


def unit_cost_sums(lines) -> tuple[dict, Decimal]:
    """Units per (payer id, service code) and the amount of the engine's unit-cost lines."""
    from costing import engine

    units: dict = defaultdict(Decimal)
    amount = Decimal(0)
    for line in lines:
        if line.basis == engine.BASIS_UNIT_COST:
            units[(line.payer.id, line.service)] += line.units
            amount += line.amount
    return dict(units), amount


def probe_batch(year: int, timeout: float) -> dict:
    """Start a batch (export of the year's statements) through the public function, wait for the
    Celery workers to finish it."""
    from costing import statements

    territory = first_territory()
    user = finance_user(territory)
    job = statements.batch_start(year=year, action=BatchJob.Action.EXPORT, user=user)
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        job.refresh_from_db()
        if job.status in (BatchJob.JobStatus.DONE, BatchJob.JobStatus.FAILED):
            break
        time.sleep(0.5)
    elapsed = (
        (job.finished_at - job.created_at).total_seconds()
        if job.finished_at
        else time.perf_counter() - started
    )
    return {
        "status": job.status,
        "error": job.error[:500],
        "seconds": elapsed,
        "statements": Statement.objects.filter(year=year).count(),
        "archive_kib": len(job.archive or b"") // 1024,
    }


def probe_prepare(year: int) -> dict:
    """The year's drafts prepared once before the timed batches: each batch then refreshes
    drafts that exist, with the database's buffers as warm for one as for the other (the first
    batch created them and ran on a cold database, the second only refreshed them)."""
    from costing import statements

    durations, drafts = timed(lambda: statements.statements_prepare(year))
    return {"seconds": durations[0], "drafts": len(drafts)}


def probe_batch_inline(year: int) -> dict:
    """The same batch run in this process (no broker): its peak memory."""
    from costing import statements

    user = finance_user(first_territory())
    job = BatchJob.objects.create(year=year, action=BatchJob.Action.EXPORT, created_by=user)
    durations, job = timed(lambda: statements.batch_run(job.pk))
    return {
        "seconds": durations[0],
        "status": job.status,
        "maxrss_kib": peak_memory_kib(),
    }


def probe_summary(year: int, territory_ids: list[int]) -> dict:
    """The year's summary PDF of the current statements of these territories, rendered in this
    fresh process as a batch's last step assembles it (in parts, joined, pages numbered): its
    time, pages and peak memory, beside the Celery worker's memory limit."""
    from costing import statements

    listed = list(
        statements.current_statements(
            year, Convention.objects.filter(territory_id__in=territory_ids)
        )
    )
    before = peak_memory_kib()
    durations, content = timed(lambda: statements.render_summary_pdf(year, listed))
    return {
        "statements": len(listed),
        "seconds": durations[0],
        "pages": len(PdfReader(io.BytesIO(content)).pages),
        "kib": len(content) // 1024,
        "loaded_kib": before,
        "maxrss_kib": peak_memory_kib(),
    }


def busy_loop(count: int) -> int:
    total = 0
    for i in range(count):
        total += i * i % 7
    return total


def parallel_ceiling(count: int = 20_000_000) -> float:
    """How much faster two processes do twice the work of one on this machine (pure Python,
    no database, no I/O): the ceiling of a batch's gain with two workers. A shared virtual
    machine's two processors do not give 2."""
    import multiprocessing

    durations = {}
    for processes in (1, 2):
        started = time.perf_counter()
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            pool.map(busy_loop, [count] * processes)
        durations[processes] = time.perf_counter() - started
    return 2 * durations[1] / durations[2]


# --- the measures -----------------------------------------------------------------------------


class Command(BaseCommand):
    help = "Mesure Mutualis à l'échelle nationale et écrit docs/performance.md (banc, pas test)."

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, default=2025)
        parser.add_argument("--output", default=str(ROOT / "docs" / "performance.md"))
        parser.add_argument("--requests", type=int, default=20, help="Requêtes par page.")
        parser.add_argument("--renders", type=int, default=5, help="Rendus par PDF mesuré.")
        parser.add_argument(
            "--batch-database",
            default="",
            help="Base (nom) plus petite, générée elle aussi, pour les lots d'états.",
        )
        parser.add_argument("--batch-scale", default="", help="Échelle de la base des lots.")
        parser.add_argument("--scale", default="", help="Échelle générée (pour le rapport).")
        parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
        parser.add_argument("--commands", default="", help="Commandes lancées (pour le rapport).")
        parser.add_argument("--sections", default="a,b,batch,c", help="Parties mesurées.")
        parser.add_argument("--probe", default="", help=argparse_hidden())
        parser.add_argument("--territory", type=int, default=None, help=argparse_hidden())
        parser.add_argument("--timeout", type=float, default=3600, help=argparse_hidden())
        parser.add_argument("--territories", default="", help=argparse_hidden())
        parser.add_argument(
            "--summary-territories",
            type=int,
            default=4,
            help="Territoires (les plus chargés) du plus grand récapitulatif mesuré.",
        )

    def handle(self, *args, **options):
        year = options["year"]
        if options["probe"]:
            result = {
                "year": lambda: probe_year(year, options["territory"]),
                "batch": lambda: probe_batch(year, options["timeout"]),
                "batch-inline": lambda: probe_batch_inline(year),
                "prepare": lambda: probe_prepare(year),
                "summary": lambda: probe_summary(
                    year, [int(pk) for pk in options["territories"].split(",")]
                ),
            }[options["probe"]]()
            self.stdout.write(json.dumps(result))
            return
        self.options = options
        self.sections = []
        sections = set(options["sections"].split(","))
        self.memory = []
        self.territory = first_territory()
        self.say("Machine et versions")
        self.machine()
        if "a" in sections:
            self.say("a. Calcul de l'année")
            self.year_computation(year)
        if "b" in sections:
            self.say("b. PDF")
            self.pdfs(year)
            self.say("b. Récapitulatif de l'année")
            self.summaries(year)
        if options["batch_database"] and "batch" in sections:
            self.say("b. Lots d'états (Celery)")
            self.batches(year)
        if "c" in sections:
            self.say("c. Pages")
            self.pages(year)
        Path(options["output"]).write_text(self.report(), encoding="utf-8")
        self.say(f"Rapport écrit : {options['output']}")

    def say(self, message: str) -> None:
        self.stdout.write(f"== {message}", ending="\n")
        self.stdout.flush()

    def add(self, title: str, lines: list[str]) -> None:
        self.sections.append((title, lines))
        self.stdout.write("\n".join(lines))

    # -- machine -------------------------------------------------------------------------------

    def machine(self) -> None:
        import weasyprint

        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
        meminfo = Path("/proc/meminfo")
        ram = "?"
        if meminfo.exists():
            total_kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
            ram = f"{total_kib / 1024 / 1024:.1f} Gio"
        uname = platform.uname()
        counts = {
            "EPCI": Organisation.objects.filter(kind=OrganisationKind.EPCI).count(),
            "communes": Organisation.objects.filter(kind=OrganisationKind.COMMUNE).count(),
            "conventions": Convention.objects.count(),
            "recours": UsageRecord.objects.count(),
        }
        self.counts = counts
        self.add(
            "Machine, versions, données",
            [
                f"- Processeurs : {os.cpu_count()} ; mémoire vive : {ram}",
                f"- Système : `{uname.system} {uname.release} {uname.machine}`",
                f"- Python {platform.python_version()}, Django {django.get_version()}, "
                f"PostgreSQL {pg_version}, WeasyPrint {weasyprint.__version__}",
                "- Charge moyenne au début des mesures (1, 5, 15 min) : "
                + ", ".join(f"{load:.1f}" for load in os.getloadavg())
                + " (une machine partagée mesure plus lentement)",
                f"- Données (échelle {self.options['scale'] or '?'}) : "
                + ", ".join(f"{v:,} {k}".replace(",", " ") for k, v in counts.items()),
            ],
        )

    # -- a. year computation ------------------------------------------------------------------

    def aggregate(self, year: int, territory_id: int | None) -> tuple[float, dict, Decimal]:
        """The floor: the usage of the year summed by beneficiary and service in SQL (unit-cost
        lines only, as the engine bills them); and the amounts as the engine should find them:
        unit cost × units per convention, payer, service and reimbursement period, rounded."""
        where = "AND c.territory_id = %s" if territory_id is not None else ""
        params = [year, *([territory_id] if territory_id is not None else [])]
        units_sql = f"""
            SELECT u.beneficiary_id, s.code, SUM(u.units)
            FROM costing_usagerecord u
            JOIN conventions_convention c ON c.id = u.convention_id
            JOIN conventions_conventionservice l
              ON l.convention_id = u.convention_id AND l.service_id = u.service_id
            JOIN mutualisation_service s ON s.id = u.service_id
            WHERE EXTRACT(YEAR FROM u.period_start) = %s AND l.allocation_key = '' {where}
            GROUP BY u.beneficiary_id, s.code
        """
        amounts_sql = f"""
            SELECT COALESCE(SUM(amount), 0) FROM (
              SELECT ROUND(SUM(u.units) * MAX(uc.amount), 2) AS amount
              FROM costing_usagerecord u
              JOIN conventions_convention c ON c.id = u.convention_id
              JOIN conventions_conventionservice l
                ON l.convention_id = u.convention_id AND l.service_id = u.service_id
              JOIN conventions_terms t ON t.convention_id = c.id AND t.amendment_id IS NULL
              JOIN costing_unitcost uc
                ON uc.service_id = u.service_id AND uc.year = EXTRACT(YEAR FROM u.period_start)
              WHERE EXTRACT(YEAR FROM u.period_start) = %s AND l.allocation_key = '' {where}
              GROUP BY u.convention_id, u.beneficiary_id, u.service_id,
                       (EXTRACT(MONTH FROM u.period_start)::int - 1) / t.periodicity_months
            ) per_period
        """
        with connection.cursor() as cursor:
            timings = []
            for _ in range(5):  # the median of 5: one timing of a short query is noise
                started = time.perf_counter()
                cursor.execute(units_sql, params)
                rows = cursor.fetchall()
                timings.append(time.perf_counter() - started)
            elapsed = statistics.median(timings)
            cursor.execute(amounts_sql, params)
            amount = cursor.fetchone()[0]
        return elapsed, {(b, code): units for b, code, units in rows}, Decimal(amount)

    def year_computation(self, year: int) -> None:
        territory = self.territory
        lines = [
            "| Périmètre | Conventions | Lignes | Calcul (processus neuf) | Mémoire max. | "
            "Agrégat SQL (plancher) | Rapport | Unités égales | Montants égaux au centime |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for label, territory_id in (
            (f"un territoire ({territory.name})", territory.pk),
            ("tous", None),
        ):
            args = ["--year", str(year)] + (
                ["--territory", str(territory_id)] if territory_id else []
            )
            measured = probe("year", *args)
            floor, sql_units, sql_amount = self.aggregate(year, territory_id)
            engine_units = {(p, code): Decimal(v) for p, code, v in measured["units"]}
            engine_amount = Decimal(measured["amount"])
            units_equal = sql_units == engine_units
            units_note = (
                "oui"
                if units_equal
                else f"NON ({len(set(sql_units.items()) ^ set(engine_units.items()))} écarts)"
            )
            amount_note = (
                f"oui ({engine_amount:,} €)".replace(",", " ")
                if engine_amount == sql_amount
                else f"NON (moteur {engine_amount} €, SQL {sql_amount} €)"
            )
            lines.append(
                f"| {label} | {measured['conventions']} | {measured['lines']} | "
                f"{s(measured['seconds'])} | {mib(measured['maxrss_kib'])} | {ms(floor)} | "
                f"× {measured['seconds'] / floor:,.0f} | {units_note} | {amount_note} |"
            )
            self.memory.append((f"Calcul de l'année, {label}", measured["maxrss_kib"]))
            if measured["not_computed"]:
                lines.append(f"\n{measured['not_computed']} conventions non calculées (constats).")
        lines.append(
            "\nCalcul : `services.compute_reimbursements(année[, conventions du territoire])` "
            "dans un processus neuf (chargement, moteur, contrôles de conformité). Plancher : "
            "`SUM(units) GROUP BY beneficiary, service` (médiane de 5) sur les mêmes recours (lignes au coût "
            "unitaire). Montants : Σ arrondi(coût unitaire × unités) par convention, débiteur, "
            "service et période de remboursement, comparé aux lignes du moteur."
        )
        self.add("a. Calcul des remboursements de l'année", lines)

    # -- b. PDFs -------------------------------------------------------------------------------

    def pdfs(self, year: int) -> None:
        from conventions.services import documents
        from costing import statements
        from mutualisation.documents import render_pdf

        territory = self.territory
        conventions = Convention.objects.filter(territory=territory)
        prepare_time, drafts = timed(lambda: statements.statements_prepare(year, conventions))
        drafts = list(drafts)
        if not drafts:
            raise CommandError("Aucun état préparé : les données générées sont-elles là ?")
        statement = max(drafts, key=lambda d: d.lines.count())
        convention = conventions.order_by("reference").first()
        renders = self.options["renders"]
        render_pdf("pdf/benchmark.html", {})  # warm-up: fonts loaded once per process
        # the floor is short and noisy: four times as many renders
        blank, _ = timed(lambda: render_pdf("pdf/benchmark.html", {}), 4 * renders)
        statement_times, pdf = timed(lambda: statements.render_statement_pdf(statement), renders)
        convention_times, convention_pdf = timed(
            lambda: documents.render_convention(convention), renders
        )
        floor = statistics.median(blank)
        # A second floor: one page filled with a plain table (no statement logic), what
        # WeasyPrint's own layout of a page of content costs with the same fonts.
        full_rows = [
            (f"{m % 12 + 1:02d}/{year} — Commune n° {m}", f"REF-{year}-{m:04d}", "1 234,500",
             "1,000", "1 234,500")
            for m in range(FULL_PAGE_ROWS)
        ]  # fmt: skip
        full, full_pdf = timed(
            lambda: render_pdf("pdf/benchmark_full.html", {"rows": full_rows}), 2 * renders
        )
        full_pages = len(PdfReader(io.BytesIO(full_pdf)).pages)
        full_floor = statistics.median(full) / full_pages
        rows = []
        for label, times, content in (
            (f"État annuel ({statement.lines.count()} lignes)", statement_times, pdf),
            (f"Convention {convention.reference}", convention_times, convention_pdf),
        ):
            median, pages = statistics.median(times), len(PdfReader(io.BytesIO(content)).pages)
            rows.append(
                f"| {label} | {pages} | {ms(median)} | {ms(median / pages)} | {ms(floor)} | "
                f"× {median / pages / floor:.1f} | {ms(full_floor)} | "
                f"× {median / pages / full_floor:.1f} | {len(content) // 1024} Kio |"
            )
        self.add(
            "b. Rendu PDF",
            [
                "| Document | Pages | Médiane | Par page | Plancher (page blanche, mêmes polices) "
                "| Rapport par page | Page pleine (tableau simple) | Rapport à la page pleine "
                "| Taille |",
                "|---|---|---|---|---|---|---|---|---|",
                *rows,
                "",
                f"Page pleine : `templates/pdf/benchmark_full.html`, un tableau simple de "
                f"{FULL_PAGE_ROWS} lignes ({full_pages} page{'s' if full_pages > 1 else ''}), "
                f"sans rien de propre à Mutualis : {ms(full_floor)} par page, soit "
                f"× {full_floor / floor:.1f} la page blanche. C'est ce que coûte à WeasyPrint la "
                "mise en page d'une page de contenu : un document dont les pages sont remplies "
                "ne peut pas descendre sous ce rapport.",
                "",
                f"{renders} rendus de chacun ({4 * renders} de la page blanche) après un rendu d'échauffement (polices chargées une "
                f"fois par processus). Préparation des {len(drafts)} projets d'états du territoire "
                f"(`statements.statements_prepare`) : {s(prepare_time[0])}.",
            ],
        )

    def summaries(self, year: int) -> None:
        """The year's summary PDF, the longest document a worker renders, at two sizes: the
        busiest territory's statements (prepared by ``pdfs``), then those of the
        ``--summary-territories`` busiest together: its peak memory must not grow with them."""
        from costing import statements

        busiest = list(
            Organisation.objects.filter(kind=OrganisationKind.EPCI)
            .annotate(conventions=Count("territory_conventions"))
            .order_by("-conventions", "pk")
            .values_list("pk", flat=True)[: self.options["summary_territories"]]
        )
        prepare_time = 0.0
        for pk in busiest:
            conventions = Convention.objects.filter(territory_id=pk)
            if not Statement.objects.filter(year=year, convention__in=conventions).exists():
                started = time.perf_counter()
                statements.statements_prepare(year, conventions)
                prepare_time += time.perf_counter() - started
        limit = settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD
        lines = [
            "| Territoires | États | Pages | Durée | Mémoire au départ | Mémoire max. "
            "| Limite d'un travailleur | Taille |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, ids in (
            (f"1 ({self.territory.name})", [self.territory.pk]),
            (f"{len(busiest)} (les plus chargés)", busiest),
        ):
            measured = probe(
                "summary", "--year", str(year), "--territories", ",".join(map(str, ids))
            )
            lines.append(
                f"| {label} | {number(measured['statements'])} | {number(measured['pages'])} | "
                f"{s(measured['seconds'])} | {mib(measured['loaded_kib'])} | "
                f"{mib(measured['maxrss_kib'])} | {mib(limit)} | {number(measured['kib'])} Kio |"
            )
            self.memory.append(
                (f"Récapitulatif de l'année, {number(measured['statements'])} états",
                 measured["maxrss_kib"])
            )  # fmt: skip
        lines += [
            "",
            "`statements.render_summary_pdf` dans un processus neuf, comme l'assemble la dernière "
            "étape d'un lot : par parties de `MUTUALIS_SUMMARY_PART_ROWS` "
            f"({statements.summary_part_rows()}) états, jointes, pages numérotées. Mémoire au "
            "départ : le processus une fois les états lus, avant le rendu. Limite : "
            "`CELERY_WORKER_MAX_MEMORY_PER_CHILD` (au-delà, le travailleur est remplacé après "
            "sa tâche). Projets d'états préparés pour la mesure : "
            f"{s(prepare_time)}.",
        ]
        self.add("b. Récapitulatif de l'année", lines)

    # -- b. batches ----------------------------------------------------------------------------

    def batches(self, year: int) -> None:
        name = self.options["batch_database"]
        url = database_url(name)
        env = child_env(DATABASE_URL=url, CELERY_BROKER_URL=self.options["redis"])
        lines = [
            "| Processus Celery | États | Durée du lot | Débit | Statut |",
            "|---|---|---|---|---|",
        ]
        seconds = {}
        prepared = probe("prepare", "--year", str(year), env=env)
        for concurrency in (1, 2):
            worker = subprocess.Popen(
                [
                    CELERY, "-A", "mutualisation", "worker", "--concurrency", str(concurrency),
                    "--pool", "prefork", "--loglevel", "WARNING", "--without-gossip",
                    "--without-mingle", "--hostname", f"bench{concurrency}-{secrets.token_hex(3)}@%h",
                ],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                start_new_session=True,
            )  # fmt: skip
            try:
                time.sleep(4)  # the worker connects to Redis
                measured = probe("batch", "--year", str(year), env=env)
            finally:
                os.killpg(worker.pid, signal.SIGTERM)
                try:
                    worker.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(worker.pid, signal.SIGKILL)
            seconds[concurrency] = measured["seconds"]
            rate = measured["statements"] / measured["seconds"] if measured["seconds"] else 0
            status = measured["status"] + (f" ({measured['error']})" if measured["error"] else "")
            lines.append(
                f"| {concurrency} | {measured['statements']} | {s(measured['seconds'])} | "
                f"{rate:.1f} états/s | {status} |"
            )
        inline = probe("batch-inline", "--year", str(year), env=env)
        self.memory.append(("Lot d'états (dans un seul processus)", inline["maxrss_kib"]))
        ceiling = parallel_ceiling()
        lines += [
            "",
            f"Deux processus contre un : × {seconds[1] / seconds[2]:.2f} ; plafond de la machine "
            f"mesuré dans la même exécution (le même calcul Python pur dans 1 puis 2 processus, "
            f"aucune base ni PDF) : × {ceiling:.2f}.",
            "",
            f"Base des lots : `{name}` (échelle {self.options['batch_scale'] or '?'}), action "
            "« exporter » (`statements.batch_start` puis le travailleur exécute "
            "`statements.batch_run` : préparation, un PDF par état, récapitulatif, CSV, ZIP). "
            f"Courtier : Redis `{self.options['redis']}`. Durée : de la création du lot à sa fin. "
            f"Les {prepared['drafts']} projets d'états préparés une fois avant les deux lots "
            f"({s(prepared['seconds'])}) : chaque lot rafraîchit des projets existants, la base "
            "aussi chaude pour l'un que pour l'autre. "
            f"Le même lot dans un seul processus, sans courtier : {s(inline['seconds'])}.",
        ]
        self.add("b. Lots d'états avec Celery", lines)

    # -- c. pages ------------------------------------------------------------------------------

    def page_urls(self, year: int) -> list[tuple[str, str]]:
        convention = Convention.objects.filter(territory=self.territory).order_by("reference")[0]
        return [
            ("Tableau de bord", reverse("costing:dashboard", args=[year])),
            ("Remboursements", reverse("costing:reimbursements", args=[year])),
            ("Liste des états", reverse("costing:statements", args=[year])),
            ("Liste des conventions", reverse("conventions:list")),
            (
                f"Fiche de convention ({convention.reference})",
                reverse("conventions:detail", args=[convention.reference]),
            ),
            ("Accueil", reverse("home")),
            ("Bases de coûts", reverse("costing:cost-bases", args=[year])),
            ("Recours", reverse("costing:usage-list", args=[year])),
            ("Acomptes", reverse("costing:instalments", args=[year])),
            ("Schémas de mutualisation", reverse("conventions:schemes")),
            ("Matrice des adhésions", reverse("conventions:adhesions", args=[year])),
            ("Agents mis à disposition", reverse("conventions:staff", args=[year])),
            ("Rapport annuel", reverse("costing:annual-report", args=[year])),
        ]

    def query_counts(self, user, urls) -> dict:
        client = Client(HTTP_HOST="127.0.0.1", raise_request_exception=False)
        client.force_login(user)
        counts = {}
        for label, url in urls:
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url, secure=True)
            counts[label] = (len(queries), response.status_code)
        return counts

    def pages(self, year: int) -> None:
        user = finance_user(self.territory)
        urls = self.page_urls(year)
        counts = self.query_counts(user, urls)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session.create()
        port = free_port()
        workers = max(2, min(4, os.cpu_count() or 2))
        server = subprocess.Popen(
            [
                GUNICORN, "mutualisation.wsgi", "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "--timeout", "600", "--log-level", "warning",
            ],
            cwd=ROOT,
            env=child_env(DJANGO_SECURE_SSL_REDIRECT="false"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        timings: dict[str, list[float]] = {}
        statuses: dict[str, set] = defaultdict(set)
        try:
            self.wait_for(port)
            headers = {
                "Cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
                "X-Forwarded-Proto": "https",
                "Host": "127.0.0.1",
            }
            for label, url in urls:
                timings[label] = []
                for _ in range(self.options["requests"] + 1):  # the first warms the worker up
                    request = urllib.request.Request(
                        f"http://127.0.0.1:{port}{url}", headers=headers
                    )
                    started = time.perf_counter()
                    try:
                        with urllib.request.urlopen(request, timeout=600) as response:
                            response.read()
                            statuses[label].add(response.status)
                    except urllib.error.HTTPError as error:
                        statuses[label].add(error.code)
                    timings[label].append(time.perf_counter() - started)
                timings[label] = timings[label][1:]
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        lines = [
            "| Page | p50 | p95 | Requêtes SQL | Statut HTTP |",
            "|---|---|---|---|---|",
        ]
        for label, url in urls:
            values = timings[label]
            lines.append(
                f"| {label} (`{url}`) | {ms(percentile(values, 0.5))} | "
                f"{ms(percentile(values, 0.95))} | {counts[label][0]} | "
                f"{', '.join(str(c) for c in sorted(statuses[label]))} |"
            )
        lines += [
            "",
            f"gunicorn, {workers} processus, réglages de production (DEBUG désactivé), "
            f"connecté comme `{user.username}` (agent des finances du territoire le plus "
            f"chargé) ; {self.options['requests']} requêtes successives par page après une "
            "requête d'échauffement. Requêtes SQL comptées dans le processus "
            "(`CaptureQueriesContext`, client de test).",
        ]
        lines.append(
            "\nLes conventions générées n'ont pas d'historique (insertion en masse) : la fiche "
            "mesurée est celle d'une convention sans historique, telle quelle."
        )
        self.add("c. Pages", lines)

    def wait_for(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        raise CommandError("gunicorn ne répond pas.")

    # -- report --------------------------------------------------------------------------------

    def report(self) -> str:
        memory = [
            "| Traitement | Mémoire maximale (VmHWM du processus) |",
            "|---|---|",
            *(f"| {label} | {mib(kib)} |" for label, kib in self.memory),
        ]
        self.sections.append(("d. Mémoire", memory))
        out = [
            "# Performances à l'échelle nationale",
            "",
            "Mesures de `make bench` (issue 11) : chaque chiffre à côté de son plancher, mesuré "
            "dans la même exécution. Des mesures, jamais des tests chronométrés ; relancez "
            "`make bench` pour les refaire sur votre machine.",
            "",
            "## Commandes",
            "",
            "```",
            self.options["commands"] or "make bench",
            "```",
        ]
        for title, lines in self.sections:
            out += ["", f"## {title}", "", *lines]
        return "\n".join(out) + "\n"


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS
