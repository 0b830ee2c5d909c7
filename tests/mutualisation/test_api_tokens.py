"""An operator (superuser) gives a person an API token and revokes it in the admin
(rest_framework.authtoken's « Jetons », on Mutualis's admin site); the token then opens the
API as that person, and no longer once revoked. docs/api.md describes these steps."""

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_an_operator_creates_then_revokes_a_token_in_the_admin(client, personas):
    client.force_login(personas.admin)
    index = client.get(reverse("admin:index"))
    assert reverse("admin:authtoken_tokenproxy_changelist") in index.content.decode()
    assert "Jetons" in index.content.decode()

    created = client.post(reverse("admin:authtoken_tokenproxy_add"), {"user": personas.finance.pk})
    assert created.status_code == 302
    key = Token.objects.get(user=personas.finance).key
    listing = client.get(reverse("admin:authtoken_tokenproxy_changelist")).content.decode()
    assert key in listing
    assert "finances" in listing
    client.logout()
    api = client.get("/api/v1/organisations/", HTTP_AUTHORIZATION=f"Token {key}")
    assert api.status_code == 200

    client.force_login(personas.admin)
    delete = reverse("admin:authtoken_tokenproxy_delete", args=[personas.finance.pk])
    assert client.get(delete).status_code == 200
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(user=personas.finance).exists()
    client.logout()
    revoked = client.get("/api/v1/organisations/", HTTP_AUTHORIZATION=f"Token {key}")
    assert revoked.status_code == 401
    assert revoked.json() == {"detail": "Token non valide.", "code": "authentication_failed"}


def test_only_the_platform_s_operators_reach_the_tokens(client, personas):
    """A territory's staff marked staff do not administer tokens (the admin is the
    operators' tool, mutualisation/admin.py)."""
    personas.manager.is_staff = True
    personas.manager.save()
    client.force_login(personas.manager)
    response = client.get(reverse("admin:authtoken_tokenproxy_changelist"))
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
