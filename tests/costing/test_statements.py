"""États annuels: what issuing freezes, what the database refuses, what the PDF shows."""

import hashlib
import io
import re
import threading
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from conventions.models import Convention
from costing import services, statements
from costing.models import Statement, StatementLine, StatementStatus, UsageRecord
from tests.costing.conftest import (
    issue_after_review,
    more_billed_conventions,
    record_planned_instalments,
)
from tests.factories import EpciFactory

pytestmark = pytest.mark.django_db


def drafts(year=2026):
    prepared = statements.statements_prepare(year)
    return {s.payer.name: s for s in prepared}


def assert_refused(operation, match="etat annuel emis"):
    """Refused by the database trigger (or, for ORM deletes, first by the PROTECT foreign key)."""
    with pytest.raises(IntegrityError, match=match), transaction.atomic():
        operation()


def test_drafts_follow_the_engine_and_are_recomputed_on_demand(billed):
    prepared = drafts()
    assert {name: s.total for name, s in prepared.items()} == {
        "Commune A": Decimal("8965.47"),
        "Commune B": Decimal("3028.88"),
    }
    assert all(s.status == StatementStatus.DRAFT and s.number is None for s in prepared.values())
    again = drafts()
    assert {s.pk for s in again.values()} == {s.pk for s in prepared.values()}


def test_issuing_numbers_freezes_and_fingerprints(billed):
    draft = drafts()["Commune A"]
    issued = issue_after_review(draft)
    assert issued.number == "EA-2026-0001"
    assert issued.pdf_sha256 == hashlib.sha256(bytes(issued.pdf)).hexdigest()
    assert issued.snapshot["number"] == "EA-2026-0001"
    assert [line["amount"] for line in issued.snapshot["lines"]] == ["8965.47"]
    second = issue_after_review(drafts()["Commune B"])
    assert second.number == "EA-2026-0002"


def test_two_territories_issuing_alternately_each_number_their_statements_from_one(billed):
    metropole = billed.territory.epci
    val = EpciFactory(name="Communauté d'agglomération du Val")  # no prefix given
    (moved,) = more_billed_conventions(billed, 1)
    Convention.objects.filter(pk=moved.pk).update(territory=val)
    drafts = statements.statements_prepare(2026)
    ours = [d for d in drafts if d.convention.territory_id == metropole.pk]
    theirs = [d for d in drafts if d.convention.territory_id == val.pk]
    assert len(ours) == len(theirs) == 2

    numbers = {metropole.pk: [], val.pk: []}
    for mine, other in zip(ours, theirs, strict=True):
        for draft in (mine, other):
            numbers[draft.convention.territory_id].append(issue_after_review(draft).number)

    prefix = statements.statement_prefix(val)
    assert prefix != "EA"
    assert numbers == {
        metropole.pk: ["EA-2026-0001", "EA-2026-0002"],
        val.pk: [f"{prefix}-2026-0001", f"{prefix}-2026-0002"],
    }


def test_a_statement_is_not_issued_on_a_convention_signed_but_not_yet_enforceable(billed):
    """A titre rests on an enforceable convention (CGCT L2131-1): while the convention is only
    signed (not transmitted, published, notified, declared in force), its statement is refused,
    and the refusal says what to do; once in force, it is issued."""
    from conventions.models import Status

    Convention.objects.filter(pk=billed.convention.pk).update(status=Status.SIGNED)
    draft = drafts()["Commune A"]
    with pytest.raises(statements.StatementRefused) as refused:
        issue_after_review(draft)
    [reason] = [r for r in refused.value.reasons if "exécutoire" in r]
    assert billed.convention.reference in reason
    assert "entrée en vigueur" in reason
    assert not Statement.objects.filter(number__isnull=False).exists()

    Convention.objects.filter(pk=billed.convention.pk).update(status=Status.IN_FORCE)
    assert issue_after_review(drafts()["Commune A"]).number


def test_a_territory_cannot_change_its_statement_prefix_once_it_has_issued_a_number(billed):
    """Drafts carry no number: the prefix may still change. Once EA-2026-0001 is issued, the
    next statement may not start a second series (EAX-2026-0001) for the same territory."""
    from django.core.exceptions import ValidationError

    from mutualisation.models import Organisation

    epci = Organisation.objects.get(pk=billed.territory.epci.pk)
    prepared = drafts()
    epci.statement_prefix = "EAX"
    epci.full_clean()

    number = issue_after_review(prepared["Commune A"]).number
    with pytest.raises(ValidationError) as refused:
        epci.full_clean()
    assert refused.value.message_dict["statement_prefix"] == [
        f"Ce territoire numérote déjà avec « EA » (dernier numéro attribué : {number}) : "
        "changer de préfixe ouvrirait une seconde série de numéros. Le préfixe ne peut plus "
        "changer."
    ]


def test_an_issued_statement_resists_every_way_of_changing_it(billed):
    issued = issue_after_review(drafts()["Commune A"])
    line = issued.lines.get()
    table = Statement._meta.db_table

    def save():
        issued.total = Decimal("1.00")
        issued.save()

    assert_refused(save)
    assert_refused(lambda: Statement.objects.filter(pk=issued.pk).update(total=Decimal("1.00")))
    assert_refused(lambda: Statement.objects.filter(pk=issued.pk).delete(), match=None)
    assert_refused(lambda: issued.delete(), match=None)

    def raw_update():
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET total = 0 WHERE id = %s", [issued.pk])

    assert_refused(raw_update)

    def raw_pdf():
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {table} SET pdf_sha256 = 'x' WHERE id = %s", [issued.pk])

    assert_refused(raw_pdf)

    def raw_delete():
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {StatementLine._meta.db_table} WHERE statement_id = %s", [issued.pk]
            )
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [issued.pk])

    assert_refused(raw_delete)
    assert_refused(lambda: StatementLine.objects.filter(pk=line.pk).update(amount=Decimal("0")))
    assert_refused(lambda: StatementLine.objects.filter(pk=line.pk).delete())

    def add_line():
        line.pk = None
        line.position = 2
        line.save()

    assert_refused(add_line)
    issued.refresh_from_db()
    assert issued.total == Decimal("8965.47")


def test_the_admin_shows_an_issued_statement_read_only(client, personas, billed):
    issued = issue_after_review(drafts()["Commune A"])
    client.force_login(personas.admin)
    change = reverse("admin:costing_statement_change", args=[issued.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"correction_reason": "x"}).status_code == 403
    assert (
        client.post(
            reverse("admin:costing_statement_delete", args=[issued.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    assert Statement.objects.filter(pk=issued.pk, total=Decimal("8965.47")).exists()


def test_pdf_shows_the_engine_figures_and_downloads_the_same_bytes(client, personas, billed):
    computed = services.compute_reimbursements(2026)
    [engine_line] = [x for x in computed.result.lines if x.payer.name == "Commune A"]
    record_planned_instalments(2026, billed.territory.commune_a)  # 4 acomptes of 7 269,30 €
    issued = issue_after_review(drafts()["Commune A"])
    client.force_login(personas.reader_a)
    first = client.get(reverse("costing:statement-pdf", args=[issued.pk]))
    second = client.get(reverse("costing:statement-pdf", args=[issued.pk]))
    assert first.content == second.content == bytes(issued.pdf)
    assert (
        hashlib.sha256(first.content).hexdigest() == issued.pdf_sha256 == first["X-Content-SHA256"]
    )
    text = re.sub(
        r"\s+",
        " ",
        " ".join(page.extract_text() for page in PdfReader(io.BytesIO(first.content)).pages),
    )
    assert "EA-2026-0001" in text
    assert "242,31 €" in text  # unit cost
    assert "notifié le 30/03/2026" in text
    assert f" {format(engine_line.units.normalize(), 'f')} " in f" {text} "  # units: 37
    assert "8 965,47 €" in text  # the line and the total
    # 120 units forecast × 242,31 € = 29 077,20 € called in instalments: 20 111,73 € to refund.
    assert "Solde à rembourser au débiteur 20 111,73 €" in text  # the words give the sign
    page = re.sub(
        r"<[^>]+>|\s+",
        " ",
        client.get(reverse("costing:statement", args=[issued.pk])).content.decode(),
    )
    assert re.search(r"Solde à rembourser au débiteur .{0,80}? 20 111,73 €", page)
    assert "-20 111,73" not in page
    assert "70875" in text
    assert "62876" in text
    assert re.search(r"Page 1 / [123]", text)
    assert PdfReader(io.BytesIO(first.content)).metadata.title.startswith("EA-2026-0001")


def test_a_correction_is_a_new_statement_citing_the_cancelled_one(billed):
    issued = issue_after_review(drafts()["Commune A"])
    with pytest.raises(statements.StatementRefused, match="motif"):
        statements.statement_correct(issued, reason=" ")
    correction = statements.statement_correct(issued, reason="Recours de mars saisi deux fois.")
    assert correction.cancels == issued
    assert statements.statement_state(issued) == "Émis"
    UsageRecord.objects.filter(
        beneficiary__name="Commune A", period_start__month=3
    ).delete()  # the usage is corrected before the correction is issued
    correction = issue_after_review(correction)
    assert statements.statement_state(issued) == "Annulé"
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(bytes(correction.pdf))).pages)
    assert "annule et remplace l'état n° EA-2026-0001" in re.sub(r"\s+", " ", text)
    assert list(statements.current_statements(2026).filter(payer__name="Commune A")) == [correction]


def test_commune_reads_its_drafts_remarks_within_the_window_and_sees_nothing_else(
    client, personas, billed
):
    prepared = drafts()
    mine, theirs = prepared["Commune A"], prepared["Commune B"]
    client.force_login(personas.reader_a)
    assert client.get(reverse("costing:statement", args=[mine.pk])).status_code == 200
    assert client.get(reverse("costing:statement", args=[theirs.pk])).status_code == 404
    listing = client.get(reverse("costing:statements", args=[2026])).content.decode()
    assert "Commune A" in listing
    assert "Commune B" not in listing
    client.post(
        reverse("costing:statement-remark", args=[mine.pk]),
        {"text": "Le recours de mars est en double."},
    )
    assert mine.remarks.get().text == "Le recours de mars est en double."
    Statement.objects.filter(pk=mine.pk).update(review_until="2026-01-01")
    response = client.post(
        reverse("costing:statement-remark", args=[mine.pk]), {"text": "Trop tard ?"}, follow=True
    )
    assert (
        "La période de remarques s'est achevée le 01/01/2026."
        in response.content.decode().replace("&#x27;", "'")
    )
    assert mine.remarks.count() == 1
    assert client.post(reverse("costing:statement-issue", args=[mine.pk])).status_code == 403


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_issues_get_two_consecutive_numbers(billed, flushable_statements):
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite serialises writers; the row lock is proven on PostgreSQL (CI runs both)."
        )
    prepared = list(drafts().values())
    # The communes' review window is over (time travel does not reach other threads cleanly).
    Statement.objects.filter(pk__in=[s.pk for s in prepared]).update(review_until="2027-01-01")
    barrier = threading.Barrier(len(prepared))
    numbers, errors = [], []

    def issue(statement):
        try:
            barrier.wait()
            numbers.append(statements.statement_issue(statement).number)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(s,)) for s in prepared]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(numbers) == ["EA-2026-0001", "EA-2026-0002"]


def test_consolidated_summary_of_a_commune_across_its_conventions(client, personas, billed):
    issue_after_review(drafts()["Commune A"])
    territory = billed.territory
    client.force_login(personas.reader_a)
    own = client.get(reverse("costing:commune-summary", args=[2026, territory.commune_a.siren]))
    assert own.status_code == 200
    text = re.sub(
        r"\s+", " ", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(own.content)).pages)
    )
    assert "EA-2026-0001" in text
    assert "Montants dus par l'organisation 8 965,47 €" in text
    assert "Position nette -8 965,47 €" in text
    other = client.get(reverse("costing:commune-summary", args=[2026, territory.commune_b.siren]))
    assert other.status_code == 404


def test_a_summary_reads_neither_the_statements_stored_pdfs_nor_their_snapshots(
    client, personas, billed
):
    """Before: the summary read every listed statement whole, its stored PDF and snapshot
    included, and those of the statements it cancels: an EPCI's summary of 3 600 statements
    took 830 MiB before rendering a page (docs/performance.md, section b)."""
    issued = issue_after_review(drafts()["Commune A"])
    assert issued.pdf
    client.force_login(personas.reader_a)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(
            reverse("costing:commune-summary", args=[2026, billed.territory.commune_a.siren])
        )
    assert response.status_code == 200
    read = [q["sql"] for q in captured.captured_queries if 'FROM "costing_statement"' in q["sql"]]
    assert read
    assert not [sql for sql in read if re.search(r'\."(pdf|snapshot)"', sql)]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_preparations_make_one_draft_per_payer(billed, flushable_statements):
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite serialises writers; the row lock is proven on PostgreSQL (CI runs both)."
        )
    barrier = threading.Barrier(2)
    errors = []

    def prepare():
        try:
            barrier.wait()
            statements.statements_prepare(2026)
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert Statement.objects.filter(year=2026, status=StatementStatus.DRAFT).count() == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Recours\x00double", "caractère nul n’est pas autorisé"),
        ("x" * 2001, "au plus 2000 caractères"),
    ],
)
def test_a_remark_with_a_nul_character_or_too_long_is_refused_in_french(
    client, personas, billed, text, message
):
    """Before: a NUL gave a 500 on PostgreSQL, and the 2 000-character limit was bypassed (the
    view read the raw form data: a reader stored 2.4 MB)."""
    mine = drafts()["Commune A"]
    client.force_login(personas.reader_a)
    response = client.post(
        reverse("costing:statement-remark", args=[mine.pk]), {"text": text}, follow=True
    )
    assert response.status_code == 200
    body = response.content.decode().replace("&#x27;", "'").replace("\u202f", " ")
    assert "Remarque non transmise" in body
    assert message in body.replace("\xa0", " ").replace("2 000", "2000")
    assert not mine.remarks.exists()


def test_each_territory_sets_its_own_review_window(billed, territory):
    """The days a commune has to read a draft are a territory's setting (empty: the
    platform's MUTUALIS_STATEMENT_REVIEW_DAYS, 15 days)."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    assert settings.MUTUALIS_STATEMENT_REVIEW_DAYS != 30
    territory.epci.statement_review_days = 30
    territory.epci.save()
    assert {s.review_until for s in drafts().values()} == {
        timezone.localdate() + timedelta(days=30)
    }


def test_a_commune_reader_finds_its_annual_summary_on_the_statements_page(client, personas, billed):
    territory = billed.territory
    client.force_login(personas.reader_a)
    html = client.get(reverse("costing:statements", args=[2026])).content.decode()
    own = reverse("costing:commune-summary", args=[2026, territory.commune_a.siren])
    other = reverse("costing:commune-summary", args=[2026, territory.commune_b.siren])
    assert f'href="{own}"' in html
    assert "Récapitulatif annuel de Commune A (PDF)" in html
    assert other not in html
    # The territory's staff reach every organisation's summary from the dashboard instead.
    client.force_login(personas.finance)
    html = client.get(reverse("costing:statements", args=[2026])).content.decode()
    assert "Récapitulatif annuel" not in html


def test_the_batch_territory_choice_sends_each_territorys_plain_number(client, personas):
    """A territory numbered past 999 was offered as « 5 432 » and the batch refused it."""
    from mutualisation.models import Role
    from tests.factories import EpciFactory, MembershipFactory

    other = EpciFactory(pk=5432, name="Autre EPCI", statement_prefix="AUT")
    MembershipFactory(user=personas.finance, organisation=other, role=Role.FINANCE)
    client.force_login(personas.finance)
    html = client.get(reverse("costing:statements", args=[2026])).content.decode()
    assert '<option value="5432">Autre EPCI</option>' in html


def test_no_acompte_called_subtracts_nothing_rather_than_minus_zero(client, personas, billed):
    client.force_login(personas.finance)
    page = client.get(reverse("costing:statement", args=[drafts()["Commune A"].pk]))
    text = re.sub(r"<[^>]+>|\s+", " ", page.content.decode())
    assert re.search(r"Acomptes appelés\s+0,00 €", text)
    assert "− 0,00" not in text


def test_a_readers_remark_and_approval_name_the_statements_territory_not_a_metropole(
    client, personas, billed
):
    """One deployment hosts many EPCIs, most of them no Métropole: the messages name the
    territory that will read the remark and issue the statement."""
    mine = drafts()["Commune A"]
    name = billed.territory.epci.name
    client.force_login(personas.reader_a)
    detail = client.get(reverse("costing:statement", args=[mine.pk])).content.decode()
    assert "la Métropole" not in detail
    assert f"les services de {name} pourront alors l" in detail.replace("&#x27;", "'")
    remarked = client.post(
        reverse("costing:statement-remark", args=[mine.pk]), {"text": "Un doublon"}, follow=True
    ).content.decode()
    assert f"Remarque transmise aux services de {name}." in remarked
    approved = client.post(
        reverse("costing:statement-approve", args=[mine.pk]), follow=True
    ).content.decode()
    assert f"les services de {name} peuvent émettre l" in approved.replace("&#x27;", "'")
