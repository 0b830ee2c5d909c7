"""The dashboard's charts as a finance officer reads them: every organisation's net position
(the Métropole's too), service names wrapped on lines instead of cut."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

LONG_NAME = "Instruction des autorisations du droit des sols et des déclarations préalables"


def chart_of(client, personas):
    client.force_login(personas.finance)
    return client.get(reverse("costing:dashboard", args=[2026])).context["chart"]


def test_the_net_position_chart_includes_the_metropole(client, personas, billed):
    chart = chart_of(client, personas)
    names = [" ".join(label) for label in chart["communes"]["labels"]]
    assert "Métropole de test" in names
    assert {"Commune A", "Commune B"} <= set(names)
    # The Métropole receives what the communes pay: the positions add up to zero.
    assert sum(float(n) for n in chart["communes"]["net"]) == pytest.approx(0)


def test_a_long_service_name_is_wrapped_on_lines_not_cut(client, personas, billed):
    billed.service.name = LONG_NAME
    billed.service.save()
    chart = chart_of(client, personas)
    (label,) = chart["services"]["labels"]
    assert isinstance(label, list)
    assert len(label) > 1
    assert all(len(line) <= 28 for line in label)
    assert " ".join(label) == LONG_NAME
