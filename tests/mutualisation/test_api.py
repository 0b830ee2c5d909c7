"""The REST API's common behaviour: tokens, the one French error shape, pagination and
throttling (mutualisation/rest.py, settings REST_FRAMEWORK)."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.throttling import UserRateThrottle

from mutualisation.rest import flatten

pytestmark = pytest.mark.django_db


def with_token(client, user):
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {Token.objects.create(user=user).key}"
    return client


def test_without_a_token_the_api_answers_401_in_french(client):
    response = client.get("/api/v1/conventions/")
    assert response.status_code == 401
    assert response.json() == {
        "detail": "Informations d'authentification non fournies.",
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == "Token"


def test_a_revoked_token_no_longer_opens_the_api(client, personas):
    with_token(client, personas.finance)
    assert client.get("/api/v1/conventions/").status_code == 200
    Token.objects.filter(user=personas.finance).delete()  # revoked in the admin
    response = client.get("/api/v1/conventions/")
    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response.json()["detail"] == "Token non valide."


def test_an_outsiders_token_reads_nothing(client, personas):
    with_token(client, personas.outsider)
    for path in ("/api/v1/conventions/", "/api/v1/organisations/", "/api/v1/statements/"):
        body = client.get(path).json()
        assert body["count"] == 0, path
        assert body["results"] == [], path


def test_lists_are_paged_and_a_page_is_at_most_500(client, personas, territory):
    with_token(client, personas.manager)
    body = client.get("/api/v1/organisations/?page_size=2").json()
    assert body["count"] == 3  # the EPCI and its two communes
    assert len(body["results"]) == 2
    assert body["next"].endswith("page=2&page_size=2")
    assert client.get("/api/v1/organisations/?page_size=100000").json()["count"] == 3
    beyond = client.get("/api/v1/organisations/?page=9")
    assert beyond.status_code == 404
    assert beyond.json() == {"detail": "Page non valide.", "code": "not_found"}


def test_an_unknown_filter_value_is_a_french_field_error(client, personas):
    with_token(client, personas.manager)
    response = client.get("/api/v1/conventions/?status=INCONNU")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["detail"] == "Les données envoyées sont invalides."
    assert body["fields"]["status"] == [
        "Sélectionnez un choix valide. INCONNU n’en fait pas partie."
    ]


def test_nested_errors_are_named_by_their_path():
    errors = {
        "records": [{}, {"quantity": ["Ce champ est obligatoire."]}, {}],
        "non_field_errors": ["Lot vide."],
        "year": ["Année hors limites."],
    }
    assert flatten(errors) == {
        "records.1.quantity": ["Ce champ est obligatoire."],
        "non_field_errors": ["Lot vide."],
        "year": ["Année hors limites."],
    }


def test_too_many_requests_are_throttled_with_a_french_message(client, personas, monkeypatch):
    cache.clear()
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/minute", "anon": None})
    with_token(client, personas.finance)
    assert [client.get("/api/v1/unit-types/").status_code for _ in range(2)] == [200, 200]
    refused = client.get("/api/v1/unit-types/")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled"
    assert refused.json()["detail"].startswith("Requête ralentie.")
    assert "Retry-After" in refused
    cache.clear()


def test_with_a_redis_cache_every_process_counts_the_same_requests(client, personas, monkeypatch):
    import redis
    from django.test import override_settings

    location = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(location).flushdb()
    shared = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": "mutualis-test",
        }
    }
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "1/minute", "anon": None})
    with override_settings(CACHES=shared):
        with_token(client, personas.finance)
        assert client.get("/api/v1/unit-types/").status_code == 200
        # The count lives in Redis, where every worker and server reads it: refused.
        assert client.get("/api/v1/unit-types/").status_code == 429
        keys = redis.Redis.from_url(location).keys("mutualis-test:*throttle_user*")
        assert len(keys) == 1
    redis.Redis.from_url(location).flushdb()


def test_the_shared_cache_is_set_from_the_environment():
    import os
    import subprocess
    import sys

    env = {**os.environ, "MUTUALIS_CACHE_URL": "redis://127.0.0.1:6379/3"}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "c = settings.CACHES['default']; print(c['BACKEND'], c['LOCATION'])",
        ],
        env={**env, "DJANGO_SETTINGS_MODULE": "mutualisation.test_settings"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["django.core.cache.backends.redis.RedisCache", "redis://127.0.0.1:6379/3"]
