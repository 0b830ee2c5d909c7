"""The déclaration d'accessibilité a local authority's intranet must publish (RGAA, loi du 11
février 2005 art. 47): public, reached from the footer of every page, honest about the level."""

import json
from pathlib import Path

import pytest
from django.test import override_settings
from django.urls import reverse

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@override_settings(MUTUALIS_ACCESSIBILITY_CONTACT="accessibilite@exemple.fr")
def test_the_statement_is_public_and_states_the_level_the_tests_and_the_recourse(client):
    response = client.get(reverse("accessibility"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1" in html
    assert "Déclaration d’accessibilité" in html
    # No complete RGAA audit yet: the level the RGAA then requires to declare.
    assert "non conforme" in html
    assert "RGAA 4.1" in html
    axe = json.loads((ROOT / "package.json").read_text())["devDependencies"]["axe-core"]
    assert f"axe-core {axe}" in html
    assert "accessibilite@exemple.fr" in html
    assert "Défenseur des droits" in html


def test_every_page_links_to_the_statement_in_its_footer(client, personas):
    link = f'href="{reverse("accessibility")}"'
    assert link in client.get(reverse("login")).content.decode()
    client.force_login(personas.reader_a)
    assert link in client.get(reverse("home")).content.decode()
    assert "Accessibilité : non conforme" in client.get(reverse("home")).content.decode()
