"""Issue 11: no query per row anywhere. Each main page, read by finance (and by a commune reader
where one may open it), issues as many queries with many conventions, services, communes,
cost bases, usage records, acomptes, agents and scheme actions as with one of each; the rows
added are on the page, so the equal counts are not those of an empty table."""

from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conventions.models import (
    AgentAssignment,
    AgentRegime,
    ConventionService,
    CouncilOpinion,
    Party,
    PartyRole,
    SchemeOpinion,
    SchemeStatus,
    Status,
    Terms,
    UsageForecast,
)
from costing import statements
from costing.models import (
    Instalment,
    InstalmentStatus,
    Statement,
    StatementStatus,
)
from tests.conftest import log_in
from tests.costing.conftest import cost_base, issue_after_review
from tests.factories import (
    ConventionFactory,
    EpciMembershipFactory,
    OrganisationFactory,
    SchemeActionFactory,
    SchemeFactory,
    ServiceFactory,
    TermsFactory,
    UnitCostFactory,
    UsageRecordFactory,
)

pytestmark = pytest.mark.django_db

YEAR = 2026
ADDED = 4
# Within the dashboard's 180 days of échéances, seen from January 2027 (``billed``'s today).
ENDING = date(2027, 3, 31)
# Transmitted to the communes: their readers see it.
TRANSMITTED = {"status": SchemeStatus.CONSULTATION, "submitted_on": date(YEAR, 2, 1)}


def agent(convention, employer, ref):
    return AgentAssignment.objects.create(
        convention=convention,
        agent_ref=ref,
        job_title="Instructeur",
        employer=employer,
        regime=AgentRegime.MAD_BY_LAW,
        share_percent=Decimal("50"),
        functional_authority="Le maire",
        hierarchical_authority="Le président",
        agent_consent=True,
        start_date=date(YEAR, 1, 1),
    )


def opinion(scheme, commune):
    return SchemeOpinion.objects.create(
        scheme=scheme, commune=commune, date=date(YEAR, 3, 1), opinion=CouncilOpinion.FAVOURABLE
    )


def instalment(convention, payer, payee, rank=1, **state):
    return Instalment.objects.create(
        convention=convention,
        payer=payer,
        payee=payee,
        year=YEAR,
        rank=rank,
        due_date=date(YEAR, 6, 30),
        amount=Decimal("100.00"),
        **state,
    )


TITRE = {"status": InstalmentStatus.TITRE_ISSUED, "titre_number": "T-2026-1"}


def prepare_and_issue_half():
    """The year's drafts prepared, every other one issued (their rows read otherwise)."""
    statements.statements_prepare(YEAR)
    for draft in Statement.objects.filter(status=StatementStatus.DRAFT).order_by("pk")[::2]:
        issue_after_review(draft)


@pytest.fixture
def world(billed):
    """``billed`` (the EPCI's service to communes A and B) with one of each thing the pages
    list: a cost base, agents of the EPCI and of a commune, acomptes called and
    titled, an échéance within 180 days, a transmitted scheme with an action and a council's
    opinion, the statements (half of them issued)."""
    t = billed.territory
    cost_base(billed.service)
    Terms.objects.filter(convention=billed.convention).update(end_date=ENDING)
    agent(billed.convention, t.epci, "AG-INITIAL")
    agent(billed.convention, t.commune_a, "AG-INITIAL-A")
    instalment(billed.convention, t.commune_a, t.epci)
    instalment(billed.convention, t.commune_a, t.epci, rank=2, **TITRE)
    scheme = SchemeFactory(territory=t.epci, title="Schéma initial", **TRANSMITTED)
    action = SchemeActionFactory(scheme=scheme, title="Action initiale", service=billed.service)
    action.communes.set([t.commune_a, t.commune_b])
    action.conventions.set([billed.convention])
    opinion(scheme, t.commune_a)
    prepare_and_issue_half()
    return SimpleNamespace(billed=billed, territory=t, scheme=scheme)


def grow(world, count=ADDED) -> SimpleNamespace:
    """``count`` more of each: communes of the EPCI (each with its council's opinion on the
    scheme), each with its own service (notified unit cost, cost base), convention with commune
    A ending soon (usage, agents, acomptes), scheme action and scheme; then the year's
    statements prepared again, half the drafts issued."""
    t = world.territory
    added = SimpleNamespace(conventions=[], services=[], communes=[], actions=[], schemes=[])
    for i in range(count):
        commune = OrganisationFactory(name=f"Commune ajoutée {i}")
        EpciMembershipFactory(member=commune, epci=t.epci, valid_from=date(2020, 1, 1))
        service = ServiceFactory(provider=t.epci, name=f"Service ajouté {i}")
        UnitCostFactory(service=service, year=YEAR, amount=Decimal("50.00") + i)
        cost_base(service)
        convention = ConventionFactory(
            reference=f"CONV-AJOUT-{i}",
            territory=t.epci,
            status=Status.IN_FORCE,
            signature_date=date(2025, 12, 20),
        )
        Party.objects.create(convention=convention, organisation=t.epci, role=PartyRole.PROVIDER)
        for beneficiary in (t.commune_a, commune):
            Party.objects.create(
                convention=convention, organisation=beneficiary, role=PartyRole.BENEFICIARY
            )
        line = ConventionService.objects.create(
            convention=convention, service=service, unit_type=service.unit_type
        )
        terms = TermsFactory(convention=convention, end_date=ENDING)
        for beneficiary in (t.commune_a, commune):
            UsageForecast.objects.create(
                terms=terms, service=line, beneficiary=beneficiary, year=YEAR, units=Decimal("90")
            )
            for month in (3, 4):
                UsageRecordFactory(
                    convention=convention,
                    beneficiary=beneficiary,
                    service=service,
                    year=YEAR,
                    month=month,
                )
        agent(convention, t.epci, f"AG-AJOUT-{i}")
        agent(convention, commune, f"AG-AJOUT-{i}-COMMUNE")
        instalment(convention, t.commune_a, t.epci)
        instalment(convention, commune, t.epci, **TITRE)
        action = SchemeActionFactory(
            scheme=world.scheme, title=f"Action ajoutée {i}", service=service
        )
        action.communes.set([t.commune_a, commune])
        action.conventions.set([convention])
        opinion(world.scheme, commune)
        scheme = SchemeFactory(  # one scheme per territory and first year
            territory=t.epci, title=f"Schéma ajouté {i}", first_year=YEAR + 1 + i, **TRANSMITTED
        )
        added.conventions.append(convention.reference)
        added.services.append(service.name)
        added.communes.append(commune.name)
        added.actions.append(action.title)
        added.schemes.append(scheme.title)
    prepare_and_issue_half()
    return added


def shown_by_all(*kinds):
    return {"finances": kinds, "lecteur.a": kinds}


# Each page: its address, and per persona the kinds of rows added that it lists.
PAGES = {
    "costing:cost-bases": (
        lambda w: reverse("costing:cost-bases", args=[YEAR]),
        shown_by_all("services"),
    ),
    "costing:usage-list": (
        lambda w: reverse("costing:usage-list", args=[YEAR]),
        {"finances": ("conventions", "services")},
    ),
    "costing:instalments": (
        lambda w: reverse("costing:instalments", args=[YEAR]),
        {"finances": ("conventions", "communes"), "lecteur.a": ("conventions",)},
    ),
    "costing:statements": (
        lambda w: reverse("costing:statements", args=[YEAR]),
        {"finances": ("conventions", "communes"), "lecteur.a": ("conventions",)},
    ),
    "costing:dashboard": (
        lambda w: reverse("costing:dashboard", args=[YEAR]),
        {"finances": ("services", "communes", "conventions")},
    ),
    "costing:reimbursements": (
        lambda w: reverse("costing:reimbursements", args=[YEAR]),
        {"finances": ("conventions", "communes", "services"), "lecteur.a": ("conventions",)},
    ),
    "conventions:staff": (
        lambda w: reverse("conventions:staff", args=[YEAR]),
        {"finances": ("conventions", "communes"), "lecteur.a": ("conventions", "communes")},
    ),
    "conventions:adhesions": (
        lambda w: reverse("conventions:adhesions", args=[YEAR]),
        {"finances": ("services", "communes"), "lecteur.a": ("services",)},
    ),
    "conventions:schemes": (
        lambda w: reverse("conventions:schemes"),
        shown_by_all("schemes"),
    ),
    # The scheme's page holds its progress (no page of its own).
    "conventions:scheme": (
        lambda w: reverse("conventions:scheme", args=[w.scheme.pk]),
        {
            "finances": ("actions", "conventions", "communes"),
            "lecteur.a": ("actions", "conventions"),
        },
    ),
}

CASES = [(name, persona) for name, (_url, shown) in PAGES.items() for persona in shown]


@pytest.mark.parametrize(("name", "persona"), CASES)
def test_the_page_issues_as_many_queries_with_many_rows_as_with_one(
    client, world, personas, name, persona
):
    url_of, shown = PAGES[name]
    assert log_in(client, persona)

    def queries(url):
        assert client.get(url).status_code == 200  # computes and stores what is stale
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return [query["sql"] for query in captured.captured_queries], response.content.decode()

    url = url_of(world)
    few, _html = queries(url)
    added = grow(world)
    many, html = queries(url)
    for kind in shown[persona]:
        missing = [row for row in getattr(added, kind) if row not in html]
        assert not missing, (kind, missing)
    assert len(many) == len(few), "\n".join(many)
