"""Issue 11: the reimbursements page and the dashboard read the year's computation stored per
convention, recompute a convention when its data changed (or on « Recalculer »), show when it
was computed, page their rows, and issue as many queries with many conventions as with few."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.timezone import localtime

from conventions.models import Party, PartyRole, Status, UsageForecast
from costing import services, tables
from costing.models import ReimbursementResult, UnitCost, UsageRecord, UsageSource
from tests.conftest import PASSWORD, log_in
from tests.costing.conftest import cost_base
from tests.factories import (
    ConventionFactory,
    OrganisationFactory,
    PopulationRecordFactory,
    ServiceFactory,
    TermsFactory,
)

pytestmark = pytest.mark.django_db

YEAR = 2026


def billed_conventions(territory, count: int, *, communes: int = 2, first: int = 0) -> list:
    """``count`` mises à disposition in force, each with its service, notified unit cost,
    forecasts and three months of usage of ``communes`` communes."""
    beneficiaries = [territory.commune_a, territory.commune_b] + [
        OrganisationFactory(name=f"Commune {first}-{i}") for i in range(communes - 2)
    ]
    made = []
    for index in range(first, first + count):
        convention = ConventionFactory(
            reference=f"PERF-{index:04d}", status=Status.IN_FORCE, signature_date=date(2025, 12, 1)
        )
        Party.objects.create(
            convention=convention, organisation=territory.epci, role=PartyRole.PROVIDER
        )
        service = ServiceFactory(provider=territory.epci)
        line = convention.services.create(service=service, unit_type=service.unit_type)
        terms = TermsFactory(convention=convention, periodicity_months=1)
        UnitCost.objects.create(
            service=service,
            year=YEAR,
            amount=D("31.17") + index,
            notification_deadline=date(YEAR, 4, 15),
            notified_on=date(YEAR, 3, 1),
        )
        for commune in beneficiaries:
            Party.objects.create(
                convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
            )
            UsageForecast.objects.create(
                terms=terms, service=line, beneficiary=commune, year=YEAR, units=D("30")
            )
            for month in (2, 5, 9):
                start, end = services.month_bounds(YEAR, month)
                UsageRecord.objects.create(
                    convention=convention,
                    beneficiary=commune,
                    service=service,
                    unit_type=service.unit_type,
                    period_start=start,
                    period_end=end,
                    quantity=D("3.5") + month,
                    units=D("3.5") + month,
                    source=UsageSource.IMPORT,
                )
        made.append(convention)
    return made


@pytest.fixture
def finance(client, personas):
    assert log_in(client, personas.finance.username, PASSWORD)
    return client


def page(client, name="costing:reimbursements", query=""):
    response = client.get(reverse(name, args=[YEAR]) + query)
    assert response.status_code == 200
    return response


def computed_at_text(result) -> str:
    return f"Calculé le {localtime(result.computed_at):%d/%m/%Y à %H:%M}"


def test_the_page_shows_the_stored_year_and_recomputes_only_a_convention_whose_data_changed(
    finance, territory
):
    first, second = billed_conventions(territory, 2)
    shown = page(finance)
    stored = {r.convention_id: r for r in ReimbursementResult.objects.filter(year=YEAR)}
    assert set(stored) == {first.pk, second.pk}
    assert computed_at_text(stored[first.pk]) in shown.content.decode()
    assert shown.context["total"] == services.compute_reimbursements(YEAR).result.total
    # Nothing changed: read as stored, nothing recomputed.
    again = page(finance)
    assert again.context["total"] == shown.context["total"]
    assert {r.convention_id: r.computed_at for r in ReimbursementResult.objects.all()} == {
        pk: r.computed_at for pk, r in stored.items()
    }
    # An adjustment of the second convention: that convention only is computed again.
    record = UsageRecord.objects.filter(convention=second).first()
    services.usage_adjust(
        convention=second,
        beneficiary=record.beneficiary,
        service=record.service,
        month_start=record.period_start,
        quantity=D("2"),
        reason="Remarque de la commune",
    )
    changed = page(finance)
    results = {r.convention_id: r for r in ReimbursementResult.objects.filter(year=YEAR)}
    assert results[first.pk].computed_at == stored[first.pk].computed_at
    assert results[second.pk].computed_at > stored[second.pk].computed_at
    fresh = services.compute_reimbursements(YEAR).result.total
    assert changed.context["total"] == fresh == shown.context["total"] + D("2") * (D("31.17") + 1)


@pytest.mark.parametrize(
    "change",
    ["cost base", "party", "terms", "population", "organisation name"],
)
def test_a_change_of_any_input_makes_the_page_recompute(finance, territory, change):
    [convention] = billed_conventions(territory, 1)
    page(finance)
    before = ReimbursementResult.objects.get().fingerprint
    if change == "cost base":
        cost_base(convention.services.get().service, "1000.00")
    elif change == "party":
        Party.objects.create(
            convention=convention,
            organisation=OrganisationFactory(name="Commune D"),
            role=PartyRole.BENEFICIARY,
        )
    elif change == "terms":
        terms = convention.terms.get()
        terms.instalment_count = 2
        terms.save()
    elif change == "population":
        PopulationRecordFactory(organisation=territory.commune_a)
    else:
        territory.commune_a.name = "Commune A renommée"
        territory.commune_a.save()
    shown = page(finance)
    assert ReimbursementResult.objects.get().fingerprint != before
    assert shown.context["total"] == services.compute_reimbursements(YEAR).result.total


@pytest.mark.parametrize("change", ["population", "organisation name"])
def test_a_change_to_an_organisation_of_no_convention_recomputes_nothing(
    finance, territory, change
):
    """One deployment, many territories: a commune renamed or a census loaded elsewhere does
    not make every territory's year computed again."""
    [convention] = billed_conventions(territory, 1)
    page(finance)
    before = ReimbursementResult.objects.get()
    elsewhere = OrganisationFactory(name="Commune d'un autre territoire")
    if change == "population":
        PopulationRecordFactory(organisation=elsewhere)
    else:
        elsewhere.name = "Commune renommée ailleurs"
        elsewhere.save()
    page(finance)
    after = ReimbursementResult.objects.get()
    assert (after.fingerprint, after.computed_at) == (before.fingerprint, before.computed_at)


def test_recalculer_recomputes_for_finance_and_managers_only(client, personas, territory):
    billed_conventions(territory, 2)
    assert log_in(client, personas.finance.username, PASSWORD)
    page(client)
    before = {r.computed_at for r in ReimbursementResult.objects.all()}
    url = reverse("costing:reimbursements-recompute", args=[YEAR])
    response = client.post(url, {"from": "dashboard"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("costing:dashboard", args=[YEAR])
    html = response.content.decode()
    assert "Remboursements 2026 recalculés (2 conventions)." in html
    [after] = {r.computed_at for r in ReimbursementResult.objects.all()}
    assert after > max(before)
    assert computed_at_text(ReimbursementResult.objects.first()) in html
    client.logout()
    assert log_in(client, personas.reader_a.username, PASSWORD)
    assert client.post(url).status_code == 403
    assert "Recalculer" not in page(client).content.decode()


def test_lines_are_paged_and_the_filters_hold_across_pages(finance, territory):
    billed_conventions(territory, 9)  # 9 conventions × 2 communes × 3 months = 54 lines
    first = page(finance)
    assert len(first.context["lines"]) == 54
    assert first.content.decode().count("data-amount") == tables.PER_PAGE
    second = page(finance, query="?lignes-page=2")
    assert second.content.decode().count("data-amount") == 54 - tables.PER_PAGE
    # A filter keeps its lines (and its total) from page to page.
    siren = territory.commune_a.siren
    filtered = page(finance, query=f"?siren={siren}")
    assert len(filtered.context["lines"]) == 27
    assert filtered.content.decode().count("data-amount") == 27
    assert filtered.context["total"] == sum(
        (line.amount for line in filtered.context["lines"]), D("0.00")
    )
    # A page number past the end shows the last page, never an error.
    assert page(finance, query="?lignes-page=99").status_code == 200


def queries_of(client, name, query=""):
    with CaptureQueriesContext(connection) as captured:
        page(client, name, query)
    return len(captured.captured_queries)


@pytest.mark.parametrize("name", ["costing:reimbursements", "costing:dashboard"])
def test_the_page_issues_as_many_queries_with_many_conventions_as_with_few(
    finance, territory, name
):
    billed_conventions(territory, 2, communes=2)
    few_computed = queries_of(finance, name)  # computes and stores the year
    few_stored = queries_of(finance, name)
    billed_conventions(territory, 12, communes=6, first=100)
    queries_of(finance, name)  # the twelve new conventions computed and stored
    many_stored = queries_of(finance, name)
    ReimbursementResult.objects.all().delete()
    many_computed = queries_of(finance, name)
    assert many_stored == few_stored, (few_stored, many_stored)
    assert many_computed == few_computed, (few_computed, many_computed)


def test_a_change_of_the_rules_code_recomputes_every_stored_result(finance, territory, monkeypatch):
    """Before: a stored result stood until its inputs changed, whatever the engine's code became
    meanwhile (« RESULT_RULES_VERSION, à augmenter », never raised in 57 commits): the version
    of the rules is now read from the code that computes them."""
    billed_conventions(territory, 2)
    page(finance)
    before = dict(ReimbursementResult.objects.values_list("convention_id", "fingerprint"))
    assert services.rules_version() == services.rules_version(services.RULES_MODULES)
    monkeypatch.setattr(
        services,
        "RESULT_RULES_VERSION",
        services.rules_version([*services.RULES_MODULES, "conventions/models.py"]),
    )
    shown = page(finance)
    after = dict(ReimbursementResult.objects.values_list("convention_id", "fingerprint"))
    assert set(after) == set(before)
    assert all(after[pk] != before[pk] for pk in before)  # every result recomputed
    assert shown.context["total"] == services.compute_reimbursements(YEAR).result.total
