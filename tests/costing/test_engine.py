"""The reimbursement engine, without a database: worked examples of docs/costing.md and
properties that hold for any input."""

import random
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costing import engine
from costing.engine import (
    ConventionInput,
    CostLineInput,
    EngineError,
    KeySegment,
    Party,
    Period,
    ServiceInput,
    Usage,
    compute_unit_cost,
    compute_year,
)
from costing.money import round_cents

METRO = Party(1, "246300701", "Clermont Auvergne Métropole", is_epci=True)
AUBIERE = Party(2, "216300145", "Aubière")
AULNAT = Party(3, "216300194", "Aulnat")
BEAUMONT = Party(4, "216300327", "Beaumont")
CLERMONT = Party(5, "216301135", "Clermont-Ferrand")
YEAR = Period(date(2025, 1, 1), date(2025, 12, 31))
HALVES = (Period(date(2025, 1, 1), date(2025, 6, 30)), Period(date(2025, 7, 1), date(2025, 12, 31)))


def test_engine_imports_no_django():
    root = Path(__file__).resolve().parents[2]
    code = "import sys, costing.engine; print(sorted(m for m in sys.modules if m.split('.')[0] in {'django', 'conventions', 'mutualisation'}))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- worked examples (docs/costing.md) ---------------------------------------------------------


def test_example_unit_cost_448_278_27_over_1850_units_is_242_31():
    lines = [
        CostLineInput(
            "Rémunérations et charges", engine.PERSONNEL, D("402150.00"), D("6030.27"), True
        ),
        CostLineInput("Fournitures", engine.SUPPLIES, D("12480.00"), D("0"), True),
        CostLineInput(
            "Renouvellement des postes", engine.ASSET_RENEWAL, D("18000.00"), D("-1200.00"), True
        ),
        CostLineInput(
            "Contrats de maintenance", engine.SERVICE_CONTRACTS, D("10818.00"), D("0"), True
        ),
        CostLineInput("Réception annuelle", engine.OTHER_LINKED, D("3500.00"), D("0"), False),
    ]
    result = compute_unit_cost(lines, D("1850"))
    assert result.eligible_cost == D("448278.27")
    assert result.excluded_cost == D("3500.00")
    assert result.unit_cost == D("242.31")


def test_example_37_units_at_242_31_give_8965_47():
    convention = ConventionInput(
        reference="CONV-2025-001",
        payee=METRO,
        payers=(AUBIERE,),
        services=(ServiceInput("si", "Systèmes d'information", D("242.31")),),
        periods=(YEAR,),
        usages=(
            Usage(AUBIERE.id, "si", date(2025, 3, 1), D("20")),
            Usage(AUBIERE.id, "si", date(2025, 9, 1), D("17")),
        ),
    )
    [line] = compute_year(2025, [convention]).lines
    assert (line.units, line.unit_cost, line.amount, line.usage_count) == (
        D("37"),
        D("242.31"),
        D("8965.47"),
        2,
    )


def test_example_100_euros_shared_by_population_of_three_equal_communes():
    service = ServiceInput(
        "juridique",
        "Affaires juridiques",
        None,
        allocation_key=engine.KEY_FIXED_SHARES,
        segments=(KeySegment(YEAR, {AUBIERE.id: D(1), AULNAT.id: D(1), BEAUMONT.id: D(1)}),),
        total_cost=D("100.00"),
    )
    convention = ConventionInput(
        "CONV-2025-002", METRO, (AUBIERE, AULNAT, BEAUMONT), (service,), (YEAR,)
    )
    amounts = {line.payer.name: line.amount for line in compute_year(2025, [convention]).lines}
    assert amounts == {"Aubière": D("33.34"), "Aulnat": D("33.33"), "Beaumont": D("33.33")}


def test_example_instalments_and_regularisation():
    convention = ConventionInput(
        reference="CONV-2025-003",
        payee=METRO,
        payers=(AUBIERE,),
        services=(ServiceInput("si", "Systèmes d'information", D("242.31")),),
        periods=(YEAR,),
        usages=(Usage(AUBIERE.id, "si", date(2025, 5, 1), D("37")),),
        forecasts={(AUBIERE.id, "si"): D("40")},
        instalment_count=4,
        called={
            AUBIERE.id: tuple(
                engine.CalledInstalment(rank, date(2025, month, 1), D("2423.10"), f"T-{rank}")
                for rank, month in ((1, 1), (2, 4), (3, 7))
            )
        },
    )
    [settlement] = compute_year(2025, [convention]).settlements
    assert settlement.forecast == D("9692.40")
    # Planned: four acomptes, due on the first day of each quarter.
    assert [(i.due_date, i.amount) for i in settlement.planned] == [
        (date(2025, 1, 1), D("2423.10")),
        (date(2025, 4, 1), D("2423.10")),
        (date(2025, 7, 1), D("2423.10")),
        (date(2025, 10, 1), D("2423.10")),
    ]
    # Only three were actually called: the regularisation uses them, not the plan.
    assert settlement.instalments_total == D("7269.30")
    assert settlement.actual == D("8965.47")
    assert settlement.balance == D("1696.17")  # to collect
    assert settlement.channel == engine.CHANNEL_TITRE


def test_example_service_commun_by_units_used_on_the_attribution_de_compensation():
    """Mixed settlement: the forecast cost shared by forecast units is imputed on the AC; the
    actual cost shared by the units used (the managing EPCI's own included) gives the actual
    shares, which add up exactly to the cost; the balance goes by titre."""
    convention = ConventionInput(
        reference="CONV-2025-004",
        payee=METRO,
        payers=(AUBIERE, AULNAT),
        services=(
            ServiceInput(
                "ads",
                "Instruction ADS",
                None,
                allocation_key=engine.KEY_UNITS,
                total_cost=D("100000.00"),
                forecast_cost=D("96000.00"),
                segments=(KeySegment(YEAR),),
            ),
        ),
        periods=(YEAR,),
        usages=(
            Usage(AUBIERE.id, "ads", date(2025, 6, 1), D("212.5")),
            Usage(AULNAT.id, "ads", date(2025, 6, 1), D("87.5")),
            Usage(METRO.id, "ads", date(2025, 6, 1), D("33")),
        ),
        forecasts={(AUBIERE.id, "ads"): D("200"), (AULNAT.id, "ads"): D("100")},
        settlement_mode=engine.SETTLEMENT_MIXED,
        instalment_count=4,
    )
    result = compute_year(2025, [convention])
    shares = {line.payer.name: line.amount for line in result.lines + result.borne_by_payee}
    assert shares == {
        "Aubière": D("63813.81"),
        "Aulnat": D("26276.28"),
        "Clermont Auvergne Métropole": D("9909.91"),
    }
    assert sum(shares.values()) == D("100000.00")
    aubiere, aulnat = result.settlements
    assert aubiere.ac_deduction == D("64000.00")  # 96 000 × 200 / 300
    assert aubiere.balance == D("-186.19")
    assert aubiere.channel == engine.CHANNEL_MANDAT  # a refund, never a negative titre
    assert aulnat.ac_deduction == D("32000.00")
    assert aulnat.balance == D("-5723.72")
    assert aubiere.planned == ()
    assert aubiere.called == ()


def test_ac_only_balance_is_carried_into_next_years_ac():
    convention = ConventionInput(
        reference="CONV-2025-013",
        payee=METRO,
        payers=(AUBIERE,),
        services=(
            ServiceInput(
                "paie",
                "Paie",
                None,
                allocation_key=engine.KEY_FIXED_SHARES,
                total_cost=D("12000.00"),
                forecast_cost=D("10000.00"),
                segments=(
                    KeySegment(YEAR, {AUBIERE.id: D(40)}, engine.MANAGING_FIXED_PERCENT, D(60)),
                ),
            ),
        ),
        periods=(YEAR,),
        settlement_mode=engine.SETTLEMENT_AC,
    )
    [settlement] = compute_year(2025, [convention]).settlements
    assert (settlement.actual, settlement.ac_deduction, settlement.balance) == (
        D("4800.00"),
        D("4000.00"),
        D("800.00"),
    )
    assert settlement.channel == engine.CHANNEL_AC_NEXT_YEAR


def test_example_net_position_across_both_directions():
    descending = ConventionInput(
        "CONV-2025-005",
        METRO,
        (CLERMONT,),
        (ServiceInput("si", "SI", D("100.00")),),
        (YEAR,),
        usages=(Usage(CLERMONT.id, "si", date(2025, 2, 1), D("30")),),
    )
    ascending = ConventionInput(
        "CONV-2025-006",
        CLERMONT,
        (METRO,),
        (ServiceInput("voirie", "Voirie", D("45.50")),),
        HALVES,
        usages=(
            Usage(METRO.id, "voirie", date(2025, 3, 1), D("100")),
            Usage(METRO.id, "voirie", date(2025, 10, 1), D("20")),
        ),
    )
    result = compute_year(2025, [descending, ascending])
    positions = {p.party.name: p for p in result.positions}
    assert positions["Clermont-Ferrand"].receivable == D("5460.00")
    assert positions["Clermont-Ferrand"].payable == D("3000.00")
    assert positions["Clermont-Ferrand"].net == D("2460.00")  # the Métropole owes Clermont-Ferrand
    assert positions["Clermont Auvergne Métropole"].net == D("-2460.00")
    assert [line.period for line in result.lines if line.convention == "CONV-2025-006"] == list(
        HALVES
    )


def test_managing_organisation_bears_its_own_share_without_billing_itself():
    service = ServiceInput(
        "archives",
        "Archives",
        None,
        allocation_key=engine.KEY_FIXED_SHARES,
        segments=(KeySegment(YEAR, {METRO.id: D(60), AUBIERE.id: D(25), AULNAT.id: D(15)}),),
        total_cost=D("90000.00"),
    )
    result = compute_year(
        2025, [ConventionInput("CONV-2025-007", METRO, (AUBIERE, AULNAT), (service,), (YEAR,))]
    )
    assert [(line.payer.name, line.amount) for line in result.lines] == [
        ("Aubière", D("22500.00")),
        ("Aulnat", D("13500.00")),
    ]
    assert [(line.payer.name, line.amount) for line in result.borne_by_payee] == [
        ("Clermont Auvergne Métropole", D("54000.00"))
    ]
    assert result.total == D("36000.00")


def test_weights_all_zero_is_an_error_not_a_lost_cost():
    service = ServiceInput(
        "archives",
        "Archives",
        None,
        allocation_key=engine.KEY_POPULATION,
        segments=(KeySegment(YEAR, {AUBIERE.id: D(0)}, engine.MANAGING_NONE),),
        total_cost=D("10.00"),
    )
    result = compute_year(
        2025, [ConventionInput("CONV-2025-008", METRO, (AUBIERE,), (service,), (YEAR,))]
    )
    assert result.lines == ()
    [finding] = result.findings
    assert finding.code == "NOT_COMPUTED"
    assert "toutes les pondérations sont nulles" in finding.message


def test_reference_units_must_be_positive():
    with pytest.raises(EngineError, match="strictement positif"):
        compute_unit_cost([], D("0"))


def test_provisional_unit_cost_by_index():
    assert engine.provisional_unit_cost(D("242.31"), D("104.2"), D("101.5")) == D("248.76")


def test_a_unit_cost_too_large_to_store_is_an_explicit_error():
    """Found by fuzzing: an index of 1e308 (or 0,001 reference unit for a large cost) overflowed
    the rounding or the stored amount's 12 digits (a 500)."""
    with pytest.raises(EngineError, match="dépasserait 9 999 999 999,99 €"):
        engine.provisional_unit_cost(D("250.00"), D("1e308"), D("0.001"))
    with pytest.raises(EngineError, match="dépasserait 9 999 999 999,99 €"):
        compute_unit_cost(
            [CostLineInput("Agents", engine.PERSONNEL, D("100000000.00"), D("0"), True)],
            D("0.001"),
        )
    assert engine.provisional_unit_cost(D("9999999.99"), D("1000"), D("1")) == D("9999999990.00")


@pytest.mark.parametrize(
    ("year", "signature", "deadline"),
    [
        (2025, None, date(2025, 4, 15)),
        (2026, None, date(2026, 4, 30)),  # renewal of the municipal councils
        (2025, date(2025, 11, 30), date(2026, 2, 28)),
        (2025, date(2024, 12, 20), date(2025, 4, 15)),
    ],
)
def test_notification_deadline(year, signature, deadline):
    assert (
        engine.notification_deadline(year, renewal_years=[2020, 2026], signature_date=signature)
        == deadline
    )


def test_compliance_findings_name_each_gap():
    facts = engine.ComplianceInput(
        convention="CONV-2025-009",
        is_mise_a_disposition=True,
        unit_cost_method="",
        periodicity_months=18,
        payers_without_forecast=("Aulnat",),
        cost_lines=(
            CostLineInput("Quote-part siège", engine.OVERHEAD, D("1000"), D("0"), True, ""),
            CostLineInput(
                "Frais de structure", engine.OVERHEAD, D("1000"), D("0"), True, "Clé de temps passé"
            ),
            CostLineInput("Cadeaux", engine.OTHER_LINKED, D("10"), D("0"), False),
        ),
        notifications=(
            ("SI", date(2025, 5, 2), date(2025, 4, 15)),
            ("Paie", None, date(2025, 4, 15)),
        ),
        amounts_without_usage=("Aubière",),
    )
    codes = [finding.code for finding in engine.compliance_findings(facts)]
    assert codes == [
        "NO_METHOD",
        "NO_FORECAST",
        "PERIODICITY",
        "UNJUSTIFIED_LINE",
        "OVERHEAD_MAD",
        "INELIGIBLE_LINE",
        "LATE_NOTIFICATION",
        "NOT_NOTIFIED",
        "NO_USAGE",
    ]


# --- properties --------------------------------------------------------------------------------

PARTIES = [AUBIERE, AULNAT, BEAUMONT, CLERMONT]
money = st.integers(min_value=0, max_value=10**8).map(lambda c: D(c) / 100)
units = st.integers(min_value=0, max_value=10**6).map(lambda c: D(c) / 1000)
days = st.dates(min_value=date(2025, 1, 1), max_value=date(2025, 12, 31))


@st.composite
def conventions(draw):
    made = []
    for index in range(draw(st.integers(min_value=1, max_value=4))):
        payers = tuple(
            draw(st.lists(st.sampled_from(PARTIES), min_size=1, max_size=4, unique=True))
        )
        keyed = draw(st.booleans())
        if keyed:
            weights = {p.id: draw(st.integers(min_value=0, max_value=1000).map(D)) for p in payers}
            if not any(weights.values()):
                weights[payers[0].id] = D(1)
            service = ServiceInput(
                "s",
                "S",
                None,
                allocation_key=engine.KEY_POPULATION,
                segments=(KeySegment(YEAR, weights),),
                total_cost=draw(money),
            )
            usages = ()
        else:
            service = ServiceInput("s", "S", draw(money))
            usages = tuple(
                Usage(draw(st.sampled_from(payers)).id, "s", draw(days), draw(units))
                for _ in range(draw(st.integers(min_value=0, max_value=12)))
            )
        forecasts = {(p.id, "s"): draw(units) for p in payers}
        made.append(
            ConventionInput(
                f"CONV-2025-{index:03d}",
                METRO,
                payers,
                (service,),
                draw(st.sampled_from([(YEAR,), HALVES])),
                usages=usages,
                forecasts=forecasts,
                instalment_count=draw(st.integers(min_value=0, max_value=12)),
                settlement_mode=draw(
                    st.sampled_from([engine.SETTLEMENT_TITRE, engine.SETTLEMENT_MIXED])
                ),
            )
        )
    return made


@settings(max_examples=150, deadline=None)
@given(conventions())
def test_amounts_are_never_negative_for_non_negative_inputs(inputs):
    result = compute_year(2025, inputs)
    assert all(line.amount >= 0 for line in result.lines)
    assert all(
        s.forecast >= 0 and all(i.amount >= 0 for i in s.planned) for s in result.settlements
    )
    assert all(sum(i.amount for i in s.planned) in (s.forecast, 0) for s in result.settlements)
    assert result.total == sum(line.amount for line in result.lines)
    assert sum(p.net for p in result.positions) == 0


@settings(max_examples=100, deadline=None)
@given(conventions(), st.randoms(use_true_random=False))
def test_results_do_not_depend_on_input_order(inputs, rng: random.Random):
    shuffled = []
    for convention in inputs:
        usages = list(convention.usages)
        rng.shuffle(usages)
        payers = list(convention.payers)
        rng.shuffle(payers)
        shuffled.append(
            ConventionInput(
                convention.reference,
                convention.payee,
                tuple(payers),
                convention.services,
                convention.periods,
                tuple(usages),
                convention.forecasts,
                convention.instalment_count,
                convention.settlement_mode,
            )
        )
    rng.shuffle(shuffled)
    assert compute_year(2025, shuffled) == compute_year(2025, inputs)


@st.composite
def keyed_conventions(draw):
    """A convention with one service commun shared by population or fixed shares, over one or
    two segments, the managing organisation taking part as any of the terms may state."""
    payers = tuple(draw(st.lists(st.sampled_from(PARTIES), min_size=1, max_size=4, unique=True)))
    periods = draw(st.sampled_from([(YEAR,), HALVES]))
    mode = draw(
        st.sampled_from(
            ["", engine.MANAGING_NONE, engine.MANAGING_WEIGHT, engine.MANAGING_FIXED_PERCENT]
        )
    )
    segments = tuple(
        KeySegment(
            period,
            {p.id: draw(st.integers(min_value=0, max_value=1000).map(D)) for p in payers},
            mode,
            draw(st.integers(min_value=0, max_value=100).map(D)) if mode else None,
        )
        for period in periods
    )
    cost = draw(money)
    service = ServiceInput(
        "s",
        "S",
        None,
        allocation_key=draw(st.sampled_from([engine.KEY_POPULATION, engine.KEY_FIXED_SHARES])),
        total_cost=cost,
        forecast_cost=cost,
        segments=segments,
    )
    return ConventionInput("CONV-2025-001", METRO, payers, (service,), periods)


@settings(max_examples=150, deadline=None)
@given(keyed_conventions())
def test_a_forecast_cost_equal_to_the_actual_cost_is_shared_as_the_actual_lines(convention):
    """The forecast of a service commun whose forecast cost is its actual cost is read from the
    actual lines: the same as sharing the forecast cost again."""
    try:
        lines, borne, _findings = engine.convention_year(2025, convention)
    except EngineError:
        return
    assert engine.forecast_amounts(2025, convention, lines + borne) == engine.forecast_amounts(
        2025, convention
    )


def test_a_convention_that_cannot_be_computed_is_a_finding_not_a_lost_year():
    broken = ConventionInput(
        "CONV-2025-010",
        METRO,
        (AUBIERE,),
        (
            ServiceInput(
                "x",
                "Archives",
                None,
                allocation_key=engine.KEY_FIXED_SHARES,
                segments=(KeySegment(YEAR, {}),),
                total_cost=D("10.00"),
            ),
        ),
        (YEAR,),
    )
    fine = ConventionInput(
        "CONV-2025-011",
        METRO,
        (AULNAT,),
        (ServiceInput("si", "SI", D("10.00")),),
        (YEAR,),
        usages=(Usage(AULNAT.id, "si", date(2025, 1, 1), D("2")),),
    )
    result = compute_year(2025, [broken, fine])
    assert [line.amount for line in result.lines] == [D("20.00")]
    assert [(f.convention, f.code) for f in result.findings] == [("CONV-2025-010", "NOT_COMPUTED")]
    assert "toutes les pondérations sont nulles" in result.findings[0].message


def test_a_convention_without_period_in_the_year_is_an_error():
    convention = ConventionInput(
        "CONV-2025-012", METRO, (AULNAT,), (ServiceInput("si", "SI", D("10.00")),), ()
    )
    result = compute_year(2025, [convention])
    assert [f.code for f in result.findings] == ["NOT_COMPUTED"]


# --- keyed services communs: prorata, avenants, the managing organisation's part --------------


def population_service(segments, total="36500.00", forecast=None):
    return ServiceInput(
        "rh",
        "Ressources humaines",
        None,
        allocation_key=engine.KEY_POPULATION,
        total_cost=D(total),
        forecast_cost=D(forecast or total),
        segments=segments,
    )


def test_keyed_service_ending_on_31_march_shares_only_the_cost_of_the_covered_days():
    """36 500 € a year, covered from 1 January to 31 March 2025: 90 days of 365 = 9 000 €."""
    q1 = Period(date(2025, 1, 1), date(2025, 3, 31))
    service = population_service(
        (KeySegment(q1, {AUBIERE.id: D(3), AULNAT.id: D(1)}, engine.MANAGING_NONE),)
    )
    result = compute_year(
        2025, [ConventionInput("CONV-2025-020", METRO, (AUBIERE, AULNAT), (service,), (q1,))]
    )
    assert [
        (line.payer.name, line.period, line.shared_cost, line.amount) for line in result.lines
    ] == [
        ("Aubière", q1, D("9000.00"), D("6750.00")),
        ("Aulnat", q1, D("9000.00"), D("2250.00")),
    ]
    # The forecast (AC deduction or acomptes) follows the same covered part.
    assert [s.forecast for s in result.settlements] == [D("6750.00"), D("2250.00")]


def test_an_avenant_that_changes_the_key_splits_the_year():
    first = Period(date(2025, 1, 1), date(2025, 6, 30))  # 181 days
    second = Period(date(2025, 7, 1), date(2025, 12, 31))  # 184 days
    service = ServiceInput(
        "rh",
        "RH",
        None,
        allocation_key=engine.KEY_FIXED_SHARES,
        total_cost=D("36500.00"),
        forecast_cost=D("36500.00"),
        segments=(
            KeySegment(first, {AUBIERE.id: D(50), AULNAT.id: D(50)}),
            KeySegment(second, {AUBIERE.id: D(80), AULNAT.id: D(20)}),
        ),
    )
    result = compute_year(
        2025,
        [ConventionInput("CONV-2025-021", METRO, (AUBIERE, AULNAT), (service,), (first, second))],
    )
    assert [(line.payer.name, line.period, line.amount) for line in result.lines] == [
        ("Aubière", first, D("9050.00")),
        ("Aubière", second, D("14720.00")),
        ("Aulnat", first, D("9050.00")),
        ("Aulnat", second, D("3680.00")),
    ]
    assert result.total == D("36500.00")


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        # The EPCI has no population: without a stated part it would bear nothing.
        (engine.MANAGING_NONE, None, {"Aubière": D("75000.00"), "Aulnat": D("25000.00")}),
        # A fixed 40 % for the EPCI, the remaining 60 % by population among the communes.
        (
            engine.MANAGING_FIXED_PERCENT,
            D(40),
            {
                "Clermont Auvergne Métropole": D("40000.00"),
                "Aubière": D("45000.00"),
                "Aulnat": D("15000.00"),
            },
        ),
        # A weight entered for the EPCI in the key (an equivalent population of 4 000).
        (
            engine.MANAGING_WEIGHT,
            D(4000),
            {
                "Clermont Auvergne Métropole": D("25000.00"),
                "Aubière": D("56250.00"),
                "Aulnat": D("18750.00"),
            },
        ),
    ],
)
def test_the_epcis_own_share_of_a_population_key_is_what_the_terms_state(mode, value, expected):
    service = population_service(
        (KeySegment(YEAR, {AUBIERE.id: D(9000), AULNAT.id: D(3000)}, mode, value),),
        total="100000.00",
    )
    result = compute_year(
        2025, [ConventionInput("CONV-2025-022", METRO, (AUBIERE, AULNAT), (service,), (YEAR,))]
    )
    shares = {line.payer.name: line.amount for line in result.lines + result.borne_by_payee}
    assert shares == expected
    assert sum(shares.values()) == D("100000.00")
    assert [f.code for f in result.findings] == []


def test_a_population_key_that_does_not_state_the_epcis_part_is_a_finding():
    service = population_service((KeySegment(YEAR, {AUBIERE.id: D(9000), AULNAT.id: D(3000)}),))
    result = compute_year(
        2025, [ConventionInput("CONV-2025-023", METRO, (AUBIERE, AULNAT), (service,), (YEAR,))]
    )
    assert [f.code for f in result.findings] == ["MANAGING_SHARE_UNSTATED"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=10**6), min_size=3, max_size=3),
    money,
)
def test_shares_by_units_used_add_up_exactly_to_the_cost(used, cost):
    if not any(used):
        used[0] = 1
    parties = (METRO, AUBIERE, AULNAT)
    convention = ConventionInput(
        "CONV-2025-024",
        METRO,
        (AUBIERE, AULNAT),
        (
            ServiceInput(
                "ads",
                "ADS",
                None,
                allocation_key=engine.KEY_UNITS,
                total_cost=cost,
                forecast_cost=cost,
                segments=(KeySegment(YEAR),),
            ),
        ),
        (YEAR,),
        usages=tuple(
            Usage(p.id, "ads", date(2025, 5, 1), D(n) / 1000)
            for p, n in zip(parties, used, strict=True)
        ),
    )
    result = compute_year(2025, [convention])
    assert sum(line.amount for line in result.lines + result.borne_by_payee) == cost


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dates(min_value=date(2025, 1, 1), max_value=date(2025, 12, 31)),
            st.integers(min_value=0, max_value=120),
        ),
        min_size=1,
        max_size=6,
    ),
    st.lists(
        st.tuples(
            st.sampled_from([AUBIERE, AULNAT]),
            st.dates(min_value=date(2024, 12, 1), max_value=date(2026, 1, 31)),
        ),
        max_size=20,
    ),
)
def test_period_totals_add_up_the_usages_of_each_period(periods, dated):
    """Placing each usage in its period by bisection adds up, period by period, the usages a
    test of every period finds: none lost, none twice; overlapping or unordered periods (never
    made by the services, but accepted) are tested one by one."""
    convention = ConventionInput(
        "CONV-2025-001",
        METRO,
        (AUBIERE, AULNAT),
        (ServiceInput("si", "SI", D("10.00")),),
        tuple(Period(start, start + timedelta(days=length)) for start, length in periods),
        usages=tuple(
            Usage(payer.id, "si", day, D(rank + 1) / 1000, count=rank % 3 + 1)
            for rank, (payer, day) in enumerate(dated)
        ),
    )
    for payer in (AUBIERE, AULNAT):
        expected = {}
        for index, period in enumerate(convention.periods):
            usages = convention.usages_of(payer.id, "si", period)
            if usages:
                expected[index] = (sum(u.units for u in usages), sum(u.count for u in usages))
        assert convention.period_totals.get((payer.id, "si"), {}) == expected


def test_monthly_usages_are_placed_in_their_months_by_bisection():
    months = tuple(
        Period(date(2025, m, 1), date(2025, m + 1, 1) - timedelta(days=1)) for m in range(1, 12)
    ) + (Period(date(2025, 12, 1), date(2025, 12, 31)),)
    convention = ConventionInput(
        "CONV-2025-001",
        METRO,
        (AUBIERE,),
        (ServiceInput("si", "SI", D("10.00")),),
        months,
        usages=tuple(Usage(AUBIERE.id, "si", p.start, D("1")) for p in months),
    )
    assert convention.period_starts == [p.start for p in months]
    assert convention.period_totals[(AUBIERE.id, "si")] == {i: (D("1"), 1) for i in range(12)}


@given(
    cost=st.integers(min_value=-(10**13), max_value=10**13).map(lambda c: D(c).scaleb(-3)),
    split=st.integers(min_value=1, max_value=364),
)
def test_the_cost_of_a_year_is_prorated_exactly_whole_or_split_by_an_avenant(cost, split):
    whole = engine.prorated(cost, 2025, [KeySegment(engine.year_period(2025))])
    assert whole == [round_cents(cost)]
    assert whole[0].as_tuple().exponent == -2
    cut = date(2025, 1, 1) + timedelta(days=split)
    halves = engine.prorated(
        cost,
        2025,
        [
            KeySegment(engine.Period(date(2025, 1, 1), cut - timedelta(days=1))),
            KeySegment(engine.Period(cut, date(2025, 12, 31))),
        ],
    )
    assert sum(halves) == round_cents(cost)
    # A part of the year not covered is not billed.
    first_half = engine.prorated(
        cost, 2025, [KeySegment(engine.Period(date(2025, 1, 1), cut - timedelta(days=1)))]
    )
    assert first_half == halves[:1]


def test_a_key_by_units_forecasts_each_segment_among_its_members_only():
    """A member that left on 1 July shares the forecast cost of January to June only: the
    second half-year's forecast is shared among those still members (docs/costing.md §4.1)."""
    first = Period(date(2025, 1, 1), date(2025, 6, 30))  # 181 days: 18 100,00 €
    second = Period(date(2025, 7, 1), date(2025, 12, 31))  # 184 days: 18 400,00 €
    service = ServiceInput(
        "ads",
        "ADS",
        None,
        allocation_key=engine.KEY_UNITS,
        total_cost=D("36500.00"),
        forecast_cost=D("36500.00"),
        segments=(
            KeySegment(first, members=frozenset({AUBIERE.id, AULNAT.id})),
            KeySegment(second, members=frozenset({AUBIERE.id})),
        ),
    )
    convention = ConventionInput(
        "CONV-2025-030",
        METRO,
        (AUBIERE, AULNAT),
        (service,),
        (YEAR,),
        forecasts={(AUBIERE.id, "ads"): D(100), (AULNAT.id, "ads"): D(100)},
    )
    assert engine.keyed_forecast(2025, convention, service) == {
        AUBIERE.id: D("9050.00") + D("18400.00"),
        AULNAT.id: D("9050.00"),
    }


def test_acomptes_fall_due_while_each_payer_is_a_party_and_a_leavers_forecast_is_cut():
    """A commune that leaves on 1 April is called acomptes on the forecast of its 90 days only,
    due by March; one joining on 1 September, on its own forecast, due from September. Before,
    both were called four acomptes over the whole year."""
    leaver = Party(20, "216300020", "Commune sortante")
    joiner = Party(21, "216300021", "Commune entrante")
    year = Period(date(2026, 1, 1), date(2026, 12, 31))
    convention = ConventionInput(
        "CONV-2026-040",
        METRO,
        (AUBIERE, leaver, joiner),
        (ServiceInput("si", "SI", D("100.00")),),
        (year,),
        forecasts={
            (AUBIERE.id, "si"): D(120),
            (leaver.id, "si"): D(80),
            (joiner.id, "si"): D(40),
        },
        instalment_count=4,
        presence={
            leaver.id: Period(date(2026, 1, 1), date(2026, 3, 31)),
            joiner.id: Period(date(2026, 9, 1), date(2026, 12, 31)),
        },
    )
    settlements = {s.payer.name: s for s in compute_year(2026, [convention]).settlements}
    stays, leaves, joins = (
        settlements[name] for name in (AUBIERE.name, "Commune sortante", "Commune entrante")
    )
    assert stays.forecast == D("12000.00")
    assert [p.due_date.month for p in stays.planned] == [1, 4, 7, 10]
    assert leaves.forecast == D("1972.60")  # 8 000 € × 90 / 365
    assert sum(p.amount for p in leaves.planned) == D("1972.60")
    assert max(p.due_date for p in leaves.planned) <= date(2026, 3, 31)
    assert joins.forecast == D("4000.00")  # entered for its part of the year
    assert [p.due_date for p in joins.planned] == [
        date(2026, 9, 1),
        date(2026, 10, 1),
        date(2026, 11, 1),
        date(2026, 12, 1),
    ]
