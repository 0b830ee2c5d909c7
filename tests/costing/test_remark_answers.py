"""A commune's remark on a draft: finance answers it, marks it resolved or reopens it; the commune
reads the answer and the status; nobody else sees it; a draft with an open remark is not issued."""

import html
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from costing import statements
from costing.models import StatementRemark
from mutualisation.models import Role
from tests.costing.conftest import issue_after_review
from tests.factories import EpciFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def page_text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def remarked(billed, personas):
    prepared = {s.payer.name: s for s in statements.statements_prepare(2026)}
    draft = prepared["Commune A"]
    remark = statements.remark_add(
        draft, author=personas.reader_a, text="Le recours de mars est compté deux fois."
    )
    return draft, remark


def answer_url(remark):
    return reverse("costing:statement-remark-answer", args=[remark.pk])


def test_finance_answers_a_remark_and_resolves_it_and_the_commune_reads_both(
    client, personas, remarked
):
    draft, remark = remarked
    client.force_login(personas.finance)
    response = client.post(
        answer_url(remark),
        {"answer": "Doublon supprimé : le projet est recalculé.", "resolved": "on"},
        follow=True,
    )
    assert "Réponse enregistrée ; la remarque est traitée." in page_text(response)
    remark.refresh_from_db()
    assert remark.answer == "Doublon supprimé : le projet est recalculé."
    assert remark.answered_by == personas.finance
    assert remark.answered_at is not None
    assert remark.is_resolved
    assert remark.resolved_by == personas.finance
    client.force_login(personas.reader_a)
    text = page_text(client.get(reverse("costing:statement", args=[draft.pk])))
    assert "Doublon supprimé : le projet est recalculé." in text
    assert "Traitée" in text
    assert 'name="answer"' not in text  # the commune reads, it does not answer


def test_finance_reopens_a_resolved_remark_and_the_history_keeps_every_step(
    client, personas, remarked
):
    draft, remark = remarked
    statements.remark_answer(remark, user=personas.finance, answer="Corrigé.", resolved=True)
    client.force_login(personas.finance)
    response = client.post(answer_url(remark), {"answer": "Corrigé."}, follow=True)
    assert "La remarque est rouverte." in page_text(response)
    remark.refresh_from_db()
    assert not remark.is_resolved
    assert remark.resolved_by is None
    steps = list(remark.history.order_by("history_date").values_list("answer", "resolved_at"))
    assert [(answer, resolved is not None) for answer, resolved in steps] == [
        ("", False),
        ("Corrigé.", True),
        ("Corrigé.", False),
    ]
    text = page_text(client.get(reverse("costing:statement", args=[draft.pk])))
    assert "Ouverte" in text


def test_resolving_needs_an_answer_and_changing_nothing_writes_nothing(personas, remarked):
    _draft, remark = remarked
    with pytest.raises(statements.StatementRefused, match="Rédigez la réponse"):
        statements.remark_answer(remark, user=personas.finance, answer="  ", resolved=True)
    statements.remark_answer(remark, user=personas.finance, answer="Vu.", resolved=False)
    statements.remark_answer(remark, user=personas.finance, answer="Vu.", resolved=False)
    assert remark.history.count() == 2


def test_a_commune_reader_cannot_answer_or_resolve_its_own_remark(client, personas, remarked):
    _draft, remark = remarked
    client.force_login(personas.reader_a)
    response = client.post(answer_url(remark), {"answer": "Je me réponds.", "resolved": "on"})
    assert response.status_code == 403
    remark.refresh_from_db()
    assert remark.answer == ""
    assert not remark.is_resolved
    with pytest.raises(statements.StatementRefused):
        statements.remark_answer(remark, user=personas.reader_a, answer="Non.", resolved=True)


@pytest.mark.parametrize("persona", ["reader_b", "outsider"])
def test_another_commune_and_an_outsider_see_nothing_of_the_remark(
    client, personas, remarked, persona
):
    draft, remark = remarked
    client.force_login(getattr(personas, persona))
    assert client.get(reverse("costing:statement", args=[draft.pk])).status_code in (403, 404)
    for year_page in ("costing:statements", "costing:reimbursements"):
        response = client.get(reverse(year_page, args=[2026]))
        assert remark.text not in page_text(response)
    assert client.post(answer_url(remark), {"answer": "Vu."}).status_code in (403, 404)
    remark.refresh_from_db()
    assert remark.answer == ""


def test_another_territorys_finance_cannot_answer(client, personas, remarked):
    _draft, remark = remarked
    stranger = UserFactory(username="finances.ailleurs")
    MembershipFactory(user=stranger, organisation=EpciFactory(name="Ailleurs"), role=Role.FINANCE)
    client.force_login(stranger)
    assert client.post(answer_url(remark), {"answer": "Vu.", "resolved": "on"}).status_code == 404
    with pytest.raises(statements.StatementRefused, match="agents des finances du territoire"):
        statements.remark_answer(remark, user=stranger, answer="Vu.", resolved=True)
    remark.refresh_from_db()
    assert remark.answer == ""
    assert not remark.is_resolved


def test_a_draft_with_an_open_remark_is_not_issued_and_the_refusal_lists_it(
    client, personas, remarked
):
    draft, remark = remarked
    with pytest.raises(statements.StatementRefused) as refused:
        issue_after_review(draft)
    assert any(
        "La remarque de lecteur.a du" in reason
        and "Le recours de mars est compté deux fois." in reason
        for reason in refused.value.reasons
    ), refused.value.reasons
    client.force_login(personas.finance)
    text = page_text(client.get(reverse("costing:statement", args=[draft.pk])))
    assert "n'est pas traitée" in text
    statements.remark_answer(remark, user=personas.finance, answer="Corrigé.", resolved=True)
    assert issue_after_review(draft).number == "EA-2026-0001"


def test_a_batch_skips_a_draft_with_an_open_remark(personas, remarked):
    draft, _remark = remarked
    today = draft.review_until + timedelta(days=1)
    facts = statements.refusal_facts([draft], today)
    assert any("n'est pas traitée" in r for r in statements.issue_refusals(draft, facts=facts))


def test_the_remarks_of_an_issued_statement_are_closed(personas, remarked):
    draft, remark = remarked
    statements.remark_answer(remark, user=personas.finance, answer="Corrigé.", resolved=True)
    issue_after_review(draft)
    with pytest.raises(statements.StatementRefused, match="émis"):
        statements.remark_answer(remark, user=personas.finance, answer="Corrigé.", resolved=False)


def test_a_remark_left_unresolved_on_an_issued_statement_reads_closed_not_open(
    client, personas, remarked
):
    """Statements issued before issuing required every remark resolved may carry one still
    unresolved: it can no longer be answered, so it must not read « Ouverte »."""
    draft, remark = remarked
    statements.remark_answer(remark, user=personas.finance, answer="Corrigé.", resolved=True)
    issue_after_review(draft)
    StatementRemark.objects.create(
        statement=draft, author=personas.reader_a, text="Écrite avant la règle."
    )
    for user in (personas.finance, personas.reader_a):
        client.force_login(user)
        text = page_text(client.get(reverse("costing:statement", args=[draft.pk])))
        assert "Ouverte" not in text
        assert "Close sans réponse" in text
        assert text.count("Traitée") == 1


def test_the_database_refuses_an_incomplete_answer_or_resolution(personas, remarked):
    _draft, remark = remarked
    now = timezone.now()
    broken = [
        {"answer": "Sans auteur ni date."},
        {"answered_at": now, "answered_by": personas.finance},
        {"resolved_at": now},
        {"resolved_at": now, "resolved_by": personas.finance},  # resolved without an answer
        {"text": ""},
    ]
    for change in broken:
        with pytest.raises(IntegrityError), transaction.atomic():
            StatementRemark.objects.filter(pk=remark.pk).update(**change)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_starts_the_history_of_the_remarks_written_before_it(
    billed, personas, flushable_statements
):
    draft = statements.statements_prepare(2026)[0]
    before = [("costing", "0014_batch_per_territory")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        old = old_apps.get_model("costing", "StatementRemark").objects.create(
            statement_id=draft.pk, author_id=personas.reader_a.pk, text="Écrite avant."
        )
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    remark = StatementRemark.objects.get(pk=old.pk)
    (first,) = remark.history.all()
    assert (first.history_type, first.text, first.history_user) == (
        "+",
        "Écrite avant.",
        personas.reader_a,
    )
    assert first.history_date == remark.created_at


def test_the_admin_cannot_delete_a_remark_to_lift_the_block_on_issuing(client, personas, billed):
    draft = next(
        d for d in statements.statements_prepare(2026) if d.payer == billed.territory.commune_a
    )
    remark = statements.remark_add(draft, author=personas.reader_a, text="Le mois de mai manque.")
    client.force_login(personas.admin)
    response = client.post(
        reverse("admin:costing_statementremark_delete", args=[remark.pk]), {"post": "yes"}
    )
    assert response.status_code == 403
    assert StatementRemark.objects.filter(pk=remark.pk).exists()
