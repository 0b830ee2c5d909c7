"""Messages that count things read as French: 0 and 1 in the singular, 2 and more in the plural
(never « projet(s) calculé(s) »)."""

import io
from datetime import date

import pytest
from django.core.management import call_command
from django.urls import reverse

from costing import instalments, views

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


@pytest.mark.parametrize(
    ("count", "message"),
    [
        (0, "0 projet d'état calculé."),
        (1, "1 projet d'état calculé."),
        (2, "2 projets d'état calculés."),
    ],
)
def test_one_prepared_draft_is_announced_in_the_singular(
    client, personas, billed, monkeypatch, count, message
):
    monkeypatch.setattr(
        views.statements,
        "statements_prepare",
        lambda year, conventions, **kwargs: [object()] * count,
    )
    client.force_login(personas.finance)
    response = client.post(reverse("costing:statements-prepare", args=[2026]), follow=True)
    assert message in messages_of(response)


def test_acomptes_called_are_counted_in_french(client, personas, billed):
    client.force_login(personas.finance)
    url = reverse("costing:instalments-call", args=[2026])
    response = client.post(url, {"up_to": "2026-01-31"}, follow=True)
    assert "2 acomptes appelés." in messages_of(response)
    instalments.instalments_call(2026, up_to=date(2026, 12, 31))
    response = client.post(url, {"up_to": "2026-12-31"}, follow=True)
    assert "0 acompte appelé." in messages_of(response)


def test_one_purged_file_is_announced_in_the_singular(monkeypatch):
    monkeypatch.setattr(
        "costing.management.commands.purge_usage_imports.purge_usage_imports", lambda: 1
    )
    out = io.StringIO()
    call_command("purge_usage_imports", stdout=out)
    assert out.getvalue() == "1 fichier supprimé.\n"
