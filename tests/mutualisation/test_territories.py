"""Many territories in one deployment: the staff of an EPCI see and change its conventions,
services, costs and statements only; a commune party to two territories' conventions sees what
concerns it in both; numbering is per territory.

Every URL pattern of the matrix (tests/mutualisation/test_url_matrix.py) is requested by the
second territory's staff on the first territory's objects, and by the first territory's staff:
no page shows the other territory's conventions, statements or services, and no POST changes
the other territory's records.
"""

import io
import subprocess
import zipfile

import openpyxl
import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from conventions.models import (
    Convention,
    ConventionService,
    Party,
    Scheme,
    SchemeAction,
    SchemeOpinion,
    Terms,
    UsageForecast,
)
from conventions.services import records
from costing.models import CostBase, Instalment, Statement, StatementLine, UnitCost, UsageRecord
from mutualisation.models import Service
from tests.mutualisation.test_url_matrix import ROWS, request
from tests.mutualisation.url_world import OTHER_TERRITORY_MARKERS

pytestmark = pytest.mark.django_db

OTHER_STAFF = ("manager_val", "finance_val")
FIRST_STAFF = ("manager", "finance")


@pytest.fixture(scope="module")
def sessions(world, django_db_blocker):
    """Sessions of the second territory's people, added to the world's."""
    with django_db_blocker.unblock():
        for persona, user in (
            ("manager_val", world.other.users.manager),
            ("finance_val", world.other.users.finance),
            ("reader_c", world.other.users.reader_c),
        ):
            client = Client()
            client.force_login(user)
            world.sessions[persona] = client.cookies[settings.SESSION_COOKIE_NAME].value
    return world.sessions


def first_territory_markers(world):
    return (
        world.convention_a.reference,
        world.convention_b.reference,
        world.draft.reference,
        world.issued.number,
        "Mise à disposition informatique",
        "Service commun ADS",
        "Schéma de la Métropole de test",
    )


def text_of(response) -> str:
    """What a person would read in the response: HTML or CSV as text, a PDF's text, the cells of
    an XLSX, the names and PDFs' text of a ZIP."""
    content_type = response.get("Content-Type", "")
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if content_type.startswith("application/pdf"):
        return pdf_text(body)
    if "spreadsheetml" in content_type:
        book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
        return " ".join(
            str(cell) for sheet in book for row in sheet.iter_rows(values_only=True) for cell in row
        )
    if content_type.startswith("application/zip"):
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            return " ".join(
                [*archive.namelist()]
                + [pdf_text(archive.read(n)) for n in archive.namelist() if n.endswith(".pdf")]
            )
    return body.decode("utf-8", errors="replace")


def pdf_text(content: bytes) -> str:
    # A scan without text (the world's signed copy) reads as nothing.
    return subprocess.run(
        ["pdftotext", "-", "-"], input=content, capture_output=True, check=False
    ).stdout.decode()


# The conventions in force are public acts, published to everyone whatever their territory
# (open data, docs/api.md; ``?territory=`` narrows them to one EPCI).
PUBLIC_ACTS = (
    "api:open-data-conventions",
    "api:open-data-conventions-csv",
    "api:open-data-territories",
)
GET_CASES = [
    (name, persona)
    for name in ROWS
    if name not in PUBLIC_ACTS
    for persona in (*OTHER_STAFF, *FIRST_STAFF)
]


@pytest.mark.parametrize(("name", "persona"), GET_CASES, ids=[f"{n} {p}" for n, p in GET_CASES])
def test_no_page_shows_another_territorys_records(world, sessions, db, name, persona):
    url, response, _written = request(world, persona, "GET", name)
    hidden = (
        first_territory_markers(world)
        if persona in OTHER_STAFF
        else (*OTHER_TERRITORY_MARKERS, "VAL-2026-002", "EAVAL")
    )
    shown = text_of(response)
    leaked = [marker for marker in hidden if marker in shown]
    assert not leaked, f"GET {url} en tant que {persona} ({response.status_code}) montre {leaked}"


def first_territory_state(world):
    """Every record of the first territory a POST could change."""
    epci = world.epci
    conventions = Convention.objects.filter(territory=epci)
    return [
        list(model.objects.filter(**{lookup: value}).order_by("pk").values())
        for model, lookup, value in (
            (Convention, "territory", epci),
            (Party, "convention__in", conventions),
            (ConventionService, "convention__in", conventions),
            (Terms, "convention__in", conventions),
            (UsageForecast, "terms__convention__in", conventions),
            (Service, "territory", epci),
            (CostBase, "service__territory", epci),
            (UnitCost, "service__territory", epci),
            (UsageRecord, "convention__in", conventions),
            (Statement, "convention__in", conventions),
            (StatementLine, "statement__convention__in", conventions),
            (Instalment, "convention__in", conventions),
            (Scheme, "territory", epci),
            (SchemeAction, "scheme__territory", epci),
            (SchemeOpinion, "scheme__territory", epci),
        )
    ]


POST_CASES = [
    (name, persona) for name, row in ROWS.items() if row.post is not None for persona in OTHER_STAFF
]


@pytest.mark.parametrize(("name", "persona"), POST_CASES, ids=[f"{n} {p}" for n, p in POST_CASES])
def test_another_territorys_staff_change_nothing_of_this_one(world, sessions, db, name, persona):
    before = first_territory_state(world)
    url, response, _written = request(world, persona, "POST", name)
    assert first_territory_state(world) == before, f"POST {url} en tant que {persona}"


def test_territory_staff_see_their_territory_only(world, sessions):
    for persona, own, other in (
        ("manager", world.convention_a, world.other.convention_c),
        ("manager_val", world.other.convention_c, world.convention_a),
    ):
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = sessions[persona]
        page = client.get(reverse("conventions:list")).content.decode()
        assert own.reference in page
        assert other.reference not in page
        assert client.get(other.get_absolute_url()).status_code == 404


def test_a_commune_party_to_two_territories_conventions_sees_both(world, sessions):
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = sessions["reader_a"]
    page = client.get(reverse("conventions:list")).content.decode()
    assert world.convention_a.reference in page
    assert world.other.convention_a.reference in page
    assert world.other.convention_c.reference not in page
    statements = client.get(reverse("costing:statements", kwargs={"year": 2026})).content.decode()
    assert reverse("costing:statement", kwargs={"pk": world.other.draft_a.pk}) in statements
    assert client.get(world.other.convention_a.get_absolute_url()).status_code == 200
    # A's reader does not see what the second territory bills commune C.
    assert client.get(world.other.convention_c.get_absolute_url()).status_code == 404


def test_numbering_is_per_territory(world):
    assert world.other.issued.number == "EAVAL-2026-0001"
    assert world.issued.number == "EA-2026-0001"
    created = records.convention_create(
        convention=Convention(
            territory=world.other.epci,
            title="Nouvelle",
            kind="MISE_A_DISPOSITION",
            object="Objet",
            start_date=world.other.convention_c.start_date.replace(year=2031),
        ),
        terms=Terms(settlement_mode="TITRE", periodicity_months=12),
    )
    assert created.reference == "VAL-2031-001"
    first = records.convention_create(
        convention=Convention(
            territory=world.epci,
            title="Autre",
            kind="MISE_A_DISPOSITION",
            object="Objet",
            start_date=created.start_date,
        ),
        terms=Terms(settlement_mode="TITRE", periodicity_months=12),
    )
    assert first.reference == "CONV-2031-001"


def test_the_creation_form_offers_the_territorys_organisations_and_services_only(world, sessions):
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = sessions["manager_val"]
    page = client.get(reverse("conventions:create")).content.decode()
    assert "Commune C" in page
    assert "Voirie du Val" in page
    assert "Commune B" not in page
    assert "Informatique" not in page


def test_issuing_and_correcting_a_statement_is_its_territorys_staffs_work(world, sessions, db):
    """A finance officer of the first territory who also reads commune A sees the second
    territory's draft statement owed by A, but neither issues nor corrects it."""
    from mutualisation.models import Role
    from tests.factories import MembershipFactory

    finance = world.users.finance
    MembershipFactory(user=finance, organisation=world.commune_a, role=Role.COMMUNE_READER)
    client = Client()
    client.force_login(finance)
    draft = world.other.draft_a
    assert client.get(reverse("costing:statement", kwargs={"pk": draft.pk})).status_code == 200
    for action in ("costing:statement-issue", "costing:statement-correct"):
        response = client.post(reverse(action, kwargs={"pk": draft.pk}), {"reason": "Essai"})
        assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.number is None
    issued = world.other.issued
    response = client.post(reverse("costing:statement-correct", kwargs={"pk": issued.pk}))
    assert response.status_code == 404  # C's statement: nothing of A's, not visible


def test_staff_of_two_territories_choose_the_territory_of_a_new_convention(world, sessions, db):
    """Someone who works for two EPCIs (here a superuser, the platform's operator) picks the
    territory on the creation page; its numbering follows."""
    client = Client()
    client.force_login(world.users.admin)
    page = client.get(reverse("conventions:create")).content.decode()
    assert 'name="territory"' in page
    assert "Communauté d&#x27;agglomération du Val" in page
    response = client.post(
        reverse("conventions:create"),
        {
            "territory": world.other.epci.pk,
            "title": "Voirie partagée",
            "kind": "MISE_A_DISPOSITION",
            "object": "Voirie",
            "start_date": "2031-01-01",
            "terms-settlement_mode": "TITRE",
            "terms-periodicity_months": "12",
            "terms-instalment_count": "0",
            "terms-notice_months": "3",
            "parties-TOTAL_FORMS": "0",
            "parties-INITIAL_FORMS": "0",
            "services-TOTAL_FORMS": "0",
            "services-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    created = Convention.objects.get(title="Voirie partagée")
    assert (created.territory, created.reference) == (world.other.epci, "VAL-2031-001")


def test_a_batch_covers_its_territorys_statements_only(world, sessions, db):
    """The second territory's finance officer issues and exports the year in one batch: the
    first territory's drafts stay drafts, and its statements are not in the archive."""
    from costing import statements

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = sessions["finance_val"]
    response = client.post(
        reverse("costing:batch-start", kwargs={"year": 2026}), {"action": "ISSUE"}
    )
    assert response.status_code == 302
    job = statements.BatchJob.objects.latest("pk")
    job = statements.batch_run(job.pk)
    assert job.status == job.JobStatus.DONE, job.error
    world.draft_b.refresh_from_db()
    assert world.draft_b.number is None
    download = client.get(reverse("costing:batch-download", kwargs={"pk": job.pk}))
    shown = text_of(download)
    assert world.other.issued.number in shown
    assert not [m for m in first_territory_markers(world) if m in shown]
    # The first territory's finance officer does not see that batch.
    client.cookies[settings.SESSION_COOKIE_NAME] = sessions["finance"]
    assert client.get(reverse("costing:batch", kwargs={"pk": job.pk})).status_code == 404


def test_the_dashboards_alerts_name_the_territorys_conventions_only(world, sessions, db):
    """The second territory's conventions end within six months of the world's date: the first
    territory's dashboard does not list them among its deadlines."""
    from conventions.models import Terms as TermsModel

    TermsModel.objects.filter(convention__territory=world.other.epci).update(
        end_date="2027-06-30", tacit_renewal=False
    )
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = sessions["finance_val"]
    own = client.get(reverse("costing:dashboard", kwargs={"year": 2026})).content.decode()
    assert world.other.convention_c.reference in own
    client.cookies[settings.SESSION_COOKIE_NAME] = sessions["finance"]
    page = client.get(reverse("costing:dashboard", kwargs={"year": 2026})).content.decode()
    assert world.other.convention_c.reference not in page
