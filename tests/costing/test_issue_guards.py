"""What must hold before an état annuel is issued: the period is over, no usage is dated in the
future, the commune's review window is closed (or the debtor approved the draft), the unit cost
was notified; a late notification is flagged; a correction must change something and shows
what it changes."""

import io
import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from conventions.models import Convention
from costing import services, statements
from costing.models import BatchJob, Statement, StatementStatus, UsageRecord, UsageSource
from tests.costing.conftest import issue_after_review

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


def draft_of(payer_name, year=2026):
    return next(s for s in statements.statements_prepare(year) if s.payer.name == payer_name)


def pdf_text(content: bytes) -> str:
    return re.sub(
        r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)
    )


def page_text(response) -> str:
    return response.content.decode().replace("&#x27;", "'")


@pytest.mark.parametrize("unit_cost_kwargs", [{"is_provisional": True, "notified_on": None}])
def test_issuing_too_early_lists_every_reason_at_once(billed, unit_cost_kwargs):
    with time_machine.travel(datetime(2026, 11, 20, 10, 0, tzinfo=PARIS)):
        draft = draft_of("Commune A")
        UsageRecord.objects.create(
            convention=billed.convention,
            beneficiary=billed.territory.commune_a,
            service=billed.service,
            unit_type=billed.service.unit_type,
            period_start=date(2026, 12, 1),
            period_end=date(2026, 12, 31),
            quantity=Decimal("2"),
            units=Decimal("2"),
            source=UsageSource.GRID,
        )
        with pytest.raises(statements.StatementRefused) as refused:
            statements.statement_issue(draft)
    assert refused.value.reasons == [
        "La période couverte par cet état s'achève le 31/12/2026 : il ne peut être émis "
        "qu'à partir du 01/01/2027.",
        "Des recours sont datés après aujourd'hui (le premier le 01/12/2026) : un état ne "
        "porte pas sur des recours à venir.",
        "La commune peut formuler des remarques jusqu'au 05/12/2026 : l'état ne peut être "
        "émis qu'après cette date, à moins que le débiteur n'approuve le projet.",
        f"Le coût unitaire provisoire de « {billed.service.name} » n'a jamais été notifié au "
        "débiteur : notifiez-le avant d'émettre l'état.",
    ]
    draft.refresh_from_db()
    assert draft.status == StatementStatus.DRAFT
    assert draft.number is None


def test_the_period_ends_earlier_when_the_convention_ended(billed):
    from conventions.models import Terms

    Terms.objects.filter(convention=billed.convention).update(
        end_date=date(2026, 6, 30), tacit_renewal=False
    )
    with time_machine.travel(datetime(2026, 6, 30, 10, 0, tzinfo=PARIS)):
        draft = draft_of("Commune A")
        assert "s'achève le 30/06/2026" in statements.issue_refusals(draft)[0]
    with time_machine.travel(datetime(2026, 7, 20, 10, 0, tzinfo=PARIS)):
        assert statements.issue_refusals(draft) == []


def test_the_refusal_reasons_are_shown_on_the_page(client, personas, billed):
    draft = draft_of("Commune A")
    client.force_login(personas.finance)
    response = client.post(reverse("costing:statement-issue", args=[draft.pk]), follow=True)
    text = page_text(response)
    assert "La commune peut formuler des remarques jusqu'au 30/01/2027" in text
    assert "Émission impossible pour l'instant" in text  # the draft page says why beforehand
    assert Statement.objects.get(pk=draft.pk).status == StatementStatus.DRAFT


def test_the_debtor_approves_its_draft_and_it_can_be_issued_within_the_window(
    client, personas, billed
):
    draft = draft_of("Commune A")
    url = reverse("costing:statement", args=[draft.pk])
    approve = reverse("costing:statement-approve", args=[draft.pk])
    for persona in ("finance", "manager", "admin"):  # Métropole staff do not approve for it
        client.force_login(getattr(personas, persona))
        assert "Approuver le projet" not in page_text(client.get(url))
        assert client.post(approve).status_code == 403
    client.force_login(personas.reader_b)
    assert client.post(approve).status_code == 404  # not even visible to another commune
    client.force_login(personas.reader_a)
    assert "Approuver le projet" in page_text(client.get(url))
    response = client.post(approve, follow=True)
    assert "Projet approuvé par le débiteur le 15/01/2027" in page_text(response)
    draft.refresh_from_db()
    assert (draft.approved_by, draft.approved_at.date()) == (personas.reader_a, date(2027, 1, 15))
    assert "Approuver le projet" not in page_text(response)
    client.force_login(personas.finance)
    response = client.post(reverse("costing:statement-issue", args=[draft.pk]), follow=True)
    assert "État émis sous le numéro EA-2026-0001" in page_text(response)


def test_an_approval_is_void_once_the_total_changes(personas, billed):
    draft = draft_of("Commune A")
    statements.statement_approve(draft, user=personas.reader_a)
    statements.statements_prepare(2026)  # same figures: still approved
    draft.refresh_from_db()
    assert draft.approved_at is not None
    UsageRecord.objects.filter(beneficiary__name="Commune A", period_start__month=4).delete()
    statements.statements_prepare(2026)
    draft.refresh_from_db()
    assert (draft.approved_at, draft.approved_by) == (None, None)
    with pytest.raises(statements.StatementRefused, match="remarques jusqu'au"):
        statements.statement_issue(draft)


def test_only_the_debtor_may_approve_and_only_once(personas, billed):
    draft = draft_of("Commune A")
    with pytest.raises(statements.StatementRefused, match="Seul le débiteur"):
        statements.statement_approve(draft, user=personas.finance)
    statements.statement_approve(draft, user=personas.reader_a)
    with pytest.raises(statements.StatementRefused, match="déjà approuvé"):
        statements.statement_approve(draft, user=personas.reader_a)


@pytest.mark.parametrize(
    "unit_cost_kwargs",
    [{"notified_on": date(2026, 5, 20), "notification_deadline": date(2026, 4, 30)}],
)
def test_a_late_notified_unit_cost_is_allowed_but_flagged(
    client, personas, billed, unit_cost_kwargs
):
    issued = issue_after_review(draft_of("Commune A"))
    [line] = issued.snapshot["lines"]
    assert (line["unit_cost_late"], line["unit_cost_notification_deadline"]) == (
        True,
        "2026-04-30",
    )
    assert "notifié le 20/05/2026 notifié tardivement (date limite : 30/04/2026)" in pdf_text(
        bytes(issued.pdf)
    )
    client.force_login(personas.finance)
    page = page_text(client.get(reverse("costing:statement", args=[issued.pk])))
    assert "notifié tardivement (date limite : 30/04/2026)" in page


def test_a_timely_notification_is_not_flagged(billed):
    draft = draft_of("Commune A")
    [line] = draft.snapshot["lines"]
    assert (line["unit_cost_late"], line["unit_cost_notification_deadline"]) == (False, None)
    assert "tardivement" not in pdf_text(statements.render_statement_pdf(draft))


def test_a_correction_that_changes_nothing_is_refused(billed):
    issued = issue_after_review(draft_of("Commune A"))
    correction = statements.statement_correct(issued, reason="Vérification.")
    with pytest.raises(statements.StatementRefused) as refused:
        issue_after_review(correction)
    assert refused.value.reasons == [
        "La correction ne change rien : ses lignes, son total et son solde sont ceux de l'état "
        "n° EA-2026-0001 qu'elle annulerait. Corrigez d'abord l'état des recours ou le coût "
        "unitaire."
    ]
    assert Statement.objects.get(pk=correction.pk).status == StatementStatus.DRAFT


def test_a_correction_shows_the_cancelled_figures_and_the_difference(client, personas, billed):
    issued = issue_after_review(draft_of("Commune A"))
    correction = statements.statement_correct(issued, reason="Recours d'avril compté deux fois.")
    record = UsageRecord.objects.get(beneficiary__name="Commune A", period_start__month=4)
    record.quantity = record.units = Decimal("7")  # 17 → 7: 10 units less at 242,31 €
    record.save()
    correction = issue_after_review(correction)
    assert correction.snapshot["correction"] == {
        "cancels_number": "EA-2026-0001",
        "previous_total": "8965.47",
        "previous_balance": "8965.47",  # no acompte was called
        "difference_total": "-2423.10",
        "difference_balance": "-2423.10",
    }
    text = pdf_text(bytes(correction.pdf))
    assert "Différence avec l'état n° EA-2026-0001" in text
    assert "État annulé n° EA-2026-0001 8 965,47 € 8 965,47 €" in text
    assert "Présent état 6 542,37 € 6 542,37 €" in text
    assert "Différence -2 423,10 € -2 423,10 €" in text
    client.force_login(personas.reader_a)
    page = page_text(client.get(reverse("costing:statement", args=[correction.pk])))
    assert "Différence avec l'état n° EA-2026-0001" in page


def test_a_batch_skips_a_refused_draft_records_why_and_issues_the_others(personas, billed):
    drafts = {s.payer.name: s for s in statements.statements_prepare(2026)}
    statements.statement_approve(drafts["Commune A"], user=personas.reader_a)
    job = BatchJob.objects.create(
        year=2026, action=BatchJob.Action.ISSUE_AND_EXPORT, created_by=personas.finance
    )
    job = statements.batch_run(job.pk)
    assert job.status == BatchJob.JobStatus.DONE
    issued = Statement.objects.filter(year=2026, status=StatementStatus.ISSUED)
    assert [s.payer.name for s in issued] == ["Commune A"]
    assert job.error.startswith("Projets non émis :\n")
    assert "Commune B : La commune peut formuler des remarques jusqu'au 30/01/2027" in job.error


@pytest.mark.parametrize("unit_cost_kwargs", [{"notified_on": date(2026, 8, 20)}])
def test_in_the_year_of_signature_late_means_three_months_after_signature(billed, unit_cost_kwargs):
    """The statement's « notifié tardivement » and the compliance page use one deadline: three
    months after a signature of the same year (here 01/06/2026 → 01/09/2026), not 30 April."""
    Convention.objects.filter(pk=billed.convention.pk).update(signature_date=date(2026, 6, 1))
    [line] = draft_of("Commune A").snapshot["lines"]
    assert line["unit_cost_late"] is False
    assert "LATE_NOTIFICATION" not in [
        f.code for f in services.compute_reimbursements(2026).findings
    ]
    Convention.objects.filter(pk=billed.convention.pk).update(signature_date=date(2026, 3, 1))
    [line] = draft_of("Commune A").snapshot["lines"]
    assert (line["unit_cost_late"], line["unit_cost_notification_deadline"]) == (True, "2026-06-01")
    assert "LATE_NOTIFICATION" in [f.code for f in services.compute_reimbursements(2026).findings]


def test_a_titre_is_refused_until_the_comptable_assignataire_is_known(billed):
    """A titre de recettes names its comptable public assignataire (L1617-5): without it the
    état would print « non renseigné » and the titre could not be taken in charge."""
    payee = billed.territory.epci
    payee.public_accountant = ""
    payee.save()
    draft = draft_of("Commune A")
    assert statements.channel_of(draft) == "TITRE"
    reasons = statements.issue_refusals(draft, today=draft.review_until + timedelta(days=1))
    assert (
        "Le comptable public assignataire de Métropole de test n'est pas renseigné : le titre "
        "de recettes doit le nommer (L1617-5). Renseignez-le dans le référentiel des "
        "organisations."
    ) in reasons
    payee.public_accountant = "Service de gestion comptable de Clermont-Ferrand"
    payee.save()
    draft.refresh_from_db()
    assert not [
        r
        for r in statements.issue_refusals(draft, today=draft.review_until + timedelta(days=1))
        if "comptable" in r
    ]
