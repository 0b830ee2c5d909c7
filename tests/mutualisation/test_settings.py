"""Settings come from the environment and are production-safe unless DEBUG is asked for."""

import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROD_ENV = {
    "PATH": "/usr/bin:/bin",
    "DJANGO_ENV_FILE": "/dev/null",  # ignore a developer's .env
    "DJANGO_SETTINGS_MODULE": "mutualisation.settings",
    "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
    "DJANGO_ALLOWED_HOSTS": "mutualis.example.org",
}


def run_python(code, env):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )


def test_debug_is_off_and_secret_key_required_by_default():
    env = {k: v for k, v in PROD_ENV.items() if k != "DJANGO_SECRET_KEY"}
    result = run_python("import mutualisation.settings", env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_settings_read_from_the_environment():
    code = (
        "from mutualisation import settings as s;"
        "print(s.DEBUG, s.ALLOWED_HOSTS, s.DATABASES['default']['ENGINE'], s.LANGUAGE_CODE,"
        " s.TIME_ZONE, s.USE_THOUSAND_SEPARATOR, s.DEMO_USERS_ENABLED)"
    )
    result = run_python(code, PROD_ENV)
    assert result.stdout.split() == [
        "False",
        "['mutualis.example.org']",
        "django.db.backends.sqlite3",
        "fr",
        "Europe/Paris",
        "True",
        "False",
    ]
    result = run_python(
        "from mutualisation import settings as s; print(s.DATABASES['default']['ENGINE'])",
        {**PROD_ENV, "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/mutualis"},
    )
    assert result.stdout.strip() == "django.db.backends.postgresql"


def test_check_deploy_reports_nothing_with_debug_off():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=PROD_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout
