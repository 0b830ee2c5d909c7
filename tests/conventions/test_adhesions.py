"""The adhesion matrix (issue 14): which member commune takes part in which service in a year,
in the service (conventions/services/adhesions.py), on its page and in its exports."""

import csv
import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from conventions.models import (
    ActionStatus,
    Amendment,
    Convention,
    ConventionKind,
    ConventionService,
    Party,
    PartyRole,
    Status,
    Termination,
)
from conventions.services.adhesions import AdhesionStatus, adhesion_matrix
from conventions.services.staff import staff_made_available
from mutualisation.models import Organisation, Service
from tests.conftest import log_in, run_seed_demo
from tests.factories import (
    ConventionFactory,
    EpciFactory,
    EpciMembershipFactory,
    MembershipFactory,
    OrganisationFactory,
    SchemeActionFactory,
    SchemeFactory,
    ServiceFactory,
    TermsFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ADHERENT, PROJECT, NONE = AdhesionStatus.ADHERENT, AdhesionStatus.PROJECT, AdhesionStatus.NONE


def convention_of(
    epci, service, communes, *, status=Status.IN_FORCE, start=date(2026, 1, 1), **terms
):
    """A mise à disposition from the EPCI to ``communes`` for ``service``, in ``status``."""
    convention = ConventionFactory(territory=epci, status=status, start_date=start)
    Party.objects.create(convention=convention, organisation=epci, role=PartyRole.PROVIDER)
    for commune in communes:
        Party.objects.create(
            convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
        )
    ConventionService.objects.create(
        convention=convention, service=service, unit_type=service.unit_type
    )
    TermsFactory(convention=convention, **terms)
    return convention


@pytest.fixture
def si(territory):
    return ServiceFactory(provider=territory.epci, name="Systèmes d'information", code="si")


def statuses(matrix, service):
    return {row.commune.name: matrix.cell(row.commune, service).status for row in matrix.rows}


# --- the rule of each cell ---------------------------------------------------------------------


def test_a_party_to_a_convention_in_force_over_the_year_adheres(territory, si):
    convention = convention_of(territory.epci, si, [territory.commune_a])
    matrix = adhesion_matrix(territory.epci, 2026)
    assert statuses(matrix, si) == {"Commune A": ADHERENT, "Commune B": NONE}
    cell = matrix.cell(territory.commune_a, si)
    assert cell.label == "Adhérente"
    [link] = cell.conventions
    assert (link.reference, link.kind_label, link.status_label, link.role_label) == (
        convention.reference,
        "Mise à disposition de services",
        "En vigueur",
        "Bénéficiaire",
    )
    assert [(t.service, t.adherents, t.projects) for t in matrix.totals] == [(si, 1, 0)]


def test_a_member_of_a_service_commun_adheres(territory, si):
    convention = ConventionFactory(
        territory=territory.epci, status=Status.SIGNED, kind=ConventionKind.SERVICE_COMMUN
    )
    for organisation in (territory.epci, territory.commune_b):
        Party.objects.create(convention=convention, organisation=organisation, role="MEMBER")
    ConventionService.objects.create(convention=convention, service=si, unit_type=si.unit_type)
    TermsFactory(convention=convention)
    matrix = adhesion_matrix(territory.epci, 2026)
    assert statuses(matrix, si) == {"Commune A": NONE, "Commune B": ADHERENT}
    assert matrix.cell(territory.commune_b, si).conventions[0].role_label == (
        "Membre du service commun"
    )


@pytest.mark.parametrize("status", [Status.DRAFT, Status.CONSULTATION, Status.DELIBERATED])
def test_a_convention_not_signed_yet_is_a_project(territory, si, status):
    convention_of(territory.epci, si, [territory.commune_a], status=status)
    matrix = adhesion_matrix(territory.epci, 2026)
    assert statuses(matrix, si) == {"Commune A": PROJECT, "Commune B": NONE}
    assert matrix.totals[0].adherents == 0
    assert matrix.totals[0].projects == 1


def test_a_signed_convention_starting_after_the_year_is_a_project_then_an_adhesion(territory, si):
    convention_of(
        territory.epci, si, [territory.commune_a], status=Status.SIGNED, start=date(2027, 1, 1)
    )
    assert statuses(adhesion_matrix(territory.epci, 2026), si)["Commune A"] == PROJECT
    assert statuses(adhesion_matrix(territory.epci, 2027), si)["Commune A"] == ADHERENT


def test_a_terminated_convention_counts_in_the_year_it_ended_only(territory, si):
    convention = convention_of(territory.epci, si, [territory.commune_a], status=Status.TERMINATED)
    Termination.objects.create(
        convention=convention,
        notified_on=date(2026, 3, 1),
        effective_on=date(2026, 6, 30),
        requested_by=territory.commune_a,
        reason="Reprise en régie.",
        notice_respected=True,
        agents_outcome="Aucun agent.",
    )
    assert statuses(adhesion_matrix(territory.epci, 2026), si)["Commune A"] == ADHERENT
    assert statuses(adhesion_matrix(territory.epci, 2027), si)["Commune A"] == NONE


def test_an_expired_convention_counts_in_the_years_it_covered(territory, si):
    convention_of(
        territory.epci,
        si,
        [territory.commune_a],
        status=Status.EXPIRED,
        end_date=date(2026, 12, 31),
    )
    assert statuses(adhesion_matrix(territory.epci, 2026), si)["Commune A"] == ADHERENT
    assert statuses(adhesion_matrix(territory.epci, 2027), si)["Commune A"] == NONE


def test_a_commune_joining_by_an_avenant_not_signed_yet_is_a_project(territory, si):
    convention = convention_of(territory.epci, si, [territory.commune_a])
    avenant = Amendment.objects.create(
        convention=convention, number=1, object="Entrée de B.", effective_from=date(2026, 7, 1)
    )
    Party.objects.create(
        convention=convention,
        organisation=territory.commune_b,
        role=PartyRole.BENEFICIARY,
        joined_by=avenant,
    )
    assert statuses(adhesion_matrix(territory.epci, 2026), si) == {
        "Commune A": ADHERENT,
        "Commune B": PROJECT,
    }


def test_a_convention_of_another_service_says_nothing_of_this_one(territory, si):
    paie = ServiceFactory(provider=territory.epci, name="Paie")
    convention_of(territory.epci, paie, [territory.commune_a])
    matrix = adhesion_matrix(territory.epci, 2026)
    assert statuses(matrix, si)["Commune A"] == NONE
    assert statuses(matrix, paie)["Commune A"] == ADHERENT


@pytest.mark.parametrize(
    ("action_status", "expected"),
    [
        (ActionStatus.PLANNED, PROJECT),
        (ActionStatus.PREPARING, PROJECT),
        # Realised for other communes, this one has not joined yet.
        (ActionStatus.DONE, PROJECT),
        (ActionStatus.ABANDONED, NONE),
    ],
)
def test_an_action_of_the_scheme_naming_the_commune_is_a_project(
    territory, si, action_status, expected
):
    scheme = SchemeFactory(territory=territory.epci)
    action = SchemeActionFactory(scheme=scheme, service=si, status=action_status)
    action.communes.set([territory.commune_a])
    matrix = adhesion_matrix(territory.epci, 2026)
    assert statuses(matrix, si) == {"Commune A": expected, "Commune B": NONE}
    cell = matrix.cell(territory.commune_a, si)
    assert cell.action == (action if expected == PROJECT else None)


def test_an_adhesion_outweighs_the_schemes_action(territory, si):
    convention_of(territory.epci, si, [territory.commune_a])
    action = SchemeActionFactory(scheme=SchemeFactory(territory=territory.epci), service=si)
    action.communes.set([territory.commune_a])
    cell = adhesion_matrix(territory.epci, 2026).cell(territory.commune_a, si)
    assert (cell.status, cell.action) == (ADHERENT, action)


def test_rows_are_the_member_communes_of_the_year_in_french_order(territory, si):
    left = OrganisationFactory(name="Ancienne commune")
    EpciMembershipFactory(
        member=left,
        epci=territory.epci,
        valid_from=date(2018, 1, 1),
        valid_until=date(2025, 12, 31),
    )
    accented = OrganisationFactory(name="Écully")
    EpciMembershipFactory(member=accented, epci=territory.epci, valid_from=date(2018, 1, 1))
    other_epci = EpciFactory()
    ServiceFactory(provider=other_epci, name="Service d'ailleurs")
    assert [c.name for c in adhesion_matrix(territory.epci, 2026).communes] == [
        "Commune A",
        "Commune B",
        "Écully",
    ]
    assert "Ancienne commune" in [c.name for c in adhesion_matrix(territory.epci, 2025).communes]
    assert adhesion_matrix(territory.epci, 2026).services == [si]


def test_a_commune_readers_matrix_has_their_communes_row_only(territory, si):
    convention_of(territory.epci, si, [territory.commune_a, territory.commune_b])
    matrix = adhesion_matrix(territory.epci, 2026, communes={territory.commune_b.pk})
    assert [row.commune for row in matrix.rows] == [territory.commune_b]
    assert matrix.totals[0].adherents == 1


def build(epci, size):
    """``size`` communes and services, a convention in force and a draft one per service, and
    a scheme action naming every commune."""
    communes = [OrganisationFactory() for _ in range(size)]
    for commune in communes:
        EpciMembershipFactory(member=commune, epci=epci, valid_from=date(2020, 1, 1))
    scheme = SchemeFactory(territory=epci)
    for _ in range(size):
        service = ServiceFactory(provider=epci)
        convention_of(epci, service, communes[: size // 2])
        convention_of(epci, service, communes[size // 2 :], status=Status.DRAFT)
        action = SchemeActionFactory(scheme=scheme, service=service)
        action.communes.set(communes)


@pytest.mark.parametrize("size", [2, 12])
def test_the_matrix_takes_the_same_few_queries_whatever_its_size(size, django_assert_num_queries):
    epci = EpciFactory()
    build(epci, size)
    with django_assert_num_queries(8):
        matrix = adhesion_matrix(epci, 2026)
    assert len(matrix.rows) == size
    assert sum(t.adherents for t in matrix.totals) == size * (size // 2)


# --- the page and its exports -------------------------------------------------------------------


@pytest.fixture
def both(territory, personas, si):
    """A convention in force for each commune, and what each reader may read."""
    return (
        convention_of(territory.epci, si, [territory.commune_a]),
        convention_of(territory.epci, si, [territory.commune_b]),
    )


def page(client, username, **query):
    assert log_in(client, username)
    return client.get(reverse("conventions:adhesions", kwargs={"year": 2026}), query)


def export(client, fmt, **query):
    return client.get(
        reverse("conventions:adhesions-export", kwargs={"year": 2026, "fmt": fmt}), query
    )


def csv_rows(response):
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


def xlsx_rows(response):
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    return [list(row) for row in book.active.iter_rows(values_only=True)]


def test_the_territorys_staff_see_every_communes_row_with_links(client, territory, both):
    convention_a, convention_b = both
    response = page(client, "gestionnaire")
    assert response.status_code == 200
    html = response.content.decode()
    for commune in ("Commune A", "Commune B"):
        assert f'<th scope="row">{commune}</th>' in html
    for convention in both:
        assert f'href="{convention.get_absolute_url()}"' in html
    assert html.count('text-bg-success">Adhérente<') == 2
    assert '<th scope="col">Systèmes d&#x27;information</th>' in html


@pytest.mark.parametrize(("username", "own", "other"), [("lecteur.a", 0, 1), ("lecteur.b", 1, 0)])
def test_a_commune_reader_sees_their_communes_row_only(
    client, territory, both, username, own, other
):
    names = ("Commune A", "Commune B")
    html = page(client, username).content.decode()
    assert f'<th scope="row">{names[own]}</th>' in html
    assert f'<th scope="row">{names[other]}</th>' not in html
    assert both[own].reference in html
    assert both[other].reference not in html
    for rows in (csv_rows(export(client, "csv")), xlsx_rows(export(client, "xlsx"))):
        assert [row[0] for row in rows] == ["Commune", names[own], "Communes adhérentes"]
        assert rows[1][2] == f"Adhérente ({both[own].reference})"
        assert both[other].reference not in str(rows)


def test_the_exports_have_the_pages_rows_and_columns(client, territory, both, si):
    paie = ServiceFactory(provider=territory.epci, name="Paie", code="paie")
    assert log_in(client, "finances")
    rows = xlsx_rows(export(client, "xlsx"))
    assert rows == [
        ["Commune", "Code INSEE", "Paie", "Systèmes d'information"],
        [
            "Commune A",
            territory.commune_a.insee_code,
            "Non adhérente",
            f"Adhérente ({both[0].reference})",
        ],
        [
            "Commune B",
            territory.commune_b.insee_code,
            "Non adhérente",
            f"Adhérente ({both[1].reference})",
        ],
        ["Communes adhérentes", None, 0, 2],
    ]
    response = export(client, "csv", service=paie.code)
    assert response["Content-Disposition"] == 'attachment; filename="adhesions-2026.csv"'
    assert csv_rows(response)[0] == ["Commune", "Code INSEE", "Paie"]


def test_the_page_filters_by_status_and_service(client, territory, personas, si):
    convention_of(territory.epci, si, [territory.commune_a])
    html = page(client, "gestionnaire", statut="NONE").content.decode()
    assert '<th scope="row">Commune B</th>' in html
    assert '<th scope="row">Commune A</th>' not in html
    html = page(client, "gestionnaire", service="inconnu").content.decode()
    assert '<th scope="col">Systèmes d&#x27;information</th>' not in html


def test_the_page_shows_the_communes_page_by_page_and_totals_every_commune(
    client, territory, both, monkeypatch
):
    """A territory of 125 communes and 119 services printed 15 000 cells (2.8 MB, 0.9 s): the
    page now shows its communes page by page, its totals counting every commune, its filters
    kept from page to page; the exports keep every row."""
    from conventions import views

    monkeypatch.setattr(views, "ADHESION_ROWS_PER_PAGE", 1)
    first = page(client, "gestionnaire", statut="ADHERENT").content.decode()
    assert '<th scope="row">Commune A</th>' in first
    assert '<th scope="row">Commune B</th>' not in first
    assert "Page 1 sur 2" in first
    assert 'href="?statut=ADHERENT&amp;page=2"' in first
    assert "<td><strong>2</strong></td>" in first  # both communes adhere, one shown
    second = page(client, "gestionnaire", statut="ADHERENT", page=2).content.decode()
    assert '<th scope="row">Commune B</th>' in second
    assert '<th scope="row">Commune A</th>' not in second
    rows = csv_rows(export(client, "csv"))
    assert [row[0] for row in rows] == ["Commune", "Commune A", "Commune B", "Communes adhérentes"]


def test_an_outsider_is_refused(client, personas):
    assert page(client, "exterieur").status_code == 403


def test_another_territory_is_not_found(client, territory, personas, both):
    other = EpciFactory(name="Communauté du Val")
    commune_c = OrganisationFactory(name="Commune C")
    EpciMembershipFactory(member=commune_c, epci=other, valid_from=date(2020, 1, 1))
    manager_val = UserFactory(username="gestionnaire.val")
    MembershipFactory(user=manager_val, organisation=other, role="MANAGER")
    # The first territory's staff name the second one, and the other way round: not theirs.
    assert page(client, "gestionnaire", territoire=other.siren).status_code == 404
    assert page(client, "lecteur.a", territoire=other.siren).status_code == 404
    assert export(client, "csv", territoire=other.siren).status_code == 404
    response = page(client, "gestionnaire.val")
    html = response.content.decode()
    assert '<th scope="row">Commune C</th>' in html
    assert "Commune A" not in html
    assert page(client, "gestionnaire.val", territoire=territory.epci.siren).status_code == 404


def test_an_unknown_export_format_is_not_found(client, personas):
    assert log_in(client, "gestionnaire")
    assert export(client, "pdf").status_code == 404


# --- the demo territory (issue 14's acceptance) -------------------------------------------------


def test_the_demo_territorys_adhesions_and_staff_in_2026():
    run_seed_demo()
    metro = Organisation.objects.get(siren="246300701")
    matrix = adhesion_matrix(metro, 2026)
    assert len(matrix.rows) == 21
    assert len(matrix.services) == 8
    assert matrix.communes[0].name == "Aubière"
    assert [c.name for c in matrix.communes].index("Le Cendre") > [
        c.name for c in matrix.communes
    ].index("Gerzat")

    def cell(commune, service):
        return matrix.cell(
            Organisation.objects.get(name=commune),
            Service.objects.get(territory=metro, name=service),
        )

    si = cell("Aubière", "Systèmes d'information")
    assert (si.status, si.label) == (ADHERENT, "Adhérente")
    assert si.references == [
        Convention.objects.get(
            title="Mise à disposition du service systèmes d'information"
        ).reference
    ]
    paie = cell("Ceyrat", "Gestion de la paie")
    assert (paie.status, paie.label) == (PROJECT, "En projet")
    assert paie.conventions[0].status_label == "En consultation"
    assert cell("Aubière", "Gestion de la paie").status == NONE
    cendre = cell("Le Cendre", "Systèmes d'information")
    assert (cendre.status, cendre.conventions) == (PROJECT, [])
    assert cendre.action.title == "Mutualiser l'assistance informatique des communes"
    ads = cell("Aubière", "Instruction des autorisations du droit des sols (ADS)")
    assert ads.status == ADHERENT
    assert ads.conventions[0].role_label == "Membre du service commun"
    # Clermont-Ferrand provides the road maintenance to the Métropole: it takes part.
    assert cell("Clermont-Ferrand", "Entretien de la voirie d'intérêt métropolitain").status == (
        ADHERENT
    )
    totals = {t.service.name: t.adherents for t in matrix.totals}
    assert totals["Systèmes d'information"] == 3
    assert totals["Instruction des autorisations du droit des sols (ADS)"] == 8
    assert totals["Gestion de la paie"] == 0
    # The staff the demo conventions make available in 2026: the information systems (30 % and
    # 20 %), the road maintenance (60 %), the ADS (a transfer, 50 % of an Aubière agent).
    summary = staff_made_available(2026, Convention.objects.filter(territory=metro))
    assert (summary.agents, summary.fte) == (5, Decimal("2.60"))
    assert [(t.regime, t.agents, t.fte) for t in summary.by_regime] == [
        ("TRANSFER", 1, Decimal("1.00")),
        ("MAD_BY_LAW", 4, Decimal("1.60")),
        ("MAD_INDIVIDUAL", 0, Decimal("0.00")),
    ]
    assert [(t.employer.name, t.agents, t.fte) for t in summary.by_employer] == [
        ("Aubière", 1, Decimal("0.50")),
        ("Clermont Auvergne Métropole", 3, Decimal("1.50")),
        ("Clermont-Ferrand", 1, Decimal("0.60")),
    ]


def test_a_service_named_like_a_formula_heads_the_exports_as_text(client, territory, both, si):
    """The services head the columns: a name starting with = is neutralised there too, in the
    CSV (a quote before it) and in the XLSX (a text cell, never a formula)."""
    si.name = '=HYPERLINK("https://exemple.invalid","Voir")'
    si.save()
    assert log_in(client, "finances")
    header = csv_rows(export(client, "csv"))[0]
    assert header[2] == "'" + si.name
    book = openpyxl.load_workbook(io.BytesIO(export(client, "xlsx").content))
    cell = book.active.cell(row=1, column=3)
    assert (cell.value, cell.data_type) == (si.name, "s")
