"""E-mails: drafts ready (each commune reader once per preparation, their drafts, deadlines and
links), a remark (the territory's finance officers), an answer (the remark's author); sent after
commit only, in French, with absolute links; a user without an address is skipped."""

import base64
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail
from django.db import transaction
from django.urls import reverse

from costing import statements
from costing.models import UsageRecord
from mutualisation.models import Role
from tests.factories import EpciFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

SITE = "https://mutualis.example.fr"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def site(settings):
    settings.MUTUALIS_SITE_URL = SITE + "/"


@pytest.fixture
def addressed(personas):
    """Every persona with an address, but reader B; a second reader of A without one; a reader
    of both communes; another territory's finance officer."""
    for name in ("finance", "manager", "reader_a", "admin"):
        user = getattr(personas, name)
        user.email = f"{user.username}@example.fr"
        user.save()
    return personas


def to(address):
    return [m for m in mail.outbox if m.to == [address]]


def prepare(client, user, capture):
    client.force_login(user)
    with capture(execute=True):
        client.post(reverse("costing:statements-prepare", args=[2026]))


def test_preparing_drafts_mails_each_commune_reader_once_with_deadlines_and_links(
    client, billed, addressed, territory, django_capture_on_commit_callbacks
):
    both = UserFactory(username="lecteur.ab", email="ab@example.fr")
    for commune in (territory.commune_a, territory.commune_b):
        MembershipFactory(user=both, organisation=commune, role=Role.COMMUNE_READER)
    MembershipFactory(
        user=UserFactory(username="lecteur.a2", email=""),
        organisation=territory.commune_a,
        role=Role.COMMUNE_READER,
    )
    prepare(client, addressed.finance, django_capture_on_commit_callbacks)
    drafts = {s.payer.name: s for s in statements.current_statements(2026)}
    # one message per reader, whatever the number of drafts; readers only
    assert sorted(m.to[0] for m in mail.outbox) == ["ab@example.fr", "lecteur.a@example.fr"]
    (for_a,) = to("lecteur.a@example.fr")
    assert for_a.subject == "Projet d'état annuel 2026 à relire"
    draft_a = drafts["Commune A"]
    assert f"{SITE}/couts/etat/{draft_a.pk}/" in for_a.body
    assert f"Remarques possibles jusqu'au {draft_a.review_until:%d/%m/%Y}." in for_a.body
    assert "Bonjour lecteur.a," in for_a.body
    assert str(drafts["Commune B"].pk) + "/" not in for_a.body
    (for_both,) = to("ab@example.fr")
    assert for_both.subject == "2 projets d'état annuel 2026 à relire"
    for draft in drafts.values():
        assert f"{SITE}/couts/etat/{draft.pk}/" in for_both.body
    assert "&#x27;" not in for_both.body  # text, not HTML-escaped


def test_preparing_again_mails_only_the_readers_whose_draft_changed(
    client, billed, addressed, territory, django_capture_on_commit_callbacks
):
    MembershipFactory(
        user=UserFactory(username="lecteur.b2", email="b2@example.fr"),
        organisation=territory.commune_b,
        role=Role.COMMUNE_READER,
    )
    prepare(client, addressed.finance, django_capture_on_commit_callbacks)
    assert sorted(m.to[0] for m in mail.outbox) == ["b2@example.fr", "lecteur.a@example.fr"]

    mail.outbox.clear()
    prepare(client, addressed.finance, django_capture_on_commit_callbacks)
    assert mail.outbox == [], "nothing changed: nobody is told again"

    UsageRecord.objects.filter(beneficiary=territory.commune_b).update(
        quantity=Decimal("14"), units=Decimal("14")
    )
    prepare(client, addressed.finance, django_capture_on_commit_callbacks)
    assert [m.to[0] for m in mail.outbox] == ["b2@example.fr"]
    assert "/couts/etat/" in mail.outbox[0].body


def test_recomputing_a_draft_to_issue_it_mails_no_one(
    billed, addressed, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        statements.statements_prepare(2026)
    assert mail.outbox == []


def test_a_remark_mails_the_territorys_finance_officers_only(
    client, billed, addressed, django_capture_on_commit_callbacks
):
    stranger = UserFactory(username="finances.ailleurs", email="ailleurs@example.fr")
    MembershipFactory(user=stranger, organisation=EpciFactory(name="Ailleurs"), role=Role.FINANCE)
    draft = {s.payer.name: s for s in statements.statements_prepare(2026)}["Commune A"]
    client.force_login(addressed.reader_a)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("costing:statement-remark", args=[draft.pk]),
            {"text": "Le recours de mars <b>est</b> en double."},
        )
    assert [m.to for m in mail.outbox] == [["finances@example.fr"]]
    (message,) = mail.outbox
    assert message.subject == (
        f"Remarque de Commune A sur le projet d'état {billed.convention.reference}"
    )
    assert "Le recours de mars <b>est</b> en double." in message.body
    assert f"{SITE}/couts/etat/{draft.pk}/" in message.body


def test_an_answer_mails_the_remarks_author_with_its_status(
    client, billed, addressed, django_capture_on_commit_callbacks
):
    draft = {s.payer.name: s for s in statements.statements_prepare(2026)}["Commune A"]
    remark = statements.remark_add(draft, author=addressed.reader_a, text="Mars en double.")
    client.force_login(addressed.finance)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("costing:statement-remark-answer", args=[remark.pk]),
            {"answer": "Doublon supprimé.", "resolved": "on"},
        )
    (message,) = mail.outbox
    assert message.to == ["lecteur.a@example.fr"]
    assert message.subject.startswith("Réponse à votre remarque sur le projet d'état")
    assert "Doublon supprimé." in message.body
    assert "La remarque est marquée traitée." in message.body
    assert f"{SITE}/couts/etat/{draft.pk}/" in message.body


def test_an_author_without_an_address_is_skipped(
    billed, personas, django_capture_on_commit_callbacks
):
    draft = {s.payer.name: s for s in statements.statements_prepare(2026)}["Commune B"]
    remark = statements.remark_add(draft, author=personas.reader_b, text="Vu.")
    with django_capture_on_commit_callbacks(execute=True):
        statements.remark_answer(remark, user=personas.finance, answer="Merci.", resolved=True)
    assert mail.outbox == []


def test_nothing_is_sent_from_a_transaction_that_fails(
    billed, addressed, django_capture_on_commit_callbacks
):
    draft = {s.payer.name: s for s in statements.statements_prepare(2026)}["Commune A"]

    def failing():
        with transaction.atomic():
            statements.remark_add(draft, author=addressed.reader_a, text="Mars en double.")
            statements.statements_prepare(2026, notify=True)
            raise RuntimeError("la suite échoue")

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        failing()
    assert callbacks == []
    assert mail.outbox == []
    assert not draft.remarks.exists()


def test_a_failing_mail_server_does_not_undo_the_remark(
    client, billed, addressed, settings, django_capture_on_commit_callbacks, caplog
):
    settings.EMAIL_BACKEND = "tests.costing.test_notifications.BrokenBackend"
    draft = {s.payer.name: s for s in statements.statements_prepare(2026)}["Commune A"]
    client.force_login(addressed.reader_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("costing:statement-remark", args=[draft.pk]), {"text": "Mars en double."}
        )
    assert response.status_code == 302
    assert draft.remarks.get().text == "Mars en double."
    assert "Échec de l'envoi" in caplog.text


class BrokenBackend:
    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("serveur de messagerie injoignable")


def mail_settings(**env) -> dict:
    """The production settings' mail configuration, loaded in a fresh interpreter with ``env``."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "print(json.dumps({k: getattr(settings, k) for k in ('EMAIL_BACKEND', 'EMAIL_HOST', "
        "'EMAIL_PORT', 'EMAIL_HOST_USER', 'EMAIL_USE_TLS', 'DEFAULT_FROM_EMAIL', "
        "'MUTUALIS_SITE_URL')}))"
    )
    environment = {
        **{k: v for k, v in os.environ.items() if k not in ("EMAIL_URL", "MUTUALIS_SITE_URL")},
        "DJANGO_SETTINGS_MODULE": "mutualisation.settings",
        "DJANGO_ENV_FILE": "/dev/null",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "s" * 60,
        **env,
    }
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_mail_server_sender_and_site_address_come_from_the_environment():
    default = mail_settings()
    assert default["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (default["EMAIL_HOST"], default["EMAIL_PORT"]) == ("localhost", 25)
    assert default["MUTUALIS_SITE_URL"] == "http://localhost:8000"
    configured = mail_settings(
        EMAIL_URL="smtp+tls://mutualis:secret@smtp.example.fr:587",
        DJANGO_DEFAULT_FROM_EMAIL="mutualis@example.fr",
        MUTUALIS_SITE_URL=SITE,
    )
    assert configured == {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "smtp.example.fr",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "mutualis",
        "EMAIL_USE_TLS": True,
        "DEFAULT_FROM_EMAIL": "mutualis@example.fr",
        "MUTUALIS_SITE_URL": SITE,
    }


# --- through the broker -------------------------------------------------------------------------


@pytest.fixture
def real_broker():
    """Celery pointed at the local Redis on a queue of its own, not eager: what a deployment
    with CELERY_BROKER_URL does. Yields the Redis client and the queue's name."""
    import uuid

    import redis

    from mutualisation.celery import app as celery_app
    from tests.costing.test_batch import redis_available, reset_celery_connections

    if not redis_available():
        pytest.fail("Redis ne répond pas sur 127.0.0.1:6379 : .ci/run le démarre.")
    broker = "redis://127.0.0.1:6379/15"
    queue = f"mutualis-mail-{uuid.uuid4().hex[:8]}"
    keys = ("task_always_eager", "broker_url", "task_default_queue")
    previous = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(task_always_eager=False, broker_url=broker, task_default_queue=queue)
    reset_celery_connections()
    client = redis.Redis.from_url(broker)
    try:
        yield client, queue
    finally:
        client.delete(queue)
        celery_app.conf.update(previous)
        reset_celery_connections()


def test_with_a_broker_the_page_queues_the_mail_for_a_worker_instead_of_sending_it(
    client, billed, addressed, django_capture_on_commit_callbacks, real_broker
):
    redis_client, queue = real_broker
    prepare(client, addressed.finance, django_capture_on_commit_callbacks)
    assert mail.outbox == [], "the request does not wait for the mail server"
    (queued,) = redis_client.lrange(queue, 0, -1)
    task = json.loads(queued)["headers"]
    assert task["task"] == "costing.tasks.send_drafts_ready"

    # What the worker then runs: the same messages as without a broker.
    from costing import tasks

    ids = json.loads(base64.b64decode(json.loads(queued)["body"]))[0][0]
    tasks.send_drafts_ready(ids)
    assert sorted(m.to[0] for m in mail.outbox) == ["lecteur.a@example.fr"]


def test_an_unreachable_broker_still_sends_the_mail_from_the_request(
    client, billed, addressed, django_capture_on_commit_callbacks
):
    from mutualisation.celery import app as celery_app
    from tests.costing.test_batch import reset_celery_connections

    keys = ("task_always_eager", "broker_url", "broker_connection_timeout", "task_publish_retry")
    previous = {key: celery_app.conf[key] for key in keys}
    celery_app.conf.update(
        task_always_eager=False,
        broker_url="redis://127.0.0.1:1/0",  # nothing listens there
        broker_connection_timeout=1,
        task_publish_retry=False,
    )
    reset_celery_connections()
    try:
        prepare(client, addressed.finance, django_capture_on_commit_callbacks)
    finally:
        celery_app.conf.update(previous)
        reset_celery_connections()
    assert sorted(m.to[0] for m in mail.outbox) == ["lecteur.a@example.fr"]
