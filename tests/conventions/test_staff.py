"""The staff the conventions make available in a year (issue 14): headcount and ETPT by
convention, by regime and by employer (conventions/services/staff.py), on its page and in its
exports."""

import csv
import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from conventions.models import (
    AgentAssignment,
    AgentRegime,
    Convention,
    Party,
    Status,
    Termination,
)
from conventions.services.staff import staff_made_available
from tests.conftest import log_in
from tests.factories import ConventionFactory, EpciFactory, MembershipFactory, TermsFactory

pytestmark = pytest.mark.django_db


def convention(epci, *, status=Status.IN_FORCE, start=date(2026, 1, 1), **terms):
    made = ConventionFactory(territory=epci, status=status, start_date=start)
    TermsFactory(convention=made, **terms)
    return made


def agent(convention, employer, share, *, regime=AgentRegime.MAD_BY_LAW, ref=None, **dates):
    dates.setdefault("start_date", date(2026, 1, 1))
    return AgentAssignment.objects.create(
        convention=convention,
        agent_ref=ref or f"AG-{AgentAssignment.objects.count() + 1:03d}",
        job_title="Instructeur",
        employer=employer,
        regime=regime,
        share_percent=Decimal(share),
        functional_authority="Le maire",
        hierarchical_authority="Le président",
        agent_consent=True,
        **dates,
    )


def everything():
    return Convention.objects.all()


def test_half_a_year_at_fifty_percent_is_a_quarter_of_a_full_time(territory):
    made = convention(territory.epci)
    # 1 January to 1 July 2026: 182 days of 365, at 50 %.
    agent(made, territory.epci, "50", end_date=date(2026, 7, 1))
    summary = staff_made_available(2026, everything())
    assert summary.fte == Decimal("0.25")
    assert summary.agents == 1
    [row] = summary.rows
    assert (row.convention, row.agents, row.fte) == (made, 1, Decimal("0.25"))
    [line] = row.lines
    assert (line.first, line.last, line.days) == (date(2026, 1, 1), date(2026, 7, 1), 182)


def test_a_full_year_at_full_time_is_one(territory):
    agent(convention(territory.epci), territory.epci, "100", regime=AgentRegime.TRANSFER)
    assert staff_made_available(2026, everything()).fte == Decimal("1.00")


def test_the_leap_years_366_days_are_the_denominator(territory):
    made = convention(territory.epci, start=date(2028, 1, 1))
    agent(made, territory.epci, "100", start_date=date(2028, 1, 1), end_date=date(2028, 6, 30))
    # 182 days of 366: 0.4973 → 0.50
    assert staff_made_available(2028, everything()).fte == Decimal("0.50")


def test_only_the_days_the_convention_covers_count(territory):
    made = convention(territory.epci, start=date(2026, 7, 1))
    agent(made, territory.epci, "100", start_date=date(2026, 1, 1))
    [row] = staff_made_available(2026, everything()).rows
    assert (row.first, row.lines[0].first, row.lines[0].days) == (
        date(2026, 7, 1),
        date(2026, 7, 1),
        184,
    )
    assert row.fte == Decimal("0.50")


@pytest.mark.parametrize("status", [Status.DRAFT, Status.CONSULTATION, Status.DELIBERATED])
def test_a_convention_never_signed_makes_no_one_available(territory, status):
    agent(convention(territory.epci, status=status), territory.epci, "100")
    summary = staff_made_available(2026, everything())
    assert (summary.rows, summary.agents, summary.fte) == ([], 0, Decimal("0.00"))


def test_a_terminated_convention_counts_until_its_termination(territory):
    made = convention(territory.epci, status=Status.TERMINATED)
    Termination.objects.create(
        convention=made,
        notified_on=date(2026, 1, 15),
        effective_on=date(2026, 3, 31),
        requested_by=territory.commune_a,
        reason="Reprise en régie.",
        notice_respected=True,
        agents_outcome="Réintégration.",
    )
    agent(made, territory.epci, "100")
    # 90 days of 365.
    assert staff_made_available(2026, everything()).fte == Decimal("0.25")
    assert staff_made_available(2027, everything()).rows == []


def test_an_assignment_outside_the_year_counts_for_nothing(territory):
    made = convention(territory.epci, start=date(2025, 1, 1))
    agent(made, territory.epci, "100", start_date=date(2025, 1, 1), end_date=date(2025, 12, 31))
    assert staff_made_available(2026, everything()).rows == []


def test_totals_by_regime_and_by_employer(territory):
    first = convention(territory.epci)
    second = convention(territory.epci)
    agent(first, territory.epci, "100", regime=AgentRegime.TRANSFER, ref="T-1")
    agent(first, territory.commune_a, "50", ref="M-1")
    # The same agent of commune A made available by two conventions: one agent, ETPT added.
    agent(second, territory.commune_a, "20", ref="M-1")
    agent(
        second,
        territory.commune_b,
        "40",
        regime=AgentRegime.MAD_INDIVIDUAL,
        ref="I-1",
        end_date=date(2026, 7, 1),
    )
    summary = staff_made_available(2026, everything())
    assert [(t.regime, t.label, t.agents, t.fte) for t in summary.by_regime] == [
        ("TRANSFER", "Transfert", 1, Decimal("1.00")),
        ("MAD_BY_LAW", "Mise à disposition de plein droit", 1, Decimal("0.70")),
        ("MAD_INDIVIDUAL", "Mise à disposition individuelle", 1, Decimal("0.20")),
    ]
    assert [(t.employer.name, t.agents, t.fte) for t in summary.by_employer] == [
        ("Commune A", 1, Decimal("0.70")),
        ("Commune B", 1, Decimal("0.20")),
        ("Métropole de test", 1, Decimal("1.00")),
    ]
    assert (summary.agents, summary.fte) == (3, Decimal("1.90"))
    assert [(row.convention, row.agents, row.fte) for row in summary.rows] == [
        (first, 2, Decimal("1.50")),
        (second, 2, Decimal("0.40")),
    ]


def test_only_the_conventions_passed_are_counted(territory):
    counted = convention(territory.epci)
    agent(counted, territory.epci, "100")
    agent(convention(territory.epci), territory.epci, "100")
    summary = staff_made_available(2026, Convention.objects.filter(pk=counted.pk))
    assert [row.convention for row in summary.rows] == [counted]


# --- the page and its exports -------------------------------------------------------------------


@pytest.fixture
def staffed(territory, personas):
    """A convention with commune A (an agent of A at 50 %), one with commune B (an agent of the
    Métropole, full time), and a draft with an agent."""
    made = {}
    for commune, employer, share, ref in (
        (territory.commune_a, territory.commune_a, "50", "AG-A"),
        (territory.commune_b, territory.epci, "100", "AG-B"),
    ):
        made[ref] = convention(territory.epci)
        Party.objects.create(convention=made[ref], organisation=territory.epci, role="PROVIDER")
        Party.objects.create(convention=made[ref], organisation=commune, role="BENEFICIARY")
        agent(made[ref], employer, share, ref=ref)
    agent(convention(territory.epci, status=Status.DRAFT), territory.epci, "100", ref="AG-DRAFT")
    return made


def staff_page(client, username, **query):
    assert log_in(client, username)
    return client.get(reverse("conventions:staff", kwargs={"year": 2026}), query)


def staff_export(client, fmt):
    return client.get(reverse("conventions:staff-export", kwargs={"year": 2026, "fmt": fmt}))


def test_the_page_gives_totals_by_regime_employer_and_convention(client, staffed):
    html = staff_page(client, "finances").content.decode()
    assert "2 agents, 1,50 ETPT" in html
    for ref, made in staffed.items():
        assert ref in html
        assert f'href="{made.get_absolute_url()}"' in html
    assert "AG-DRAFT" not in html
    assert "Mise à disposition de plein droit" in html


def test_a_commune_reader_sees_the_agents_of_their_communes_conventions_only(client, staffed):
    html = staff_page(client, "lecteur.a").content.decode()
    assert "1 agent, 0,50 ETPT" in html
    assert staffed["AG-A"].reference in html
    assert staffed["AG-B"].reference not in html
    rows = list(
        csv.reader(io.StringIO(staff_export(client, "csv").content.decode()[1:]), delimiter=";")
    )
    assert [row[3] for row in rows[1:-1]] == ["AG-A"]
    assert rows[1][7] == "50,00"  # quotité, French decimal comma
    assert rows[1][11] == "0,50"


def test_the_xlsx_export_writes_quotite_and_etpt_as_numbers(client, staffed):
    assert log_in(client, "gestionnaire")
    response = staff_export(client, "xlsx")
    assert response["Content-Disposition"] == 'attachment; filename="agents-2026.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0][:4] == ["Convention", "Intitulé", "Statut", "Référence de l'agent"]
    assert sorted(row[3] for row in rows[1:-1]) == ["AG-A", "AG-B"]
    assert {row[11] for row in rows[1:-1]} == {0.5, 1}
    assert rows[-1][0] == "Total"
    assert rows[-1][1] == "2 agents"
    assert rows[-1][11] == 1.5


def test_an_outsider_is_refused_and_another_territory_not_found(client, territory, staffed):
    assert staff_page(client, "exterieur").status_code == 403
    other = EpciFactory()
    assert staff_page(client, "gestionnaire", territoire=other.siren).status_code == 404
    manager_val = MembershipFactory(organisation=other, role="MANAGER").user
    client.force_login(manager_val)
    html = client.get(reverse("conventions:staff", kwargs={"year": 2026})).content.decode()
    assert "AG-A" not in html
    assert "0 agent" in html
