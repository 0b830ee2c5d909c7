"""The home page opens on « À faire »: what each role has to do, each item linking to where it
is done, scoped to what the user may see (issue 12)."""

import html
from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conventions.models import Deliberation, Party, PartyRole, Status, Vote
from costing.models import Statement, StatementRemark, UnitCost
from mutualisation.models import Role
from tests.conventions.conftest import add_deliberations
from tests.factories import (
    ConventionFactory,
    EpciFactory,
    EpciMembershipFactory,
    MembershipFactory,
    OrganisationFactory,
    ServiceFactory,
    TermsFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

TODAY = date(2026, 3, 1)


@pytest.fixture(autouse=True)
def on_the_first_of_march():
    with time_machine.travel(TODAY, tick=False):
        yield


def todo_of(client, user) -> str:
    """The « À faire » section of the user's home page."""
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    text = html.unescape(response.content.decode())
    start = text.index('id="a-faire"')
    return text[start : text.index("</section>", text.index('id="fin-a-faire"'))]


def convention_with(territory, *communes, status=Status.CONSULTATION, **terms):
    convention = ConventionFactory(territory=territory.epci, status=status)
    Party.objects.create(
        convention=convention, organisation=territory.epci, role=PartyRole.PROVIDER
    )
    for commune in communes:
        Party.objects.create(
            convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
        )
    TermsFactory(convention=convention, **terms)
    return convention


def draft_statement(convention, payer, *, review_until=date(2026, 3, 20), year=2025):
    return Statement.objects.create(
        year=year,
        convention=convention,
        payer=payer,
        payee=convention.territory,
        review_until=review_until,
        total=Decimal("100.00"),
    )


def link(url, text=None) -> str:
    return f'href="{url}"'


# --- the Métropole's manager ----------------------------------------------------------------


def test_manager_sees_the_conventions_waiting_for_deliberations(client, personas, territory):
    convention = convention_with(territory, territory.commune_a, territory.commune_b)
    add_deliberations(convention, [territory.epci])
    todo = todo_of(client, personas.manager)
    assert "Délibérations attendues" in todo
    assert link(reverse("conventions:detail", args=[convention.reference])) in todo
    assert "2 délibérations manquantes" in todo


def test_manager_sees_a_draft_without_any_deliberation_as_waiting(client, personas, territory):
    convention = convention_with(territory, territory.commune_a, status=Status.DRAFT)
    todo = todo_of(client, personas.manager)
    assert convention.reference in todo
    assert "2 délibérations manquantes" in todo


def test_manager_sees_the_conventions_blocked_by_a_rejected_deliberation(
    client, personas, territory
):
    convention = convention_with(territory, territory.commune_a)
    add_deliberations(convention, [territory.epci])
    Deliberation.objects.create(
        convention=convention,
        organisation=territory.commune_a,
        assembly="Conseil municipal",
        date=date(2026, 2, 10),
        number="REJ-1",
        vote=Vote.REJECTED,
    )
    todo = todo_of(client, personas.manager)
    assert "Conventions bloquées" in todo
    assert "Délibération rejetée par Commune A" in todo
    assert link(reverse("conventions:detail", args=[convention.reference])) in todo


def test_manager_sees_a_signed_convention_past_its_start_not_in_force_as_blocked(
    client, personas, territory
):
    convention = convention_with(territory, territory.commune_a, status=Status.SIGNED)
    todo = todo_of(client, personas.manager)
    assert "Conventions bloquées" in todo
    assert "Signée, date d'effet passée, pas encore en vigueur" in todo
    assert convention.reference in todo


def test_manager_sees_the_conventions_expiring_soon(client, personas, territory):
    convention = convention_with(
        territory,
        territory.commune_a,
        status=Status.IN_FORCE,
        end_date=TODAY + timedelta(days=30),
        notice_months=0,
    )
    todo = todo_of(client, personas.manager)
    assert "Échéances dans les 90 jours" in todo
    assert "Échéance le 31/03/2026" in todo
    assert link(reverse("conventions:detail", args=[convention.reference])) in todo


def test_manager_with_nothing_to_do_is_told_so(client, personas, territory):
    todo = todo_of(client, personas.manager)
    assert "Aucune convention n'attend de délibération." in todo
    assert "Aucune convention bloquée." in todo
    assert "Aucune échéance dans les 90 jours." in todo


# --- the finance officer --------------------------------------------------------------------


def test_finance_sees_the_notification_deadline_of_the_year(client, personas, territory):
    todo = todo_of(client, personas.finance)
    # 2026 renews the municipal councils: 30 April (settings MUTUALIS_NOTIFICATION_DEADLINE_RENEWAL)
    assert "Date limite de notification des coûts unitaires 2026 : 30 avril 2026" in todo
    assert "dans 60 jours" in todo


def test_finance_sees_the_next_years_deadline_once_this_years_has_passed(
    client, personas, territory
):
    with time_machine.travel(date(2026, 11, 29), tick=False):
        todo = todo_of(client, personas.finance)
    assert "30 avril 2026 (dépassée)" in todo
    assert "Prochaine date limite : 15 avril 2027, pour les coûts unitaires 2027" in todo


def test_finance_sees_the_unit_costs_not_yet_notified(client, personas, territory):
    pending = ServiceFactory(provider=territory.epci, name="Service informatique")
    done = ServiceFactory(provider=territory.epci, name="Service juridique")
    for service, notified_on in ((pending, None), (done, date(2026, 2, 1))):
        UnitCost.objects.create(
            service=service,
            year=2026,
            amount=Decimal("10"),
            notification_deadline=date(2026, 4, 30),
            notified_on=notified_on,
        )
    todo = todo_of(client, personas.finance)
    assert "1 coût unitaire 2026 non notifié" in todo
    assert "Service informatique" in todo
    assert "Service juridique" not in todo
    assert link(reverse("costing:cost-bases", args=[2026])) in todo


def test_finance_sees_the_drafts_to_issue_with_their_review_deadline_and_remarks(
    client, personas, territory
):
    convention = convention_with(territory, territory.commune_a, status=Status.IN_FORCE)
    statement = draft_statement(convention, territory.commune_a)
    StatementRemark.objects.create(
        statement=statement, author=personas.reader_a, text="Le nombre de jours est faux."
    )
    todo = todo_of(client, personas.finance)
    assert "1 état en projet à émettre" in todo
    assert "remarques possibles jusqu'au 20/03/2026" in todo
    assert link(reverse("costing:statement", args=[statement.pk])) in todo
    assert "1 remarque en attente de réponse" in todo


def test_a_resolved_remark_is_no_longer_counted_as_waiting_for_an_answer(
    client, personas, territory
):
    from costing import statements

    convention = convention_with(territory, territory.commune_a, status=Status.IN_FORCE)
    statement = draft_statement(convention, territory.commune_a)
    answered = StatementRemark.objects.create(
        statement=statement, author=personas.reader_a, text="Le nombre de jours est faux."
    )
    StatementRemark.objects.create(
        statement=statement, author=personas.reader_a, text="Et le mois de mai ?"
    )
    statements.remark_answer(
        answered, user=personas.finance, answer="Corrigé sur le projet.", resolved=True
    )
    todo = todo_of(client, personas.finance)
    assert "1 remarque en attente de réponse" in todo


def test_finance_does_not_see_the_manager_blocks(client, personas, territory):
    todo = todo_of(client, personas.finance)
    assert "Délibérations attendues" not in todo
    assert "Date limite de notification" in todo


# --- the commune's reader -------------------------------------------------------------------


def test_reader_sees_its_drafts_to_review_and_its_conventions_in_force(client, personas, territory):
    convention = convention_with(territory, territory.commune_a, status=Status.IN_FORCE)
    statement = draft_statement(convention, territory.commune_a)
    todo = todo_of(client, personas.reader_a)
    assert "1 état à examiner" in todo
    assert "remarques possibles jusqu'au 20/03/2026" in todo
    assert link(reverse("costing:statement", args=[statement.pk])) in todo
    assert "1 convention en vigueur" in todo
    assert link(reverse("conventions:detail", args=[convention.reference])) in todo
    assert "Date limite de notification" not in todo
    assert "Conventions bloquées" not in todo


def test_reader_a_never_sees_commune_b_items(client, personas, territory):
    convention_b = convention_with(territory, territory.commune_b, status=Status.IN_FORCE)
    statement_b = draft_statement(convention_b, territory.commune_b)
    todo = todo_of(client, personas.reader_a)
    assert convention_b.reference not in todo
    assert reverse("costing:statement", args=[statement_b.pk]) not in todo
    assert "Aucun état à examiner." in todo
    assert "Aucune convention en vigueur." in todo


def test_reader_does_not_count_an_approved_draft_as_to_review(client, personas, territory):
    convention = convention_with(territory, territory.commune_a, status=Status.IN_FORCE)
    statement = draft_statement(convention, territory.commune_a)
    Statement.objects.filter(pk=statement.pk).update(approved_at="2026-02-27T10:00:00+01:00")
    todo = todo_of(client, personas.reader_a)
    assert "Aucun état à examiner." in todo


def test_administrator_sees_the_managers_and_the_finance_blocks(client, personas, territory):
    todo = todo_of(client, personas.admin)
    assert "Conventions bloquées" in todo
    assert "Date limite de notification" in todo
    assert "États à examiner" not in todo


# --- two territories ------------------------------------------------------------------------


def test_another_territorys_staff_never_see_the_first_territorys_items(client, personas, territory):
    waiting = convention_with(territory, territory.commune_a)
    in_force = convention_with(
        territory,
        territory.commune_a,
        status=Status.IN_FORCE,
        end_date=TODAY + timedelta(days=30),
    )
    statement = draft_statement(in_force, territory.commune_a)
    StatementRemark.objects.create(statement=statement, author=personas.reader_a, text="Faux.")
    UnitCost.objects.create(
        service=ServiceFactory(provider=territory.epci, name="Service de la première"),
        year=2026,
        amount=Decimal("10"),
        notification_deadline=date(2026, 4, 30),
    )
    other = EpciFactory(name="Communauté du Val")
    EpciMembershipFactory(member=OrganisationFactory(name="Commune C"), epci=other)
    for role in (Role.MANAGER, Role.FINANCE):
        user = UserFactory(username=f"val-{role.lower()}")
        MembershipFactory(user=user, organisation=other, role=role)
        todo = todo_of(client, user)
        for marker in (
            waiting.reference,
            in_force.reference,
            reverse("costing:statement", args=[statement.pk]),
            "Service de la première",
        ):
            assert marker not in todo, (role, marker)


# --- bounded queries ------------------------------------------------------------------------

# Fewer items than a block lists, then more (the blocks then link to the whole list).
SMALL, LARGE = 2, 12


def grow(territory, personas, size):
    """``size`` of every item of every role's « À faire », for communes A and B."""
    for index in range(size):
        commune = (territory.commune_a, territory.commune_b)[index % 2]
        waiting = convention_with(territory, commune)
        add_deliberations(waiting, [territory.epci])
        rejected = convention_with(territory, commune)
        Deliberation.objects.create(
            convention=rejected,
            organisation=commune,
            assembly="Conseil municipal",
            date=date(2026, 2, 10),
            number=f"REJ-{rejected.pk}",
            vote=Vote.REJECTED,
        )
        convention_with(territory, commune, status=Status.SIGNED)
        in_force = convention_with(
            territory, commune, status=Status.IN_FORCE, end_date=TODAY + timedelta(days=30)
        )
        statement = draft_statement(in_force, commune)
        StatementRemark.objects.create(statement=statement, author=personas.reader_a, text="?")
        UnitCost.objects.create(
            service=ServiceFactory(provider=territory.epci),
            year=2026,
            amount=Decimal("10"),
            notification_deadline=date(2026, 4, 30),
        )


def home_queries(client, user) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("home")).status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("persona", "bound"),
    # The territory table's 15 queries (with the session's and the user's scope), then the
    # blocks': 7 for the conventions (blocked: 3; waiting: 2; expiring: 2 with one notice
    # period), 5 for the costs and statements, 5 for the commune's.
    [("manager", 22), ("finance", 20), ("reader_a", 20)],
)
def test_home_queries_do_not_grow_with_the_items_to_do(client, personas, territory, persona, bound):
    user = getattr(personas, persona)
    grow(territory, personas, SMALL)
    small = home_queries(client, user)
    grow(territory, personas, LARGE - SMALL)
    large = home_queries(client, user)
    assert small == large
    assert large <= bound, large
