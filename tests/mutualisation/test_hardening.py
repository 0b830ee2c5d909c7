"""What a browser and an attacker see of the server: a strict Content-Security-Policy with no
inline script or style attribute in the pages, French error pages in the site's layout, no
uploaded file served outside its permission check, no server software named."""

import importlib
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.test import RequestFactory
from django.urls import Resolver404, clear_url_caches, resolve, reverse
from django.views.defaults import server_error

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def test_every_page_carries_a_strict_content_security_policy(client, personas):
    client.force_login(personas.manager)
    response = client.get(reverse("conventions:list"))
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_templates_hold_no_inline_script_handler_or_style_attribute():
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        if "pdf" in template.name or template.parent.name == "pdf":
            continue  # print templates are rendered by WeasyPrint, never by a browser
        text = template.read_text(encoding="utf-8")
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text):
            offenders.append(f"{template.name}: inline <script>")
        if re.search(r"\son[a-z]+=", text):
            offenders.append(f"{template.name}: inline event handler")
        if re.search(r'\sstyle="', text):
            offenders.append(f"{template.name}: style attribute")
    assert offenders == []


def test_not_found_and_forbidden_pages_are_french_in_the_sites_layout(client, personas):
    client.force_login(personas.reader_b)
    response = client.get("/conventions/CONV-1900-999/")
    assert response.status_code == 404
    body = response.content.decode()
    assert '<html lang="fr">' in body
    assert "Page introuvable" in body
    assert "Aller au contenu" in body  # the site's layout, not Django's default
    response = client.get(reverse("costing:cost-base-create"))
    assert response.status_code == 403
    assert "Accès refusé" in response.content.decode()


def test_the_server_error_page_is_french_and_needs_no_database():
    response = server_error(RequestFactory().get("/"))
    body = response.content.decode()
    assert response.status_code == 500
    assert '<html lang="fr">' in body
    assert "Erreur du serveur" in body


def test_uploaded_files_are_not_served_as_media_even_in_development(settings):
    settings.DEBUG = True
    import mutualisation.urls

    importlib.reload(mutualisation.urls)
    clear_url_caches()
    try:
        with pytest.raises(Resolver404):
            resolve(f"{settings.MEDIA_URL}conventions/CONV-2026-001/signee.pdf")
    finally:
        settings.DEBUG = False
        importlib.reload(mutualisation.urls)
        clear_url_caches()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_names_no_server_software(tmp_path):
    """Run the production server with the project's gunicorn.conf.py and read its header."""
    port = free_port()
    env = {
        "PATH": str(Path(sys.executable).parent),
        "DJANGO_SECRET_KEY": "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
    }
    # A clean checkout has no collected files: production serves only the hashed manifest.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    log = (tmp_path / "gunicorn.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "mutualisation.wsgi",
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/connexion/") as answer:
                    headers = answer.headers
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not answer: " + (tmp_path / "gunicorn.log").read_text())
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    assert headers["Server"] == "Mutualis"
    assert "gunicorn" not in str(headers).lower()
    assert "Content-Security-Policy" in headers


def test_signed_in_pages_and_documents_are_never_cached_and_features_are_denied(client, personas):
    anonymous = client.get(reverse("login"))
    assert "camera=()" in anonymous["Permissions-Policy"]
    client.force_login(personas.manager)
    page = client.get(reverse("conventions:list"))
    assert "no-store" in page["Cache-Control"]
    assert "camera=()" in page["Permissions-Policy"]


def test_a_session_ends_after_thirty_idle_minutes_and_with_the_browser(settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST
    assert settings.SESSION_EXPIRE_AT_BROWSER_CLOSE


def test_a_person_changes_their_password(client, personas):
    from tests.conftest import PASSWORD, log_in

    client.force_login(personas.reader_a)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert "Changer mon mot de passe" in page.content.decode()
    response = client.post(
        reverse("password_change"),
        {
            "old_password": "mauvais",
            "new_password1": "Un-nouveau-mot-de-passe-2026",
            "new_password2": "Un-nouveau-mot-de-passe-2026",
        },
    )
    assert response.status_code == 200
    assert "ancien mot de passe est incorrect" in response.content.decode()
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "Un-nouveau-mot-de-passe-2026",
            "new_password2": "Un-nouveau-mot-de-passe-2026",
        },
    )
    assert response.status_code == 302
    assert log_in(client, personas.reader_a.username, "Un-nouveau-mot-de-passe-2026")
    assert not log_in(client, personas.reader_a.username, PASSWORD)


def test_the_password_page_needs_a_signed_in_person(client):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302
    assert reverse("login") in response["Location"]
