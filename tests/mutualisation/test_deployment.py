"""The scale-out switches of docs/deployment.md: each setting produces the configuration it
documents, without S3, a replica or PgBouncer to run."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.urls import resolve, reverse

from conventions.models import Convention
from costing.models import UsageRecord
from mutualisation import deployment
from mutualisation.routers import ReplicaRouter, ReportsOnReplicaMiddleware, reading_report

ROOT = Path(__file__).resolve().parents[2]


def settings_with(**env) -> dict:
    """The production settings module loaded in a fresh interpreter with ``env``."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({'STORAGES': settings.STORAGES, 'DATABASES': settings.DATABASES, "
        "'DATABASE_ROUTERS': settings.DATABASE_ROUTERS, 'MIDDLEWARE': settings.MIDDLEWARE}, "
        "default=str))"
    )
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mutualisation.settings",
        "DJANGO_ENV_FILE": "/dev/null",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "s" * 60,
        "DATABASE_URL": "postgres://mutualis@db.example:5432/mutualis",
        **env,
    }
    for name in ("DATABASE_REPLICA_URL", "MUTUALIS_S3_BUCKET", "DJANGO_DB_PGBOUNCER"):
        if name not in env:
            environment.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_files_stay_on_disk_without_a_bucket():
    loaded = settings_with()
    assert loaded["STORAGES"]["default"]["BACKEND"].endswith("FileSystemStorage")
    assert "replica" not in loaded["DATABASES"]
    assert loaded["DATABASE_ROUTERS"] == []
    assert "mutualisation.routers.ReportsOnReplicaMiddleware" not in loaded["MIDDLEWARE"]


def test_a_bucket_puts_the_files_in_private_s3_storage():
    loaded = settings_with(
        MUTUALIS_S3_BUCKET="mutualis-documents",
        MUTUALIS_S3_ENDPOINT_URL="https://s3.fr-par.scw.cloud",
        MUTUALIS_S3_REGION="fr-par",
        MUTUALIS_S3_PREFIX="production",
    )
    default = loaded["STORAGES"]["default"]
    assert default["BACKEND"] == "storages.backends.s3.S3Storage"
    assert default["OPTIONS"] == {
        "bucket_name": "mutualis-documents",
        "endpoint_url": "https://s3.fr-par.scw.cloud",
        "region_name": "fr-par",
        "location": "production",
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
    }
    # Static files are still served by whitenoise.
    assert "whitenoise" in loaded["STORAGES"]["staticfiles"]["BACKEND"]


def test_a_replica_url_adds_the_replica_its_router_and_middleware():
    loaded = settings_with(DATABASE_REPLICA_URL="postgres://lecture@replica.example:5432/mutualis")
    replica = loaded["DATABASES"]["replica"]
    assert (replica["HOST"], replica["USER"], replica["NAME"]) == (
        "replica.example",
        "lecture",
        "mutualis",
    )
    assert replica["TEST"]["MIRROR"] == "default"
    assert "lock_timeout" in replica["OPTIONS"]["options"]  # the primary's options
    assert loaded["DATABASE_ROUTERS"] == ["mutualisation.routers.ReplicaRouter"]
    assert "mutualisation.routers.ReportsOnReplicaMiddleware" in loaded["MIDDLEWARE"]


def test_pgbouncer_disables_server_side_cursors_and_startup_options():
    loaded = settings_with(DJANGO_DB_PGBOUNCER="true", DJANGO_CONN_MAX_AGE="60")
    default = loaded["DATABASES"]["default"]
    assert default["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert default["CONN_MAX_AGE"] == 60
    assert "options" not in default["OPTIONS"]
    assert "DISABLE_SERVER_SIDE_CURSORS" not in settings_with()["DATABASES"]["default"]


def test_the_router_reads_project_data_from_the_replica_only_within_a_report():
    router = ReplicaRouter()
    assert router.db_for_read(Convention) == "default"
    token = reading_report.set(True)
    try:
        assert router.db_for_read(Convention) == "replica"
        assert router.db_for_read(UsageRecord) == "replica"
        # Sessions and accounts are read back from the primary (just written).
        assert router.db_for_read(Session) == "default"
        assert router.db_for_read(get_user_model()) == "default"
        assert router.db_for_write(Convention) == "default"
    finally:
        reading_report.reset(token)
    assert router.allow_migrate("default", "costing") is True
    assert router.allow_migrate("replica", "costing") is False


def read_database_during(method: str, path: str) -> str:
    """The database the router picks for a Convention read while the middleware handles a
    request, then checks that the mark is gone after the response."""
    seen = {}

    def view(request):
        seen["db"] = ReplicaRouter().db_for_read(Convention)
        return HttpResponse()

    request = getattr(RequestFactory(), method)(path)
    request.resolver_match = resolve(path)
    middleware = ReportsOnReplicaMiddleware(
        lambda r: middleware.process_view(r, view, (), {}) or view(r)
    )
    middleware(request)
    assert ReplicaRouter().db_for_read(Convention) == "default"
    return seen["db"]


@override_settings(MUTUALIS_REPLICA_VIEWS=["costing:dashboard", "costing:reimbursements"])
@pytest.mark.parametrize(
    ("method", "name", "args", "expected"),
    [
        ("get", "costing:dashboard", [2026], "replica"),
        ("get", "costing:reimbursements", [2026], "replica"),
        ("post", "costing:reimbursements", [2026], "default"),
        ("get", "conventions:list", [], "default"),
        ("get", "costing:statements", [2026], "default"),
    ],
)
def test_report_views_read_from_the_replica(method, name, args, expected):
    assert read_database_during(method, reverse(name, args=args)) == expected


def test_storages_config_without_bucket_ignores_s3_options():
    config = deployment.storages_config(debug=True, endpoint_url="https://s3.example")
    assert config["default"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert config["staticfiles"]["BACKEND"].endswith("StaticFilesStorage")
