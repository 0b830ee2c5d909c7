"""E-mails about draft statements: the drafts ready for a commune's readers, a commune's remark
for the territory's finance officers, finance's answer for the remark's author.

Each is sent once the transaction that wrote what it announces has committed
(``transaction.on_commit``), never from a transaction that fails. With a broker
(``CELERY_BROKER_URL``) the sending is a Celery task (costing.tasks): the page does not wait for
the mail server; without one, or when the broker cannot be reached (logged), it is sent in the
request after the commit. One connection serves all the messages, one per recipient: a commune
reader gets the list of their drafts of a preparation that are new or whose figures changed,
however many; a preparation that changes nothing sends nothing. A recipient without an e-mail
address, or whose account is inactive, is skipped. A mail server that fails is logged: what was
committed stays committed and the page answers normally. Links are absolute, built from
``MUTUALIS_SITE_URL``; texts are French (templates/costing/email/)."""

import logging
from collections import defaultdict

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import translation
from kombu.exceptions import OperationalError

from costing import tasks
from costing.models import Statement, StatementRemark, StatementStatus
from mutualisation.french import of
from mutualisation.models import Membership, Role

logger = logging.getLogger(__name__)


def site_url(path: str) -> str:
    return settings.MUTUALIS_SITE_URL.rstrip("/") + path


def reachable(users) -> list:
    """The users an e-mail can reach, each once, in a stable order."""
    seen, result = set(), []
    for user in users:
        if user.pk in seen or not user.is_active or not (user.email or "").strip():
            continue
        seen.add(user.pk)
        result.append(user)
    return result


def message(template: str, user, context: dict) -> EmailMessage:
    context = {**context, "user": user, "name": user.get_full_name() or user.get_username()}
    with translation.override(settings.LANGUAGE_CODE):
        subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
        body = render_to_string(f"{template}.txt", context)
    return EmailMessage(subject=subject, body=body, to=[user.email])


def send(messages: list[EmailMessage]) -> int:
    if not messages:
        return 0
    try:
        return get_connection().send_messages(messages)
    except Exception:  # the writes are committed: the page must not fail for the mail server
        logger.exception("Échec de l'envoi de %s message(s) de notification.", len(messages))
        return 0


def after_commit(task, *args) -> None:
    """Once the transaction commits, queue ``task`` for a worker; send from here when no broker
    is configured (the task then runs eagerly) or none answers."""

    def queue():
        try:
            task.delay(*args)
        except OperationalError:  # kombu's: the broker is unreachable
            logger.exception("Courtier injoignable : notification envoyée depuis la requête.")
            task(*args)

    transaction.on_commit(queue)


# --- drafts ready ---------------------------------------------------------------------------


def drafts_ready(statement_ids: list[int]) -> None:
    """After commit: tell each reader of the payers their new or changed drafts."""
    if statement_ids:
        after_commit(tasks.send_drafts_ready, statement_ids)


def send_drafts_ready(statement_ids: list[int]) -> int:
    drafts = list(
        Statement.objects.filter(pk__in=statement_ids, status=StatementStatus.DRAFT)
        .select_related("convention", "payer", "payee")
        .order_by("payer__name", "convention__reference", "pk")
    )
    by_payer = defaultdict(list)
    for draft in drafts:
        by_payer[draft.payer_id].append(draft)
    readers = (
        Membership.objects.filter(role=Role.COMMUNE_READER, organisation_id__in=by_payer)
        .select_related("user")
        .order_by("user__username", "organisation__name")
    )
    by_user, users = defaultdict(list), {}
    for membership in readers:
        users[membership.user_id] = membership.user
        by_user[membership.user_id].extend(by_payer[membership.organisation_id])
    return send(
        [
            message(
                "costing/email/drafts_ready",
                user,
                {
                    "drafts": [
                        {
                            "statement": draft,
                            "of_payer": of(draft.payer.name),
                            "url": site_url(draft.get_absolute_url()),
                        }
                        for draft in by_user[user.pk]
                    ],
                    "count": len(by_user[user.pk]),
                    "year": by_user[user.pk][0].year,
                },
            )
            for user in reachable(users.values())
        ]
    )


# --- remarks --------------------------------------------------------------------------------


def remark_context(remark) -> dict:
    statement = remark.statement
    return {
        "remark": remark,
        "statement": statement,
        "of_payer": of(statement.payer.name),
        "author_name": remark.author.get_full_name() or remark.author.get_username(),
        "url": site_url(statement.get_absolute_url()),
    }


def remark_added(remark) -> None:
    """After commit: tell the finance officers of the statement's territory."""
    after_commit(tasks.send_remark_added, remark.pk)


def send_remark_added(remark_id: int) -> int:
    remark = StatementRemark.objects.select_related(
        "author", "statement__convention", "statement__payer"
    ).get(pk=remark_id)
    officers = [
        membership.user
        for membership in Membership.objects.filter(
            role=Role.FINANCE, organisation_id=remark.statement.convention.territory_id
        )
        .select_related("user")
        .order_by("user__username")
    ]
    context = remark_context(remark)
    return send(
        [message("costing/email/remark_added", user, context) for user in reachable(officers)]
    )


def remark_answered(remark) -> None:
    """After commit: tell the remark's author the answer and the remark's status."""
    after_commit(tasks.send_remark_answered, remark.pk)


def send_remark_answered(remark_id: int) -> int:
    remark = StatementRemark.objects.select_related(
        "author", "answered_by", "statement__convention", "statement__payer"
    ).get(pk=remark_id)
    return send(
        [
            message("costing/email/remark_answered", user, remark_context(remark))
            for user in reachable([remark.author])
        ]
    )
