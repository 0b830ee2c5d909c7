"""`make load`: Mutualis under load, on PostgreSQL, as in production.

Builds a fresh database (LOAD_DATABASE, default mutualis_load: dropped and recreated on each run,
left in place afterwards for inspection), migrates it, loads the demo territory without its demo
accounts, issues the 2025 statements and prepares the 2026 drafts, creates one account per
simulated person with a random password, then serves the application with gunicorn and the
production settings (DEBUG off, manifest static files, secure cookies, HTTPS) on a free loopback
port, and runs the locust scenario (loadtest/locustfile.py) headless.

Then it prints requests per second, median and 95th percentile per group of pages, the errors,
and checks that every write the simulated people saw succeed is in the database. Exit status 1
on any error or lost write.

Settings (environment): LOAD_USERS (30), LOAD_SPAWN_RATE (10 per second), LOAD_DURATION (60s),
LOAD_WORKERS (gunicorn workers, 4), LOAD_DATABASE (mutualis_load), LOAD_PG_URL
(postgres://postgres@127.0.0.1:5432). Results: var/load/ (locust's JSON, the writes, gunicorn's
log); collected static files are kept in var/load-static/ between runs.

Only loopback: gunicorn binds 127.0.0.1, locust targets it.
"""

import http.cookiejar
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "load"
# Kept between runs: compressing every asset takes a minute, redone only when one changes.
STATIC_ROOT = ROOT / "var" / "load-static"
VENV_BIN = ROOT / ".venv" / "bin"

USERS = int(os.environ.get("LOAD_USERS", "30"))
SPAWN_RATE = os.environ.get("LOAD_SPAWN_RATE", "10")
DURATION = os.environ.get("LOAD_DURATION", "60s")
WORKERS = os.environ.get("LOAD_WORKERS", "4")
DATABASE = os.environ.get("LOAD_DATABASE", "mutualis_load")
PG_URL = os.environ.get("LOAD_PG_URL", "postgres://postgres@127.0.0.1:5432")

ISSUED_YEAR = 2025  # statements issued before the run (PDF downloads)
OPEN_YEAR = 2026  # drafts open to the communes' remarks, usage grid being filled
COMPUTED_YEAR = 2027  # unit costs not notified yet: finance recomputes them


STARTED = time.monotonic()


def step(message: str) -> None:
    print(f"\n=== {message} ({time.monotonic() - STARTED:.0f} s)", flush=True)


def role_counts(users: int) -> dict[str, int]:
    """Managers 40 %, finance 30 %, commune readers the rest (at least one of each, of 3)."""
    managers = max(1, round(users * 0.4))
    finance = max(1, round(users * 0.3))
    readers = users - managers - finance
    return {"manager": managers, "finance": finance, "reader": readers}


# --- PostgreSQL ----------------------------------------------------------------------------------


def pg_args() -> list[str]:
    url = urlsplit(PG_URL)
    return ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username]


def ensure_postgres() -> None:
    """Start the local cluster if it is not accepting connections (as .ci/run does)."""
    url = urlsplit(PG_URL)
    ready = ["pg_isready", "-q", "-h", url.hostname, "-p", str(url.port or 5432)]
    if subprocess.run(ready, check=False).returncode == 0:
        return
    clusters = sorted(os.listdir("/etc/postgresql"))
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1], "main", "start"], check=True
    )
    for _ in range(30):
        if subprocess.run(ready, check=False).returncode == 0:
            return
        time.sleep(1)
    sys.exit("PostgreSQL ne répond pas.")


def fresh_database() -> None:
    subprocess.run(["dropdb", *pg_args(), "--if-exists", DATABASE], check=True)
    subprocess.run(["createdb", *pg_args(), DATABASE], check=True)


# --- Django, in this process: migrate, seed, prepare, check ------------------------------------


def production_environment(tmp: Path) -> dict[str, str]:
    """The production settings: DEBUG off, a random secret, manifest static files. Nothing is
    relaxed: cookies stay Secure and HTTPS stays required, since gunicorn itself serves TLS."""
    return {
        "DJANGO_SETTINGS_MODULE": "mutualisation.settings",
        "DJANGO_ENV_FILE": "/dev/null",  # a developer's .env (DEBUG on) must not leak in
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"{PG_URL}/{DATABASE}",
        "DJANGO_STATIC_ROOT": str(STATIC_ROOT),
        "DJANGO_MEDIA_ROOT": str(tmp / "media"),
        "DJANGO_LOG_LEVEL": "WARNING",
    }


def set_up_django(environment: dict[str, str]) -> None:
    os.environ.update(environment)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(counts: dict[str, int]) -> dict:
    """The data the simulated people work on, and their accounts (random passwords).

    Each person writes only to objects of their own, so that a conflict (409) can only come from
    a defect: a manager edits the draft convention they created, a finance officer owns a few
    cells of the usage grids, a reader remarks on their commune's drafts (inserts only)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from conventions.models import Convention, ConventionKind, PartyRole, Status
    from costing import statements
    from costing.models import CostBase, Statement, StatementStatus, UnitCost
    from mutualisation.models import Membership, Organisation, OrganisationKind, Role, Service

    user_model = get_user_model()
    epci = Organisation.objects.get(kind=OrganisationKind.EPCI)

    # Statements: 2025 approved by each debtor, then issued (stored PDFs); 2026 drafts open.
    statements.statements_prepare(ISSUED_YEAR)
    for draft in Statement.objects.filter(year=ISSUED_YEAR, status=StatementStatus.DRAFT):
        approver, _ = user_model.objects.get_or_create(username=f"approbation-{draft.payer.siren}")
        role = Role.COMMUNE_READER if draft.payer.kind == OrganisationKind.COMMUNE else Role.FINANCE
        Membership.objects.get_or_create(user=approver, organisation=draft.payer, role=role)
        statements.statement_approve(draft, user=approver)
        statements.statement_issue(draft)
    statements.statements_prepare(OPEN_YEAR)
    open_payers = (
        Organisation.objects.filter(
            kind=OrganisationKind.COMMUNE,
            statements_owed__year=OPEN_YEAR,
            statements_owed__status=StatementStatus.DRAFT,
        )
        .distinct()
        .order_by("name")
    )
    reader_communes = list(open_payers)

    # Usage grids of the conventions in force: (reference, service, beneficiary, month) cells.
    cells = []
    for convention in Convention.objects.filter(status=Status.IN_FORCE).order_by("reference"):
        role = (
            PartyRole.MEMBER
            if convention.kind == ConventionKind.SERVICE_COMMUN
            else PartyRole.BENEFICIARY
        )
        beneficiaries = [
            party.organisation_id
            for party in convention.parties.filter(role=role).order_by("organisation__name")
            if party.organisation_id != convention.managing_organisation_id
        ]
        for line in convention.services.select_related("service").order_by("service__code"):
            for month in range(1, 12):  # January to November: nothing dated after today
                for beneficiary in beneficiaries:
                    cells.append([convention.reference, line.service.code, beneficiary, month])
    cells_per_officer = 2
    if len(cells) < cells_per_officer * counts["finance"]:
        sys.exit("Pas assez de cases de recours pour les agents des finances simulés.")

    bases = [
        base.pk
        for base in CostBase.objects.filter(year=COMPUTED_YEAR).order_by("service__code")
        if not UnitCost.objects.current()
        .filter(service=base.service, year=COMPUTED_YEAR, notified_on__isnull=False)
        .exists()
    ]

    def account(role_name: str, username: str, index: int) -> dict:
        password = secrets.token_urlsafe(24)
        user = user_model(username=username)
        user.set_password(password)
        user.save()
        created = {"username": username, "password": password}
        if role_name == "manager":
            Membership.objects.create(user=user, organisation=epci, role=Role.MANAGER)
        elif role_name == "finance":
            Membership.objects.create(user=user, organisation=epci, role=Role.FINANCE)
            start = index * cells_per_officer
            created["cells"] = cells[start : start + cells_per_officer]
            created["bases"] = bases
        else:
            commune = reader_communes[index % len(reader_communes)]
            Membership.objects.create(user=user, organisation=commune, role=Role.COMMUNE_READER)
            created["siren"] = commune.siren
        return created

    accounts: dict[str, list[dict]] = defaultdict(list)
    warm_up_accounts = {}
    with transaction.atomic():
        for role_name, count in counts.items():
            for index in range(count):
                accounts[role_name].append(
                    account(role_name, f"charge-{role_name}-{index + 1:02d}", index)
                )
            # Reads only, before the run (no cell, no remark): index 0 is harmless.
            warm_up_accounts[role_name] = account(role_name, f"echauffement-{role_name}", 0)

    services = list(
        Service.objects.filter(provider=epci).order_by("code").values_list("pk", flat=True)
    )
    communes = list(
        Organisation.objects.filter(kind=OrganisationKind.COMMUNE)
        .order_by("name")
        .values_list("pk", flat=True)
    )
    issued = Statement.objects.filter(year=ISSUED_YEAR, status=StatementStatus.ISSUED)
    drafts = Statement.objects.filter(year=OPEN_YEAR, status=StatementStatus.DRAFT)
    commune = reader_communes[0]
    reference, service, _beneficiary, _month = cells[0]
    statement_pages = [
        f"/couts/etat/{statement.pk}/{suffix}"
        for statement in (
            issued.filter(payer=commune).first() or issued.first(),
            drafts.filter(payer=commune).first(),
        )
        for suffix in ("", "pdf/")
    ]
    reading = [
        "/",
        "/conventions/",
        "/conventions/CONV-2026-001/",
        f"/couts/remboursements/{OPEN_YEAR}/",
        f"/couts/etats/{ISSUED_YEAR}/",
        f"/couts/etats/{OPEN_YEAR}/",
        *statement_pages,
    ]
    warm_up_pages = {
        "manager": [
            *reading,
            "/conventions/?q=service&status=IN_FORCE",
            "/conventions/nouvelle/",
            "/conventions/CONV-2027-002/modifier/",
            f"/couts/recours/CONV-2026-001/{OPEN_YEAR}/",
            "/couts/simulation/CONV-2027-001/",
        ],
        "finance": [
            *reading,
            f"/couts/tableau-de-bord/{OPEN_YEAR}/",
            f"/couts/acomptes/{OPEN_YEAR}/",
            f"/couts/recours/{reference}/{service}/{OPEN_YEAR}/",
            *(f"/couts/base/{pk}/" for pk in bases[:1]),
            f"/couts/exports/{ISSUED_YEAR}/lignes.csv",
            f"/couts/exports/{ISSUED_YEAR}/titres.xlsx",
            f"/couts/recapitulatif/{ISSUED_YEAR}/{epci.siren}.pdf",
        ],
        "reader": reading,
    }
    return {
        "accounts": accounts,
        "warm_up": warm_up_accounts,
        "warm_up_pages": warm_up_pages,
        "epci": epci.pk,
        "communes": communes,
        "services": services,
        "years": {"issued": ISSUED_YEAR, "open": OPEN_YEAR, "computed": COMPUTED_YEAR},
    }


def collect_static() -> None:
    """collectstatic as in production (hashed names, compressed copies), skipped when no source
    file changed since the last run (same names, sizes and modification times)."""
    import hashlib

    from django.contrib.staticfiles.finders import get_finders
    from django.core.management import call_command

    fingerprint = hashlib.sha256()
    for finder in get_finders():
        for path, storage in sorted(finder.list([]), key=lambda item: item[0]):
            stat = os.stat(storage.path(path))
            fingerprint.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    stamp = STATIC_ROOT / ".sources.sha256"
    if stamp.exists() and stamp.read_text() == fingerprint.hexdigest():
        print("Inchangés depuis la dernière exécution : collectstatic évité.")
        return
    shutil.rmtree(STATIC_ROOT, ignore_errors=True)
    call_command("collectstatic", interactive=False, verbosity=0)
    stamp.write_text(fingerprint.hexdigest())


def check_writes(writes_file: Path) -> tuple[dict[str, int], list[str]]:
    """Every write a simulated person saw succeed, looked up in the database afterwards.

    Returns the number of writes checked per kind and a description of each lost one."""
    from django.contrib.auth import get_user_model
    from django.utils.dateparse import parse_datetime

    from conventions.models import Convention
    from costing.models import CostBase, StatementRemark, UnitCost, UsageRecord, UsageSource
    from mutualisation.models import DocumentAccess

    writes = [json.loads(line) for line in writes_file.read_text().splitlines() if line]
    checked: dict[str, int] = defaultdict(int)
    lost: list[str] = []
    last: dict[tuple, dict] = {}
    for write in writes:
        if write["kind"] == "conflict":  # a 409: nothing written, rightly
            continue
        checked[write["kind"]] += 1
        if write["kind"] == "convention-create":
            if not Convention.objects.filter(
                reference=write["reference"], created_by__username=write["user"]
            ).exists():
                lost.append(f"convention créée {write['reference']} ({write['title']})")
        # Edits of one object by one person, in order: the last one is what the base must hold.
        elif write["kind"] == "convention-title":
            last[("title", write["reference"])] = write
        elif write["kind"] == "usage-cell":
            key = ("cell", write["reference"], write["service"], write["beneficiary"])
            last[(*key, write["month"])] = write
        elif write["kind"] == "remark":
            if not StatementRemark.objects.filter(
                statement_id=write["statement"], author__username=write["user"], text=write["text"]
            ).exists():
                lost.append(f"remarque sur l'état {write['statement']} : {write['text']}")
        elif write["kind"] == "unit-cost-compute":
            key = ("compute", write["base"])
            if key not in last or last[key]["started"] < write["started"]:
                last[key] = write
        elif write["kind"] == "document-access":
            last.setdefault(("access", write["user"], write["path"]), {"count": 0})["count"] += 1
    for key, write in last.items():
        if key[0] == "title":
            title = Convention.objects.filter(reference=key[1]).values_list("title", flat=True)
            if list(title) != [write["title"]]:
                lost.append(f"intitulé de {key[1]} : attendu {write['title']!r}, lu {list(title)}")
        elif key[0] == "cell":
            _kind, reference, service, beneficiary, month = key
            quantities = list(
                UsageRecord.objects.filter(
                    convention__reference=reference,
                    service__code=service,
                    beneficiary_id=beneficiary,
                    period_start__year=OPEN_YEAR,
                    period_start__month=month,
                    source=UsageSource.GRID,
                ).values_list("quantity", flat=True)
            )
            if quantities != [Decimal(write["quantity"])]:
                lost.append(
                    f"recours {reference} {service} {beneficiary} mois {month} : "
                    f"attendu {write['quantity']}, lu {[str(q) for q in quantities]}"
                )
        elif key[0] == "compute":
            base = CostBase.objects.get(pk=key[1])
            unit_cost = UnitCost.objects.current().get(service=base.service, year=base.year)
            if unit_cost.computed_at < parse_datetime(write["started"]):
                lost.append(f"coût unitaire de la base {key[1]} : calcul perdu")
        elif key[0] == "access":
            _kind, username, path = key
            user = get_user_model().objects.get(username=username)
            found = DocumentAccess.objects.filter(user=user, path=path).count()
            if found < write["count"]:
                lost.append(
                    f"téléchargements de {path} par {username} : {write['count']} faits, "
                    f"{found} journalisés"
                )
    return dict(checked), lost


# --- gunicorn and locust -------------------------------------------------------------------------


def self_signed_certificate(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1, valid one day: gunicorn serves HTTPS as production does behind
    its proxy, so Secure cookies and the CSRF origin check work unchanged."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def warm_up(url: str, cert: Path, plan: dict) -> int:
    """Before the measure, each page once per worker or so (several at a time, so that busy
    workers leave the next ones to the others): templates compiled, modules imported, as in a
    service that has been running. Reads only, with accounts of their own. Returns how many
    pages were fetched; an error stops the run."""
    context = ssl.create_default_context(cafile=str(cert))
    openers = {}
    for role, account in plan["warm_up"].items():
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context),
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
        )
        with opener.open(f"{url}/connexion/", timeout=60) as reply:
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', reply.read().decode())
        form = {
            "csrfmiddlewaretoken": token[1],
            **{k: account[k] for k in ("username", "password")},
        }
        login = urllib.request.Request(
            f"{url}/connexion/",
            data=urllib.parse.urlencode(form).encode(),
            headers={"Origin": url, "Referer": f"{url}/connexion/"},
        )
        with opener.open(login, timeout=60) as reply:
            if urlsplit(reply.url).path != "/":
                sys.exit(f"Échauffement : connexion refusée pour {account['username']}.")
        openers[role] = opener

    def visit(_round: int) -> int:
        fetched = 0
        for role, opener in openers.items():
            for path in plan["warm_up_pages"][role]:
                with opener.open(f"{url}{path}", timeout=120) as reply:
                    reply.read()
                fetched += 1
        return fetched

    with ThreadPoolExecutor(max_workers=2 * int(WORKERS)) as pool:
        return sum(pool.map(visit, range(2 * int(WORKERS))))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_serving(url: str, cert: Path, server: subprocess.Popen) -> None:
    context = ssl.create_default_context(cafile=str(cert))
    for _ in range(60):
        if server.poll() is not None:
            sys.exit("gunicorn s'est arrêté au démarrage : voir var/load/gunicorn.log")
        try:
            with urllib.request.urlopen(f"{url}/connexion/", context=context, timeout=5) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    sys.exit("gunicorn ne répond pas.")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- report --------------------------------------------------------------------------------------


def percentile(histogram: dict[int, int], count: int, fraction: float) -> int:
    """Locust's percentile: the response time (rounded as locust keeps them) below which
    ``fraction`` of the requests fall."""
    kept = int(count * fraction)
    seen = 0
    for time_ms in sorted(histogram, reverse=True):
        seen += histogram[time_ms]
        if count - seen <= kept:
            return time_ms
    return 0


def report(stats_file: Path) -> int:
    """Print the figures per group of pages (locust's final JSON, which includes the requests
    finished while the users stop); return the number of failed requests."""
    entries = json.loads(stats_file.read_text())
    started = min(entry["start_time"] for entry in entries)
    ended = max(entry["last_request_timestamp"] for entry in entries)
    seconds = max(ended - started, 1)
    total = {"method": "", "name": "TOTAL", "num_requests": 0, "num_failures": 0}
    total_times: dict[int, int] = defaultdict(int)
    rows = []
    for entry in sorted(entries, key=lambda entry: (entry["name"], entry["method"])):
        histogram = {int(k): v for k, v in entry["response_times"].items()}
        for time_ms, hits in histogram.items():
            total_times[time_ms] += hits
        total["num_requests"] += entry["num_requests"]
        total["num_failures"] += entry["num_failures"]
        rows.append((entry, histogram, entry["max_response_time"]))
    rows.append((total, total_times, max(entry["max_response_time"] for entry in entries)))
    print(
        f"{'groupe':<44} {'requêtes':>8} {'échecs':>6} {'req/s':>6} "
        f"{'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}"
    )
    for entry, histogram, longest in rows:
        count = entry["num_requests"]
        print(
            f"{(entry['method'] + ' ' + entry['name']).strip():<44} {count:>8} "
            f"{entry['num_failures']:>6} {count / seconds:>6.2f} "
            f"{percentile(histogram, count, 0.5):>7} {percentile(histogram, count, 0.95):>7} "
            f"{longest:>7.0f}"
        )
    print(f"Durée mesurée : {seconds:.0f} s (du premier au dernier appel)")
    return total["num_failures"]


def server_errors(log: Path) -> list[str]:
    """Tracebacks and errors that gunicorn or Django logged (a 500 also shows as a failure)."""
    lines = log.read_text(errors="replace").splitlines()
    return [line for line in lines if "Traceback" in line or "[ERROR]" in line]


def main() -> int:
    if USERS < 3:
        sys.exit("LOAD_USERS : 3 au moins (une personne par rôle).")
    counts = role_counts(USERS)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    tmp = OUT / "run"
    tmp.mkdir()

    step(f"PostgreSQL : base {DATABASE} neuve")
    ensure_postgres()
    fresh_database()
    set_up_django(production_environment(tmp))
    from django.core.management import call_command
    from django.db import connections

    step("Migrations et territoire de démonstration (sans ses comptes)")
    call_command("migrate", verbosity=0, interactive=False)
    call_command("seed_demo", no_users=True, verbosity=0)
    step(
        f"États {ISSUED_YEAR} émis, projets {OPEN_YEAR}, comptes : {counts['manager']} "
        f"gestionnaires, {counts['finance']} agents des finances, {counts['reader']} lecteurs"
    )
    plan = prepare(counts)
    plan_file = OUT / "plan.json"
    plan_file.touch(mode=0o600)
    plan_file.write_text(json.dumps(plan))
    step("Fichiers statiques (collectstatic, manifeste et compression)")
    collect_static()
    connections.close_all()

    cert, key = self_signed_certificate(tmp)
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    step(f"gunicorn ({WORKERS} workers, HTTPS) sur {url}")
    log = OUT / "gunicorn.log"
    server = subprocess.Popen(
        [
            str(VENV_BIN / "gunicorn"),
            "mutualisation.wsgi",
            "-c",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            WORKERS,
            "--certfile",
            str(cert),
            "--keyfile",
            str(key),
            "--access-logformat",
            '%(t)s "%(r)s" %(s)s %(b)s %(M)sms',
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    writes_file = OUT / "writes.jsonl"
    try:
        wait_until_serving(url, cert, server)
        step("Échauffement des workers (lectures, hors mesure)")
        print(f"{warm_up(url, cert, plan)} pages servies")
        step(f"locust : {USERS} utilisateurs, {SPAWN_RATE}/s, pendant {DURATION}")
        subprocess.run(
            [
                str(VENV_BIN / "locust"),
                "-f",
                str(ROOT / "loadtest" / "locustfile.py"),
                "--headless",
                "--users",
                str(USERS),
                "--spawn-rate",
                SPAWN_RATE,
                "--run-time",
                DURATION,
                "--stop-timeout",
                "30s",
                "--host",
                url,
                "--json-file",
                str(OUT / "locust"),
                "--only-summary",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={
                **os.environ,
                "LOAD_PLAN": str(plan_file),
                "LOAD_WRITES": str(writes_file),
                "LOAD_CA": str(cert),
                "LOAD_ERRORS": str(OUT / "locust_errors.json"),
                **{f"LOAD_{role.upper()}S": str(count) for role, count in counts.items()},
            },
            check=False,
            stdout=(OUT / "locust.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
    finally:
        stop(server)

    step("Résultats (temps en millisecondes)")
    failures = report(OUT / "locust.json")
    problems = json.loads((OUT / "locust_errors.json").read_text())
    for error in problems["failures"]:
        print(
            f"  ÉCHEC {error['method']} {error['name']} ×{error['occurrences']} : {error['error']}"
        )
    exceptions = sum(exception["count"] for exception in problems["exceptions"])
    for exception in problems["exceptions"]:
        print(f"  EXCEPTION du scénario ×{exception['count']} : {exception['msg']}")
        print(exception["traceback"])
    errors = server_errors(log)
    step("Écritures faites sous charge, relues dans la base")
    writes_file.touch()
    checked, lost = check_writes(writes_file)
    for kind, count in sorted(checked.items()):
        print(f"  {kind:<20} {count:>6}")
    print(f"  {'total':<20} {sum(checked.values()):>6}")
    for line in lost:
        print(f"  PERDUE : {line}")
    conflicts = writes_file.read_text().count('"kind": "conflict"')
    print(f"Conflits 409 (réponse correcte : rien n'est écrit, rien n'est attendu) : {conflicts}")
    step("Bilan")
    print(f"Requêtes en échec : {failures}")
    print(f"Exceptions du scénario : {exceptions}")
    print(f"Erreurs du serveur (journal gunicorn) : {len(errors)}")
    for line in errors[:20]:
        print(f"  {line}")
    print(f"Écritures vérifiées : {sum(checked.values())}, perdues : {len(lost)}")
    print(f"Détail : {OUT.relative_to(ROOT)}/ (locust.json, writes.jsonl, gunicorn.log)")
    if failures or exceptions or errors or lost or not checked:
        print("ÉCHEC")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
