"""The engine's work within one convention grows linearly with its members (issue 11: 7 → 112
communes took 253× the time). Counted, never timed: every usage the engine reads and every
period test it makes, for one convention at two sizes."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest

from costing import engine
from costing.engine import ConventionInput, KeySegment, Party, Period, ServiceInput, Usage

METRO = Party(1, "246300701", "Métropole", is_epci=True)


class CountedUsages(tuple):
    """The convention's usages, counting every one the engine reads by iterating over them."""

    reads = 0

    def __iter__(self):
        for usage in tuple.__iter__(self):
            CountedUsages.reads += 1
            yield usage


def months(year: int) -> tuple[Period, ...]:
    periods = []
    for month in range(1, 13):
        start = date(year, month, 1)
        end = (date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)) - timedelta(1)
        periods.append(Period(start, end))
    return tuple(periods)


def convention_of(communes: int) -> ConventionInput:
    """A mise à disposition billed monthly and a service commun shared by the units used: every
    commune uses both services every month."""
    payers = tuple(Party(100 + i, f"2{i:08d}", f"Commune {i}") for i in range(communes))
    periods = months(2025)
    usages = CountedUsages(
        Usage(p.id, code, period.start, D("1.250") + i % 7)
        for i, p in enumerate(payers)
        for code in ("si", "ads")
        for period in periods
    )
    return ConventionInput(
        reference="CONV-SCALE",
        payee=METRO,
        payers=payers,
        services=(
            ServiceInput("si", "Systèmes d'information", D("42.10")),
            ServiceInput(
                "ads",
                "Instruction ADS",
                None,
                allocation_key=engine.KEY_UNITS,
                total_cost=D("100000.00"),
                forecast_cost=D("90000.00"),
                segments=(KeySegment(Period(date(2025, 1, 1), date(2025, 12, 31))),),
            ),
        ),
        periods=periods,
        usages=usages,
        forecasts={(p.id, code): D("12") for p in payers for code in ("si", "ads")},
        instalment_count=4,
    )


def operations(monkeypatch, communes: int) -> tuple[int, engine.YearResult]:
    """Usages read plus period tests made while computing the year of one convention."""
    contains = Period.contains
    tests = 0

    def counted_contains(self, day):
        nonlocal tests
        tests += 1
        return contains(self, day)

    monkeypatch.setattr(Period, "contains", counted_contains)
    convention = convention_of(communes)
    CountedUsages.reads = 0
    result = engine.compute_year(2025, [convention])
    monkeypatch.setattr(Period, "contains", contains)
    return CountedUsages.reads + tests, result


@pytest.mark.parametrize(("small", "large"), [(7, 112)])
def test_one_conventions_work_grows_linearly_with_its_communes(monkeypatch, small, large):
    small_ops, small_result = operations(monkeypatch, small)
    large_ops, large_result = operations(monkeypatch, large)
    # The year was computed at both sizes: a line per commune, month and unit-cost service, a
    # line per commune for the shared service, and a settlement per commune.
    assert len(small_result.lines) == small * 12 + small
    assert len(large_result.lines) == large * 12 + large
    assert len(large_result.settlements) == large
    # 16× the communes: 16× the operations (quadratic would be 256×), per commune the same.
    assert large_ops / small_ops <= (large / small) * 1.05, (small_ops, large_ops)
