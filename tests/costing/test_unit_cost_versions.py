"""A notified unit cost is frozen (D5211-16: it is what the beneficiaries were told): recomputing
it is refused, a correction is a new version with its reason and its own notification."""

import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from html import unescape

import pytest
import time_machine
from django.urls import reverse
from pypdf import PdfReader

from costing import engine, services, statements
from costing.models import (
    CostBase,
    CostCategory,
    CostLine,
    ReferenceBasis,
    SourceDocument,
    UnitCost,
)
from tests.costing.conftest import issue_after_review
from tests.factories import ServiceFactory

pytestmark = pytest.mark.django_db


def cost_base(service, year=2026, amount="25000.00", units="100"):
    base = CostBase.objects.create(
        service=service,
        year=year,
        source=SourceDocument.CA,
        source_year=year - 1,
        reference_units=Decimal(units),
        reference_basis=ReferenceBasis.FORECAST,
    )
    CostLine.objects.create(
        cost_base=base,
        label="Agents du service",
        category=CostCategory.PERSONNEL,
        account="6411",
        accounts_amount=Decimal(amount),
    )
    return base


@pytest.fixture
def notified(territory):
    """A computed unit cost of 250,00 €, notified on 30 March 2026."""
    base = cost_base(ServiceFactory(provider=territory.epci))
    unit_cost = services.unit_cost_compute(base)
    unit_cost = services.unit_cost_notify(unit_cost, date(2026, 3, 30))
    return base, unit_cost


def test_recomputing_a_notified_unit_cost_is_refused_in_french(notified):
    base, unit_cost = notified
    CostLine.objects.filter(cost_base=base).update(accounts_amount=Decimal("30000.00"))
    with pytest.raises(engine.EngineError, match="notifié le 30/03/2026.*version corrigée"):
        services.unit_cost_compute(base)
    unit_cost.refresh_from_db()
    assert unit_cost.amount == Decimal("250.00")
    assert unit_cost.notified_on == date(2026, 3, 30)
    assert UnitCost.objects.filter(service=base.service, year=2026).count() == 1


def test_an_unnotified_unit_cost_is_recomputed_in_place(territory):
    base = cost_base(ServiceFactory(provider=territory.epci))
    with time_machine.travel(datetime(2026, 2, 10, 9, 30, tzinfo=UTC), tick=False):
        first = services.unit_cost_compute(base)
    computed_at = first.computed_at
    CostLine.objects.filter(cost_base=base).update(accounts_amount=Decimal("30000.00"))
    again = services.unit_cost_compute(base)
    assert again.pk == first.pk
    assert again.version == 1
    assert again.amount == Decimal("300.00")
    assert again.computed_at > computed_at


def test_notifying_keeps_the_computation_date_and_happens_once(territory):
    base = cost_base(ServiceFactory(provider=territory.epci))
    unit_cost = services.unit_cost_compute(base)
    UnitCost.objects.filter(pk=unit_cost.pk).update(
        computed_at=datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
    )
    unit_cost.refresh_from_db()
    calculated = unit_cost.computed_at
    services.unit_cost_notify(unit_cost, date(2026, 3, 30))
    unit_cost.refresh_from_db()
    assert unit_cost.notified_on == date(2026, 3, 30)
    assert unit_cost.computed_at == calculated  # « calculé le » is not the notification
    with pytest.raises(engine.EngineError, match="déjà notifiée le 30/03/2026"):
        services.unit_cost_notify(unit_cost, date(2026, 4, 2))
    unit_cost.refresh_from_db()
    assert unit_cost.notified_on == date(2026, 3, 30)


def test_a_correction_is_a_new_version_citing_the_notified_one(notified, personas):
    base, first = notified
    CostLine.objects.filter(cost_base=base).update(accounts_amount=Decimal("26000.00"))
    with pytest.raises(engine.EngineError, match="motif"):
        services.unit_cost_correct(base, "  ")
    second = services.unit_cost_correct(
        base, " Erreur de report du compte 6411. ", user=personas.finance
    )
    assert second.pk != first.pk
    assert second.version == 2
    assert second.supersedes == first
    assert second.correction_reason == "Erreur de report du compte 6411."
    assert second.amount == Decimal("260.00")
    assert second.notified_on is None  # notified separately, with its own date
    assert second.notification_deadline == services.deadline_for(2026)
    assert second.history.first().history_user == personas.finance
    first.refresh_from_db()
    assert first.amount == Decimal("250.00")
    assert first.notified_on == date(2026, 3, 30)
    # The current version is not notified yet: recomputed in place, not corrected again.
    with pytest.raises(engine.EngineError, match="pas encore notifiée"):
        services.unit_cost_correct(base, "Autre motif")
    assert services.unit_cost_compute(base).pk == second.pk
    services.unit_cost_notify(second, date(2026, 6, 15))
    second.refresh_from_db()
    assert second.notified_on == date(2026, 6, 15)
    CostLine.objects.filter(cost_base=base).update(budget_adjustment=Decimal("1000.00"))
    third = services.unit_cost_correct(base, "Nouvel ajustement du budget primitif.")
    assert (third.version, third.supersedes_id) == (3, second.pk)


def test_nothing_to_correct_without_a_unit_cost(territory):
    base = cost_base(ServiceFactory(provider=territory.epci))
    with pytest.raises(engine.EngineError, match="Aucun coût unitaire"):
        services.unit_cost_correct(base, "Motif")


def test_current_is_the_latest_version_of_each_service_and_year(notified, territory):
    base, first = notified
    with pytest.raises(engine.EngineError, match="rien à corriger"):
        services.unit_cost_correct(base, "Erreur de saisie.")  # the base gives 250,00 € again
    CostLine.objects.filter(cost_base=base).update(budget_adjustment=Decimal("-500.00"))
    second = services.unit_cost_correct(base, "Erreur de saisie.")
    assert second.amount == Decimal("245.00")
    other = services.unit_cost_compute(cost_base(ServiceFactory(provider=territory.epci)))
    earlier = services.unit_cost_compute(cost_base(base.service, year=2025))
    current = UnitCost.objects.current()
    assert set(current) == {second, other, earlier}
    assert list(current.filter(service=base.service, year=2026)) == [second]
    assert first not in current


def test_a_provisional_unit_cost_never_replaces_a_notified_one(notified):
    base, unit_cost = notified
    services.unit_cost_compute(cost_base(base.service, year=2025, amount="24000.00"))
    with pytest.raises(engine.EngineError, match="notifié"):
        services.unit_cost_provisional(
            service=base.service,
            year=2026,
            index_now=Decimal("104"),
            index_before=Decimal("100"),
        )
    unit_cost.refresh_from_db()
    assert (unit_cost.amount, unit_cost.is_provisional) == (Decimal("250.00"), False)


def test_a_notified_provisional_unit_cost_is_corrected_by_the_computed_one(territory):
    service = ServiceFactory(provider=territory.epci)
    services.unit_cost_compute(cost_base(service, year=2025, amount="24000.00"))
    provisional = services.unit_cost_provisional(
        service=service, year=2026, index_now=Decimal("104"), index_before=Decimal("100")
    )
    assert (provisional.amount, provisional.is_provisional) == (Decimal("249.60"), True)
    services.unit_cost_notify(provisional, date(2026, 3, 1))
    base = cost_base(service)
    with pytest.raises(engine.EngineError, match="version corrigée"):
        services.unit_cost_compute(base)
    computed = services.unit_cost_correct(base, "Coût définitif calculé sur le CA 2025.")
    assert (computed.version, computed.amount, computed.is_provisional) == (
        2,
        Decimal("250.00"),
        False,
    )


def pdf_text(content: bytes) -> str:
    pages = PdfReader(io.BytesIO(content)).pages
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages))


def test_an_issued_statement_keeps_its_unit_cost_after_a_correction(billed):
    # billed: unit cost 242,31 € notified on 30/03/2026; 37 units for Commune A.
    issued = issue_after_review(
        next(s for s in statements.statements_prepare(2026) if s.payer.name == "Commune A")
    )
    pdf, snapshot = bytes(issued.pdf), issued.snapshot
    base = cost_base(billed.service, amount="25000.00", units="100")
    corrected = services.unit_cost_correct(base, "Charges de personnel omises.")
    services.unit_cost_notify(corrected, date(2026, 6, 15))
    issued.refresh_from_db()
    assert bytes(issued.pdf) == pdf
    assert issued.snapshot == snapshot
    assert snapshot["lines"][0]["unit_cost"] == "242.31"
    assert "242,31 €" in pdf_text(bytes(issued.pdf))
    draft = statements.statement_correct(issued, reason="Coût unitaire corrigé (version 2).")
    [line] = draft.lines.all()
    assert line.unit_cost_notified_on == date(2026, 6, 15)
    assert draft.snapshot["lines"][0]["unit_cost_notified_on"] == "2026-06-15"


def test_a_new_draft_is_valued_at_the_corrected_version(billed):
    base = cost_base(billed.service, amount="25000.00", units="100")
    corrected = services.unit_cost_correct(base, "Charges de personnel omises.")
    services.unit_cost_notify(corrected, date(2026, 6, 15))
    drafts = {s.payer.name: s for s in statements.statements_prepare(2026)}
    assert drafts["Commune A"].lines.get().unit_cost == Decimal("250.00")
    assert drafts["Commune A"].total == Decimal("9250.00")  # 37 × 250,00 €


def test_the_simulation_projects_at_the_current_version(billed):
    base = cost_base(billed.service, amount="25000.00", units="100")
    services.unit_cost_correct(base, "Charges de personnel omises.")
    rows = {
        (r.year, r.organisation.name): r.projected for r in services.simulate(billed.convention)
    }
    assert rows[(2026, "Commune A")] == Decimal("30000.00")  # 120 units × 250,00 €


# --- screens -------------------------------------------------------------------------------------


def test_the_page_refuses_to_recompute_a_notified_unit_cost_without_an_error_500(
    client, personas, notified
):
    base, unit_cost = notified
    client.force_login(personas.finance)
    response = client.post(reverse("costing:unit-cost-compute", args=[base.pk]), follow=True)
    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "notifié le 30/03/2026" in html
    assert "version corrigée" in html
    unit_cost.refresh_from_db()
    assert unit_cost.amount == Decimal("250.00")


def test_finance_corrects_a_notified_unit_cost_from_its_page(client, personas, notified):
    base, first = notified
    url = reverse("costing:cost-base", args=[base.pk])
    correct = reverse("costing:unit-cost-correct", args=[base.pk])
    client.force_login(personas.reader_a)
    assert client.post(correct, {"reason": "Motif"}).status_code == 403
    client.force_login(personas.finance)
    page = unescape(client.get(url).content.decode())
    assert "Corriger (nouvelle version)" in page
    assert 'name="csrfmiddlewaretoken"' in page
    assert re.search(r'<label\s+for="id_reason"[^>]*>\s*Motif de la correction', page)
    refused = client.post(correct, {"reason": "  "})
    assert refused.status_code == 200
    assert "Indiquez le motif de la correction" in unescape(refused.content.decode())
    assert UnitCost.objects.filter(service=base.service).count() == 1
    CostLine.objects.filter(cost_base=base).update(accounts_amount=Decimal("26000.00"))
    response = client.post(correct, {"reason": "Erreur de report du compte 6411."}, follow=True)
    html = unescape(response.content.decode())
    assert "Version 2 du coût unitaire 2026 créée : 260,00 €" in html
    assert "corrige la version 1" in html
    assert "Erreur de report du compte 6411." in html
    assert "notifiée le 30/03/2026" in html  # version 1, still shown with its own date
    second = UnitCost.objects.current().get(service=base.service, year=2026)
    assert second.version == 2
    response = client.post(
        reverse("costing:unit-cost-notify", args=[base.pk]),
        {"notified_on": "15/06/2026"},
        follow=True,
    )
    second.refresh_from_db()
    assert second.notified_on == date(2026, 6, 15)
    first.refresh_from_db()
    assert first.notified_on == date(2026, 3, 30)
    again = client.post(
        reverse("costing:unit-cost-notify", args=[base.pk]),
        {"notified_on": "20/06/2026"},
        follow=True,
    )
    assert "déjà notifiée le 15/06/2026" in unescape(again.content.decode())
    listing = unescape(client.get(reverse("costing:cost-bases", args=[2026])).content.decode())
    assert "260,00\u00a0€" in listing
    assert "v2" in listing


def test_the_admin_shows_a_notified_unit_cost_read_only(client, personas, notified):
    base, unit_cost = notified
    client.force_login(personas.admin)
    change = reverse("admin:costing_unitcost_change", args=[unit_cost.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"amount": "1"}).status_code == 403
    delete = reverse("admin:costing_unitcost_delete", args=[unit_cost.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    unit_cost.refresh_from_db()
    assert unit_cost.amount == Decimal("250.00")
