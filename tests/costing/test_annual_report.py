"""The annual report on mutualisation to the council (L5211-39-1, issue 14): HTML and PDF, the
flows per commune equal to the dashboard's to the cent, charts drawn into the PDF, and a commune
reader reading what concerns their commune only."""

import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from pypdf import PdfReader

from costing import engine
from costing.report import flows
from mutualisation.templatetags.money import euros
from tests.conftest import run_seed_demo

pytestmark = pytest.mark.django_db

YEAR = 2026
AUBIERE, CLERMONT = "216300145", "216301135"


def party(pk, name):
    return engine.Party(pk, f"{pk:09d}", name)


def settlement(payer, payee, actual, ac="0.00", called=()):
    return engine.Settlement(
        convention="C",
        payer=payer,
        payee=payee,
        settlement_mode="TITRE",
        actual=Decimal(actual),
        forecast=Decimal(actual),
        ac_deduction=Decimal(ac),
        planned=(),
        called=tuple(
            engine.CalledInstalment(rank, date(2026, 3, 1), Decimal(amount), "", "CALLED")
            for rank, amount in enumerate(called, 1)
        ),
    )


def test_flows_split_what_each_organisation_paid_and_net_it_as_the_positions_do():
    epci, a, b = party(1, "Métropole"), party(2, "Aubière"), party(3, "Beaumont")
    settlements = [
        settlement(a, epci, "1000.00", ac="600.00", called=["250.00"]),
        settlement(b, epci, "300.10"),
        settlement(epci, b, "120.05"),  # ascendante: the Métropole pays Beaumont
        settlement(a, epci, "0.00"),  # nothing in it: no flow
    ]
    found = {f.organisation.name: f for f in flows(settlements)}
    aubiere = found["Aubière"]
    assert (aubiere.paid, aubiere.ac_imputed, aubiere.instalments, aubiere.balance) == (
        Decimal("1000.00"),
        Decimal("600.00"),
        Decimal("250.00"),
        Decimal("150.00"),
    )
    assert found["Beaumont"].received == Decimal("120.05")
    positions = {p.party.name: p.net for p in engine.net_positions(settlements)}
    assert {name: f.net for name, f in found.items()} == positions
    only = flows(settlements, only={2})
    assert [f.organisation.name for f in only] == ["Aubière"]


def pdf_text(content: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    images = sum(len(page.images) for page in reader.pages)
    return re.sub(r"[\u00a0\u202f]", " ", text), images


@pytest.fixture
def demo():
    run_seed_demo()
    users = get_user_model().objects
    return {
        name: users.get(username=name) for name in ("finances", "gestionnaire", "lecteur.aubiere")
    }


def test_the_report_pdf_gives_each_communes_net_flow_as_the_dashboard_and_draws_its_charts(
    client, demo
):
    client.force_login(demo["finances"])
    dashboard = client.get(f"/couts/tableau-de-bord/{YEAR}/")
    positions = {p.party.siren: p for p in dashboard.context["positions"]}
    communes = [p for siren, p in positions.items() if siren != "246300701"]
    assert len(communes) >= 10  # the demo year has flows for many communes
    response = client.get(f"/couts/rapport/{YEAR}/pdf/")
    assert response["Content-Type"] == "application/pdf"
    text, images = pdf_text(response.content)
    for position in communes:
        amount = euros(position.net).replace("\u00a0", " ")
        # the flows table's row: the name, then its amounts, the net last
        row = [
            line.rstrip()
            for line in text.splitlines()
            if line.startswith(position.party.name + " ") and line.rstrip().endswith(" €")
        ]
        assert len(row) == 1, (position.party.name, row)
        assert row[0].endswith(" " + amount), (row, amount)
    assert images >= 3  # flows, scheme progress, staff


def test_the_report_page_shows_the_scheme_flows_staff_and_ended_conventions(client, demo):
    client.force_login(demo["gestionnaire"])
    response = client.get(f"/couts/rapport/{YEAR}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Schéma de mutualisation des services 2026-2032" in page
    assert "Étendre le service commun d&#x27;instruction du droit des sols" in page
    assert page.count('<img class="chart') == 3
    assert "Maintenance du patrimoine bâti" in page  # ends on 31/12/2026
    assert "Contrôle de conformité" in page


def test_a_commune_reader_reads_their_communes_part_only(client, demo):
    client.force_login(demo["lecteur.aubiere"])
    response = client.get(f"/couts/rapport/{YEAR}/")
    assert response.status_code == 200
    flows_shown = response.context["flows"]
    assert [f.organisation.siren for f in flows_shown] == [AUBIERE]
    assert response.context["findings"] == []
    progress = response.context["progress"]
    for horizon in progress.horizons:
        for entry in horizon.actions:
            assert [c.name for c in entry.communes] == ["Aubière"]
    page = response.content.decode()
    assert "Clermont-Ferrand" not in page
    assert "Contrôle de conformité" not in page
    text, _ = pdf_text(client.get(f"/couts/rapport/{YEAR}/pdf/").content)
    assert "Aubière" in text
    assert "Clermont-Ferrand" not in text


def test_naming_another_territory_in_the_address_answers_404(client, personas):
    from tests.factories import EpciFactory

    other = EpciFactory(name="Communauté voisine")
    client.force_login(personas.manager)
    assert client.get(f"/couts/rapport/{YEAR}/?territoire={other.siren}").status_code == 404
    assert client.get(f"/couts/rapport/{YEAR}/pdf/?territoire={other.siren}").status_code == 404
    client.force_login(personas.outsider)
    assert client.get(f"/couts/rapport/{YEAR}/").status_code == 403


def test_a_year_without_conventions_reports_nothing_to_show(client, personas):
    client.force_login(personas.finance)
    response = client.get(f"/couts/rapport/{YEAR}/")
    page = response.content.decode()
    assert "Aucun schéma de mutualisation ne couvre cet exercice." in page
    assert "Aucun flux pour cet exercice." in page
    assert "<img" not in page
    text, images = pdf_text(client.get(f"/couts/rapport/{YEAR}/pdf/").content)
    assert "Aucune convention appliquée pendant l'exercice." in text
    assert images == 0


def test_the_report_says_who_shares_what_as_the_adhesion_matrix(client, demo):
    client.force_login(demo["gestionnaire"])
    response = client.get(f"/couts/rapport/{YEAR}/")
    entries = {e["service"].name: e for e in response.context["adhesions"]}
    si = entries["Systèmes d'information"]
    assert [c.name for c in si["adherents"]] == ["Aubière", "Beaumont", "Cébazat"]
    assert [c.name for c in si["projects"]] == ["Le Cendre"]
    assert response.context["key_figures"]["communes"] == 21


def test_an_end_still_ahead_is_announced_and_successors_cost_no_query_each(
    django_assert_max_num_queries, territory
):

    from conventions.models import Convention, ConventionService, Status
    from costing.report import ended_during
    from tests.factories import ConventionFactory, ServiceFactory, TermsFactory

    service = ServiceFactory()

    def convention(start, end, status=Status.IN_FORCE):
        made = ConventionFactory(territory=territory.epci, start_date=start, status=status)
        TermsFactory(convention=made, end_date=end)
        ConventionService.objects.create(
            convention=made, service=service, unit_type=service.unit_type
        )
        return made

    ending = [convention(date(2026, 1, 1), date(2026, 12, 31)) for _ in range(3)]
    follower = convention(date(2027, 1, 1), date(2029, 12, 31), status=Status.DRAFT)
    conventions = Convention.objects.filter(territory=territory.epci)
    with django_assert_max_num_queries(6):
        found = ended_during(conventions, 2026, today=date(2026, 11, 30))
    assert [e.convention for e in found] == sorted(ending, key=lambda c: c.reference)
    assert {e.how for e in found} == {"Arrive à échéance"}
    assert all(e.followed_by == [follower] for e in found)
    assert ended_during(conventions, 2026, today=date(2027, 1, 2))[0].how == "Échue"


def test_the_dashboard_and_the_reimbursements_lead_to_the_years_report(client, personas):
    client.force_login(personas.finance)
    target = f'href="/couts/rapport/{YEAR}/"'
    assert target in client.get(f"/couts/tableau-de-bord/{YEAR}/").content.decode()
    assert target in client.get(f"/couts/remboursements/{YEAR}/").content.decode()


@pytest.mark.parametrize("role", ["FINANCE", "COMMUNE_READER"])
def test_the_report_reads_as_many_queries_for_few_or_many_conventions(client, billed, role):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.costing.conftest import cost_base, more_billed_conventions
    from tests.factories import MembershipFactory, SchemeActionFactory, SchemeFactory, UserFactory

    t = billed.territory
    user = UserFactory(username="rapport.compte")
    MembershipFactory(
        user=user, organisation=t.epci if role == "FINANCE" else t.commune_a, role=role
    )
    action = SchemeActionFactory(scheme=SchemeFactory(territory=t.epci))
    action.communes.set([t.commune_a, t.commune_b])
    action.conventions.set([billed.convention])
    cost_base(billed.service)
    client.force_login(user)

    def queries(path):
        client.get(path)  # computes and stores the year's results if they are stale
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured.captured_queries)

    path = f"/couts/rapport/{YEAR}/"
    few = queries(path)
    action.conventions.add(*more_billed_conventions(billed, 4))
    assert queries(path) == few


def test_long_lists_of_names_are_given_as_counts(territory):
    from django.template.loader import render_to_string

    from costing.report import NAMES_LISTED
    from tests.factories import OrganisationFactory

    many = [OrganisationFactory(name=f"Commune {i:02d}") for i in range(NAMES_LISTED + 1)]
    few = many[:2]
    page = render_to_string(
        "costing/_annual_report_names.html", {"organisations": many, "names_listed": NAMES_LISTED}
    )
    assert f"{NAMES_LISTED + 1}</strong> communes (voir la matrice des adhésions)" in page
    assert "Commune 00" not in page
    page = render_to_string(
        "costing/_annual_report_names.html", {"organisations": few, "names_listed": NAMES_LISTED}
    )
    assert "Commune 00, Commune 01" in page


def test_a_chart_is_drawn_once_for_the_same_figures_and_anew_when_they_change(
    client, billed, personas, monkeypatch
):
    """Drawing the charts was a quarter of the report's time (1.2 s at a tenth of France):
    a chart is kept, named by what it plots, and drawn again only when its figures change."""
    from django.core.cache import cache

    from costing import report
    from costing.models import UsageRecord

    cache.clear()
    drawn = []
    draw = report.png
    monkeypatch.setattr(report, "png", lambda figure: drawn.append(figure) or draw(figure))
    client.force_login(personas.finance)
    path = f"/couts/rapport/{YEAR}/"
    first = client.get(path)
    assert first.status_code == 200
    assert drawn  # the flows chart at least
    charts = first.context["charts"]
    again = client.get(path)
    assert again.context["charts"] == charts
    assert len(drawn) == len([c for c in charts.values() if c])  # not drawn a second time
    record = UsageRecord.objects.filter(convention=billed.convention).first()
    record.units *= 2
    record.quantity *= 2
    record.save()
    changed = client.get(path)
    assert changed.context["charts"]["flows"] != charts["flows"]
    assert len(drawn) == 2


def test_the_report_draws_its_charts_when_the_cache_is_out_of_reach(
    client, billed, personas, monkeypatch
):
    """The cache only spares drawing: a cache server down (Redis) must not take the report
    with it."""
    from costing import report

    def unreachable(*args, **kwargs):
        raise ConnectionError("Redis injoignable")

    monkeypatch.setattr(report.cache, "get", unreachable)
    monkeypatch.setattr(report.cache, "set", unreachable)
    client.force_login(personas.finance)
    response = client.get(f"/couts/rapport/{YEAR}/")
    assert response.status_code == 200
    assert response.context["charts"]["flows"].startswith("data:image/png;base64,")


def test_the_conventions_applied_name_the_parties_and_services_of_the_signed_acts(territory):
    """The report to the council lists each convention's parties and services during the year
    as its signed acts made them: the commune and the service a draft avenant would add are a
    project, not yet parties to the convention applied."""
    from conventions.models import Amendment, Convention, Party, PartyRole
    from costing.report import conventions_applied
    from tests.conventions.test_adhesions import convention_of
    from tests.factories import ServiceFactory

    si = ServiceFactory(provider=territory.epci, name="Systèmes d'information")
    convention = convention_of(territory.epci, si, [territory.commune_a])
    draft = Amendment.objects.create(
        convention=convention, number=1, object="Entrée de B", effective_from=date(YEAR, 7, 1)
    )
    Party.objects.create(
        convention=convention,
        organisation=territory.commune_b,
        role=PartyRole.BENEFICIARY,
        joined_by=draft,
    )
    paie = ServiceFactory(provider=territory.epci, name="Paie")
    convention.services.create(service=paie, unit_type=paie.unit_type, added_by=draft)

    [row] = conventions_applied(Convention.objects.filter(pk=convention.pk), YEAR)
    assert row["organisations"] == sorted([territory.epci.name, territory.commune_a.name])
    assert row["party_count"] == 2
    assert row["services"] == ["Systèmes d'information"]
