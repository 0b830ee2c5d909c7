"""`make bench`: Mutualis at national scale on PostgreSQL, figures written to docs/performance.md.

Builds two fresh databases (dropped and recreated on each run, left in place afterwards):
BENCH_DATABASE (default mutualis_bench) at BENCH_SCALE (default 0.1: ~126 EPCI, ~3 500 communes,
~1.2 million usage rows) and BENCH_DATABASE_batch at BENCH_BATCH_SCALE (default 0.001: about a thousand
statements, the issue's batch being at least 500) for the batches of statements, which render one PDF per statement. Then runs
``manage.py benchmark_scale`` (costing/management/commands/benchmark_scale.py), which measures
with the production settings (DEBUG off) and writes the report.

Settings (environment): BENCH_SCALE, BENCH_BATCH_SCALE, BENCH_SEED (1), BENCH_YEAR (2025),
BENCH_DATABASE, BENCH_PG_URL (postgres://postgres@127.0.0.1:5432), BENCH_REDIS
(redis://127.0.0.1:6379/11: a Redis database of its own, so that no other worker takes the
batches), BENCH_REQUESTS (20 per page), BENCH_OUTPUT (docs/performance.md).
"""

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python")
STATIC_ROOT = ROOT / "var" / "bench-static"  # kept between runs: compressing takes a minute

SCALE = os.environ.get("BENCH_SCALE", "0.1")
BATCH_SCALE = os.environ.get("BENCH_BATCH_SCALE", "0.001")
SEED = os.environ.get("BENCH_SEED", "1")
YEAR = os.environ.get("BENCH_YEAR", "2025")
DATABASE = os.environ.get("BENCH_DATABASE", "mutualis_bench")
BATCH_DATABASE = f"{DATABASE}_batch"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/11")
REQUESTS = os.environ.get("BENCH_REQUESTS", "20")
OUTPUT = os.environ.get("BENCH_OUTPUT", str(ROOT / "docs" / "performance.md"))

STARTED = time.monotonic()
COMMANDS: list[str] = []


def pg_args() -> list[str]:
    url = urlsplit(PG_URL)
    return ["-h", url.hostname or "127.0.0.1", "-p", str(url.port or 5432), "-U", url.username]


def environment(database: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mutualisation.settings",
        "DJANGO_ENV_FILE": "/dev/null",  # a developer's .env (DEBUG on) must not leak in
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_STATIC_ROOT": str(STATIC_ROOT),
        "DJANGO_LOG_LEVEL": "WARNING",
        "DATABASE_URL": f"{PG_URL}/{database}",
    }


SECRET_KEY = secrets.token_urlsafe(64)


def run(args: list[str], database: str, shown: str) -> None:
    print(f"\n=== {shown} ({time.monotonic() - STARTED:.0f} s)", flush=True)
    started = time.monotonic()
    subprocess.run(args, cwd=ROOT, env=environment(database), check=True)
    COMMANDS.append(f"{shown}    # {time.monotonic() - started:.0f} s")


def manage(database: str, *args: str) -> None:
    run(
        [PYTHON, "manage.py", *args],
        database,
        f"DATABASE_URL=…/{database} manage.py {' '.join(args)}",
    )


def fresh(database: str, scale: str) -> None:
    subprocess.run(["dropdb", *pg_args(), "--if-exists", database], check=True)
    subprocess.run(["createdb", *pg_args(), database], check=True)
    manage(database, "migrate", "--noinput", "-v", "0")
    manage(database, "generate_territory", "--scale", scale, "--seed", SEED, "--year", YEAR)


def main() -> int:
    fresh(DATABASE, SCALE)
    fresh(BATCH_DATABASE, BATCH_SCALE)
    if not (STATIC_ROOT / "staticfiles.json").exists():
        manage(DATABASE, "collectstatic", "--noinput", "-v", "0")
    commands = "\n".join(["make bench", *COMMANDS, "manage.py benchmark_scale …"])
    subprocess.run(
        [
            PYTHON, "manage.py", "benchmark_scale", "--year", YEAR, "--scale", SCALE,
            "--batch-database", BATCH_DATABASE, "--batch-scale", BATCH_SCALE,
            "--redis", REDIS, "--requests", REQUESTS, "--output", OUTPUT,
            "--commands", commands,
        ],
        cwd=ROOT, env=environment(DATABASE), check=True,
    )  # fmt: skip
    print(f"\n=== Terminé en {time.monotonic() - STARTED:.0f} s : {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
