"""Shared fixtures: a small territory and the personas every permission test uses.

Personas: Métropole manager, finance officer, reader of commune A, reader of commune B,
administrator, and an outsider (an account with no role).
"""

import io
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.core.signals import setting_changed

from mutualisation.french import install_french_plurals
from mutualisation.management.commands.seed_demo import DEMO_PASSWORD
from mutualisation.models import Role
from mutualisation.services import seed_demo_territory
from tests.factories import (
    EpciFactory,
    EpciMembershipFactory,
    MembershipFactory,
    OrganisationFactory,
    UserFactory,
)

PASSWORD = "mot-de-passe-de-test"

# After Django's own test receiver, which starts the translations anew when a test changes the
# language settings: the French translation gets its French plural rule back.
setting_changed.connect(install_french_plurals, dispatch_uid="french-plurals")


@pytest.fixture
def territory(db):
    epci = EpciFactory(name="Métropole de test")
    commune_a = OrganisationFactory(name="Commune A")
    commune_b = OrganisationFactory(name="Commune B")
    for commune in (commune_a, commune_b):
        EpciMembershipFactory(member=commune, epci=epci)
    return SimpleNamespace(epci=epci, commune_a=commune_a, commune_b=commune_b)


@pytest.fixture
def personas(territory):
    def member(username, organisation, role, **extra):
        user = UserFactory(username=username, **extra)
        MembershipFactory(user=user, organisation=organisation, role=role)
        return user

    return SimpleNamespace(
        manager=member("gestionnaire", territory.epci, Role.MANAGER),
        finance=member("finances", territory.epci, Role.FINANCE),
        reader_a=member("lecteur.a", territory.commune_a, Role.COMMUNE_READER),
        reader_b=member("lecteur.b", territory.commune_b, Role.COMMUNE_READER),
        admin=member("admin", territory.epci, Role.ADMINISTRATOR, is_staff=True, is_superuser=True),
        outsider=UserFactory(username="exterieur"),
    )


def run_seed_demo(*args):
    """Run the seed_demo command quietly; returns what it printed."""
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def seed_territory(with_users=True):
    """Only the demo territory (and accounts): much faster than the whole seed_demo."""
    return seed_demo_territory(with_users=with_users, password=DEMO_PASSWORD)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no downloaded browser)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Chromium est introuvable : lancez « make test » (il installe le paquet chromium)."
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the tests
    # themselves around it are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name):
    """Keep a full-page screenshot under var/screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"
# What axe checks: WCAG 2.0 and 2.1, levels A and AA (what the RGAA 4 builds on).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page, impacts=("serious", "critical")) -> list[str]:
    """axe-core's violations of ``impacts`` on the page as it is now, one line each (rule,
    impact, help, the first offending elements). axe is evaluated through the DevTools
    protocol: the pages' Content-Security-Policy, which refuses any injected script, stays
    on while they are checked."""
    if not AXE.exists():
        pytest.fail("axe-core est introuvable : lancez « make test » (npm ci l'installe).")
    # A click that navigates returns once the new page has started loading, not once it is read.
    page.wait_for_load_state()
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    results = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        AXE_TAGS,
    )
    return [
        f"{violation['id']} ({violation['impact']}): {violation['help']} — "
        + "; ".join(" ".join(node["target"]) for node in violation["nodes"][:3])
        for violation in results["violations"]
        if violation["impact"] in impacts
    ]


def assert_accessible(page, name: str = "") -> None:
    """No serious or critical axe violation on the page (with the page's name in the failure)."""
    violations = axe_violations(page)
    assert not violations, f"{name or page.url} : " + "\n".join(violations)


def follow(page, link, name: str) -> None:
    """Click a link as a person does, wait for the page it opens (even at the same address) and
    check that page with axe (``name`` in the failure)."""
    with page.expect_navigation():
        link.click()
    assert_accessible(page, name)


def browser_log_in(page, live_server, username, password=PASSWORD) -> None:
    """Log in through the login page in Chromium, as a person does, and land on the home."""
    page.goto(live_server.url + "/connexion/")
    page.get_by_label("Identifiant").fill(username)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server.url + "/")


def log_in(client, username, password=PASSWORD) -> bool:
    """Log in through the login page, as a person does (login throttling needs the request,
    which ``client.login`` does not pass)."""
    from django.urls import reverse

    client.logout()  # the login page sends a signed-in person away without signing in anew
    response = client.post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302
