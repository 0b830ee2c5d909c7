"""Fixtures of the reference-data tests: the URL matrix's world, shared by the matrix and the
territories' sweep (tests/mutualisation/test_territories.py)."""

import pytest
import time_machine
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import Client

from tests.mutualisation.url_world import NOW, PERSONAS, build_world


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once inside a transaction that is rolled back after the module; each test runs in a
    savepoint of it (pytest-django's ``db``), so what a request changes is undone after it."""
    traveller = time_machine.travel(NOW)
    traveller.start()
    atomic = transaction.atomic()
    try:
        with django_db_blocker.unblock():
            atomic.__enter__()
            built = build_world()
            # One session per persona, opened once: each request presents its cookie.
            built.sessions = {}
            for persona in PERSONAS[1:]:
                client = Client()
                client.force_login(getattr(built.users, persona))
                built.sessions[persona] = client.cookies[settings.SESSION_COOKIE_NAME].value
        yield built
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
        traveller.stop()


@pytest.fixture
def in_test_transaction():
    """The WSGI application answers inside the test's transaction: like Django's test client,
    the end of a request does not close the test's database connection."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
