"""Login throttling (django-axes): after too many wrong passwords for one username from one
address, even the right password is refused for a while, with a French page; the admin's
login is throttled the same way. Before: 20 wrong passwords then the right one logged in."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def attempt(client, url, username, password):
    return client.post(url, {"username": username, "password": password})


@pytest.mark.parametrize("url_name", ["login", "admin:login"])
def test_repeated_wrong_passwords_lock_the_username_out(client, personas, settings, url_name):
    settings.AXES_FAILURE_LIMIT = 5
    url = reverse(url_name)
    username = personas.manager.username if url_name == "login" else personas.admin.username
    for _ in range(5):
        response = attempt(client, url, username, "mauvais-mot-de-passe")
    response = attempt(client, url, username, PASSWORD)
    assert response.status_code == 429
    body = response.content.decode()
    assert "Connexion temporairement bloquée" in body
    assert "15 minutes" in body
    assert "_auth_user_id" not in client.session


def test_a_success_before_the_limit_resets_the_count(client, personas, settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("login")
    username = personas.manager.username
    for _ in range(2):
        attempt(client, url, username, "mauvais")
    assert attempt(client, url, username, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        attempt(client, url, username, "mauvais")
    assert attempt(client, url, username, PASSWORD).status_code == 302


def test_another_user_is_not_locked_out_by_someone_elses_failures(client, personas, settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("login")
    for _ in range(3):
        attempt(client, url, personas.manager.username, "mauvais")
    assert attempt(client, url, personas.finance.username, PASSWORD).status_code == 302


def test_behind_the_proxy_someone_elses_failures_do_not_lock_a_person_out(personas, settings):
    """Behind the documented reverse proxy every request comes from its address: the lockout
    reads the person's address from the hop the proxy appended to X-Forwarded-For (anything the
    client wrote before it is ignored). Before, anyone knowing a username locked it out."""
    from django.test import Client

    settings.AXES_FAILURE_LIMIT = 5
    settings.MUTUALIS_PROXY_COUNT = 1
    url = reverse("login")
    username = personas.finance.username
    attacker = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.66")
    for _ in range(5):
        attempt(attacker, url, username, "mauvais")
    assert attempt(attacker, url, username, PASSWORD).status_code == 429
    # The attacker's forged hops change nothing: the proxy appended their real address.
    forged = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7, 203.0.113.66")
    assert attempt(forged, url, username, PASSWORD).status_code == 429
    person = Client(REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert attempt(person, url, username, PASSWORD).status_code == 302


def test_without_a_proxy_a_forwarded_for_header_is_not_believed(personas, settings):
    from django.test import Client

    settings.AXES_FAILURE_LIMIT = 3
    settings.MUTUALIS_PROXY_COUNT = 0
    url = reverse("login")
    username = personas.finance.username
    for n in range(3):
        attempt(Client(HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"), url, username, "mauvais")
    assert (
        attempt(Client(HTTP_X_FORWARDED_FOR="203.0.113.9"), url, username, PASSWORD).status_code
        == 429
    )
