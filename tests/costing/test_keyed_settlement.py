"""Issue 8 on built data: a service commun shared by a key is settled right on every path
(forecast on the AC, covered days only, the EPCI's stated part, AC only vs mixed), and one
bad cost base never blanks the year."""

import json
import re
from datetime import date
from decimal import Decimal as D
from html import unescape
from io import StringIO

import pytest
from django.core.management import call_command

from conventions.filters import ConventionFilter
from conventions.models import (
    Convention,
    ManagingShare,
    SettlementMode,
    Status,
    Termination,
    Terms,
)
from costing import engine, services, statements
from costing.demo import ensure_account_mapping
from costing.models import CostBase, CostCategory, CostLine, Statement
from tests.costing.conftest import bill, cost_base
from tests.factories import ConventionFactory, TermsFactory

pytestmark = pytest.mark.django_db


def settlements_of(convention, year=2026):
    result = services.compute_reimbursements(year).result
    return {
        s.payer.name: s for s in result.settlements if s.convention == convention.reference
    }, result


def test_keyed_service_commun_on_the_ac_deducts_its_forecast_share(service_commun, territory):
    """Before: 0,00 € deducted from the AC (forecast = unit cost × forecast units only)."""
    convention = bill(service_commun.convention)
    cost_base(service_commun.line.service, actual="40150.00")
    by_payer, _ = settlements_of(convention)
    a, b = by_payer["Commune A"], by_payer["Commune B"]
    # Forecast: the eligible cost 36 500 € shared 1 200 : 800 by population.
    assert (a.ac_deduction, b.ac_deduction) == (D("21900.00"), D("14600.00"))
    # Actual: the cost found once the year is closed, 40 150 €, by the same key.
    assert (a.actual, b.actual) == (D("24090.00"), D("16060.00"))
    # AC only: the balance is carried into next year's AC, never a titre.
    assert (a.balance, a.channel) == (D("2190.00"), engine.CHANNEL_AC_NEXT_YEAR)


def test_keyed_service_commun_by_titre_calls_acomptes_on_its_forecast_share(
    service_commun, territory
):
    convention = bill(service_commun.convention, mode=SettlementMode.TITRE)
    cost_base(service_commun.line.service)
    by_payer, _ = settlements_of(convention)
    planned = by_payer["Commune A"].planned
    assert [(i.due_date, i.amount) for i in planned] == [
        (date(2026, 1, 1), D("5475.00")),
        (date(2026, 4, 1), D("5475.00")),
        (date(2026, 7, 1), D("5475.00")),
        (date(2026, 10, 1), D("5475.00")),
    ]


def test_mixed_settlement_sends_the_balance_by_titre_and_ac_only_never(service_commun, territory):
    convention = bill(service_commun.convention, mode=SettlementMode.MIXED)
    cost_base(service_commun.line.service, actual="40150.00")
    ensure_account_mapping()
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == territory.commune_a)
    assert (draft.ac_deduction, draft.total, draft.balance, draft.balance_channel) == (
        D("21900.00"),
        D("24090.00"),
        D("2190.00"),
        engine.CHANNEL_TITRE,
    )
    booking = draft.snapshot["settlement"]
    assert (booking["on_ac_accounts"], booking["on_service_accounts"]) == ("21900.00", "2190.00")
    assert draft.snapshot["accounts"]["ac_commune"]["account"] == "73211"
    assert draft.snapshot["accounts"]["ac_epci"]["account"] == "739211"

    bill(convention, mode=SettlementMode.AC_IMPUTATION)
    draft = Statement.objects.get(pk=draft.pk)
    statements.statements_prepare(2026)
    draft.refresh_from_db()
    assert draft.balance_channel == engine.CHANNEL_AC_NEXT_YEAR
    assert draft.snapshot["settlement"]["on_service_accounts"] == "0.00"
    assert draft.snapshot["settlement"]["carried_to_next_ac"] == "2190.00"


def test_a_keyed_service_commun_terminated_on_31_march_shares_only_its_days(
    service_commun, territory
):
    convention = bill(service_commun.convention)
    cost_base(service_commun.line.service)
    Termination.objects.create(
        convention=convention,
        notified_on=date(2025, 12, 1),
        effective_on=date(2026, 3, 31),
        requested_by=territory.commune_a,
        reason="Réorganisation.",
        notice_respected=True,
        agents_outcome="Retour des agents.",
    )
    by_payer, result = settlements_of(convention)
    # 36 500 € × 90 / 365 = 9 000 €, shared 1 200 : 800.
    assert (by_payer["Commune A"].actual, by_payer["Commune B"].actual) == (
        D("5400.00"),
        D("3600.00"),
    )
    assert (by_payer["Commune A"].ac_deduction, by_payer["Commune B"].ac_deduction) == (
        D("5400.00"),
        D("3600.00"),
    )
    assert {line.period.end for line in result.lines} == {date(2026, 3, 31)}


def test_the_epci_bears_the_fixed_share_its_terms_state(service_commun, territory):
    bill(service_commun.convention, share=ManagingShare.FIXED_PERCENT, value=D(40))
    cost_base(service_commun.line.service)
    result = services.compute_reimbursements(2026).result
    assert [(line.payer.name, line.amount) for line in result.borne_by_payee] == [
        ("Métropole de test", D("14600.00"))
    ]
    assert sorted((line.payer.name, line.amount) for line in result.lines) == [
        ("Commune A", D("13140.00")),
        ("Commune B", D("8760.00")),
    ]


def test_a_population_key_without_the_epcis_part_is_a_finding_and_a_gate(service_commun, territory):
    from conventions.services.gates import gaps_for

    convention = bill(service_commun.convention, share="")
    cost_base(service_commun.line.service)
    codes = [f.code for f in services.compute_reimbursements(2026).findings]
    assert "MANAGING_SHARE_UNSTATED" in codes
    gaps = " ".join(gaps_for(convention, "submit"))
    assert "précisez comment l'organisation gestionnaire participe au coût" in gaps


def test_one_bad_cost_base_is_a_finding_and_the_other_conventions_are_computed(
    service_commun, territory, mad_descendante
):
    bill(service_commun.convention)
    base = cost_base(service_commun.line.service)
    CostLine.objects.create(
        cost_base=base,
        label="Atténuation erronée",
        category=CostCategory.PERSONNEL,
        account="6419",
        accounts_amount=D("-99999.00"),
    )
    Convention.objects.filter(pk=mad_descendante.convention.pk).update(status=Status.IN_FORCE)
    from costing.models import UnitCost, UsageRecord

    UnitCost.objects.create(
        service=mad_descendante.service,
        year=2026,
        amount=D("10.00"),
        notification_deadline=date(2026, 4, 30),
    )
    UsageRecord.objects.create(
        convention=mad_descendante.convention,
        beneficiary=territory.commune_a,
        service=mad_descendante.service,
        unit_type=mad_descendante.service.unit_type,
        period_start=date(2026, 2, 1),
        period_end=date(2026, 2, 28),
        quantity=D("3"),
        units=D("3"),
        source="IMPORT",
    )
    computed = services.compute_reimbursements(2026)
    assert [(x.convention, x.amount) for x in computed.result.lines] == [
        (mad_descendante.convention.reference, D("30.00"))
    ]
    [finding] = [f for f in computed.findings if f.code == "NOT_COMPUTED"]
    assert finding.convention == service_commun.convention.reference
    assert "négatif" in finding.message


def test_the_year_filter_agrees_with_what_is_billed(territory):
    """Tacit renewal keeps a convention in later years; termination ends it; an avenant's end
    date counts. Before, the filter read only the initial terms' end date."""
    renewed = ConventionFactory(start_date=date(2024, 1, 1), status=Status.IN_FORCE)
    TermsFactory(convention=renewed, end_date=date(2025, 12, 31), tacit_renewal=True)
    ended = ConventionFactory(start_date=date(2024, 1, 1), status=Status.TERMINATED)
    TermsFactory(convention=ended, end_date=date(2028, 12, 31))
    Termination.objects.create(
        convention=ended,
        notified_on=date(2025, 1, 1),
        effective_on=date(2025, 6, 30),
        requested_by=territory.commune_a,
        reason="Fin.",
        notice_respected=True,
        agents_outcome="—",
    )

    def listed(year):
        return set(
            ConventionFilter({"year": str(year)}, queryset=Convention.objects.all()).qs.values_list(
                "reference", flat=True
            )
        )

    assert listed(2026) == {renewed.reference}
    assert listed(2025) == {renewed.reference, ended.reference}


def test_compute_reimbursements_json_shows_each_settlement(service_commun, territory):
    bill(service_commun.convention, mode=SettlementMode.MIXED)
    cost_base(service_commun.line.service, actual="40150.00")
    out = StringIO()
    call_command("compute_reimbursements", "--year", "2026", "--format", "json", stdout=out)
    data = json.loads(out.getvalue())
    [a] = [s for s in data["settlements"] if s["payer"]["name"] == "Commune A"]
    assert {k: a[k] for k in ("forecast", "ac_deduction", "actual", "balance")} == {
        "forecast": "21900.00",
        "ac_deduction": "21900.00",
        "actual": "24090.00",
        "balance": "2190.00",
    }
    assert (a["direction"], a["channel"], a["instalments_called"]) == ("TO_COLLECT", "TITRE", [])


def test_the_simulation_of_a_keyed_service_commun_projects_its_forecast_shares(
    service_commun, territory
):
    """Before: 0,00 € projected (unit cost × forecast units only)."""
    Terms.objects.filter(convention=service_commun.convention).update(
        managing_share_mode=ManagingShare.FIXED_PERCENT, managing_share_value=D(40)
    )
    cost_base(service_commun.line.service)
    rows = services.simulate(service_commun.convention, years=2)
    assert [(r.year, r.organisation.name, r.projected) for r in rows] == [
        (2026, "Commune A", D("13140.00")),
        (2026, "Commune B", D("8760.00")),
        (2027, "Commune A", D("13140.00")),
        (2027, "Commune B", D("8760.00")),
    ]


def test_a_cost_base_on_accounts_older_than_n_minus_2_is_a_finding_of_the_year(
    service_commun, territory
):
    bill(service_commun.convention)
    CostBase.objects.filter(pk=cost_base(service_commun.line.service).pk).update(source_year=2023)
    findings = services.compute_reimbursements(2026).findings
    assert [(f.convention, f.code) for f in findings if f.code == "OLD_SOURCE"] == [
        (service_commun.convention.reference, "OLD_SOURCE")
    ]


def test_the_statement_page_shows_the_ac_imputation_and_the_balance_channel(
    client, personas, service_commun, territory
):
    from django.urls import reverse

    bill(service_commun.convention, mode=SettlementMode.MIXED)
    cost_base(service_commun.line.service, actual="40150.00")
    ensure_account_mapping()
    draft = next(s for s in statements.statements_prepare(2026) if s.payer == territory.commune_a)
    client.force_login(personas.finance)
    page = re.sub(
        r"\s+",
        " ",
        unescape(client.get(reverse("costing:statement", args=[draft.pk])).content.decode()),
    )
    assert "Prévision imputée sur l'attribution de compensation" in page
    assert "− 21 900,00 €" in page
    assert "Titre de recettes émis par le créancier" in page
    assert "comptes 739211 (EPCI) et 73211 (commune)" in page


def test_a_signed_avenant_that_changes_the_fixed_shares_splits_the_year(service_commun, territory):
    from conventions.models import AllocationKey, Amendment, UsageForecast

    line = service_commun.line
    line.allocation_key, line.population_vintage = AllocationKey.FIXED_SHARES, None
    line.save()
    convention = bill(service_commun.convention)
    cost_base(line.service)

    def shares(terms, a, b):
        for commune, percent in ((territory.commune_a, a), (territory.commune_b, b)):
            UsageForecast.objects.create(
                terms=terms,
                service=line,
                beneficiary=commune,
                year=2026,
                units=D(0),
                fixed_share_percent=D(percent),
            )

    shares(service_commun.terms, 50, 50)
    amendment = Amendment.objects.create(
        convention=convention,
        number=1,
        object="Nouvelle clé",
        effective_from=date(2026, 7, 1),
        status=Amendment.AmendmentStatus.SIGNED,
        signature_date=date(2026, 6, 15),
    )
    terms = TermsFactory(
        convention=convention,
        amendment=amendment,
        effective_from=date(2026, 7, 1),
        settlement_mode=SettlementMode.AC_IMPUTATION,
        managing_share_mode=ManagingShare.NONE,
    )
    shares(terms, 80, 20)
    result = services.compute_reimbursements(2026).result
    # 36 500 € × 181 / 365 = 18 100 € shared 50 : 50, then 18 400 € shared 80 : 20.
    assert [(x.payer.name, x.period.start, x.amount) for x in result.lines] == [
        ("Commune A", date(2026, 1, 1), D("9050.00")),
        ("Commune A", date(2026, 7, 1), D("14720.00")),
        ("Commune B", date(2026, 1, 1), D("9050.00")),
        ("Commune B", date(2026, 7, 1), D("3680.00")),
    ]
    assert result.total == D("36500.00")
