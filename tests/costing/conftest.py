"""A billed convention in force with a notified unit cost and usage, for statement tests."""

import importlib
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection, transaction

from conventions.models import Convention, ManagingShare, SettlementMode, Status, Terms
from conventions.services import transitions
from costing import services, statements
from costing.demo import ensure_account_mapping
from costing.models import (
    CostBase,
    CostCategory,
    CostLine,
    Instalment,
    SourceDocument,
    UnitCost,
    UsageRecord,
    UsageSource,
)
from tests.conventions.conftest import (  # noqa: F401 (fixtures shared with these tests)
    add_deliberations,
    mad_descendante,
    make_enforceable,
    service_commun,
)

PARIS = ZoneInfo("Europe/Paris")


# The 2026 statements may be issued once 2026 is over: these tests live in January 2027.
AFTER_YEAR_END = datetime(2027, 1, 15, 10, 0, tzinfo=PARIS)


def issue_after_review(statement, **kwargs):
    """Issue a draft the day after the commune's review window closes."""
    with time_machine.travel(
        datetime.combine(statement.review_until + timedelta(days=1), time(10), tzinfo=PARIS)
    ):
        return statements.statement_issue(statement, **kwargs)


@pytest.fixture
def after_year_end():
    with time_machine.travel(AFTER_YEAR_END):
        yield AFTER_YEAR_END


@pytest.fixture
def unit_cost_kwargs():
    """Override (with parametrize) to bill at a provisional or late-notified unit cost."""
    return {}


@pytest.fixture
def billed(mad_descendante, territory, after_year_end, unit_cost_kwargs):  # noqa: F811
    ensure_account_mapping()  # seeded by a migration, but a transactional test's flush removes it
    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    with time_machine.travel(date(2026, 11, 28)):
        convention = transitions.convention_transition(convention, "deliberate")
        convention = transitions.convention_transition(
            convention, "sign", signature_date=date(2025, 12, 20)
        )
        # Enforceable (transmitted, published, notified) and in force: statements rest on it.
        convention = transitions.convention_transition(
            make_enforceable(convention), "enter_into_force"
        )
    service = mad_descendante.service
    UnitCost.objects.create(
        service=service,
        year=2026,
        amount=Decimal("242.31"),
        **{
            "notification_deadline": date(2026, 4, 30),
            "notified_on": date(2026, 3, 30),
            **unit_cost_kwargs,
        },
    )
    for commune, quantities in (
        (territory.commune_a, ("20", "17")),
        (territory.commune_b, ("12.5",)),
    ):
        for month, quantity in enumerate(quantities, start=3):
            UsageRecord.objects.create(
                convention=convention,
                beneficiary=commune,
                service=service,
                unit_type=service.unit_type,
                period_start=date(2026, month, 1),
                period_end=date(2026, month, 28),
                quantity=Decimal(quantity),
                units=Decimal(quantity),
                source=UsageSource.IMPORT,
            )
    return SimpleNamespace(convention=convention, service=service, territory=territory)


@pytest.fixture
def flushable_statements(transactional_db):
    """Tests on a committed database issue statements and notify unit costs, which the triggers
    then forbid deleting, and PostgreSQL forbids truncating. The teardown lifts the triggers,
    empties the statements (and, on SQLite, whose flush deletes row by row, the unit costs) and
    puts the triggers back, before the test framework's flush."""
    yield
    immutability = importlib.import_module(
        "costing.migrations.0003_issued_statements_are_immutable"
    )
    frozen_unit_costs = importlib.import_module(
        "costing.migrations.0005_settlement_acomptes_unit_cost_versions"
    )
    vendor = connection.vendor
    lift = {
        "sqlite": immutability.SQLITE_BACKWARD + frozen_unit_costs.UNIT_COST_SQLITE_BACKWARD,
        "postgresql": immutability.POSTGRES_BACKWARD,
    }[vendor]
    restore = {
        "sqlite": immutability.SQLITE_FORWARD + frozen_unit_costs.UNIT_COST_SQLITE_FORWARD,
        "postgresql": immutability.POSTGRES_FORWARD,
    }[vendor]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in lift:
            cursor.execute(statement)
        cursor.execute("DELETE FROM costing_statementremark")
        cursor.execute("DELETE FROM costing_statementline")
        cursor.execute("DELETE FROM costing_statement")
        if vendor == "sqlite":
            cursor.execute("UPDATE costing_unitcost SET supersedes_id = NULL")
            cursor.execute("DELETE FROM costing_unitcost")
        for statement in restore:
            cursor.execute(statement)


def record_planned_instalments(year, payer):
    """Call every acompte the engine plans for ``payer`` (as finance would, one by one)."""
    for settlement in services.compute_reimbursements(year).result.settlements:
        if settlement.payer.id != payer.pk:
            continue
        for planned in settlement.planned:
            Instalment.objects.create(
                convention=Convention.objects.get(reference=settlement.convention),
                payer=payer,
                payee_id=settlement.payee.id,
                year=year,
                rank=planned.rank,
                due_date=planned.due_date,
                amount=planned.amount,
            )


def bill(convention, *, mode=SettlementMode.AC_IMPUTATION, share=ManagingShare.NONE, value=None):
    Terms.objects.filter(convention=convention).update(
        settlement_mode=mode, managing_share_mode=share, managing_share_value=value
    )
    Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)
    return Convention.objects.get(pk=convention.pk)


def cost_base(service, amount="36500.00", *, actual=None, forecast=None, year=2026):
    base = CostBase.objects.create(
        service=service,
        year=year,
        source=SourceDocument.CA,
        source_year=2024,
        reference_units=Decimal("1"),
        reference_basis="FORECAST",
        actual_cost=None if actual is None else Decimal(actual),
        forecast_cost=None if forecast is None else Decimal(forecast),
    )
    CostLine.objects.create(
        cost_base=base,
        label="Agents",
        category=CostCategory.PERSONNEL,
        account="6411",
        accounts_amount=Decimal(amount),
    )
    return base


def more_billed_conventions(billed, count: int) -> list:
    """``count`` more conventions like ``billed`` (the EPCI provides its service to communes A
    and B, signed, in force, usage recorded in March): two more drafts each, for measuring how a
    cost grows with the number of statements."""
    from conventions.models import ConventionService, Party, PartyRole, UsageForecast
    from tests.factories import ConventionFactory, TermsFactory

    t, service = billed.territory, billed.service
    created = []
    for _ in range(count):
        convention = ConventionFactory(status=Status.IN_FORCE, signature_date=date(2025, 12, 20))
        Party.objects.bulk_create(
            [Party(convention=convention, organisation=t.epci, role=PartyRole.PROVIDER)]
            + [
                Party(convention=convention, organisation=c, role=PartyRole.BENEFICIARY)
                for c in (t.commune_a, t.commune_b)
            ]
        )
        line = ConventionService.objects.create(
            convention=convention, service=service, unit_type=service.unit_type
        )
        terms = TermsFactory(convention=convention)
        for commune, units in ((t.commune_a, "120"), (t.commune_b, "80")):
            UsageForecast.objects.create(
                terms=terms, service=line, beneficiary=commune, year=2026, units=Decimal(units)
            )
            UsageRecord.objects.create(
                convention=convention,
                beneficiary=commune,
                service=service,
                unit_type=service.unit_type,
                period_start=date(2026, 3, 1),
                period_end=date(2026, 3, 28),
                quantity=Decimal("4"),
                units=Decimal("4"),
                source=UsageSource.IMPORT,
            )
        created.append(convention)
    return created
