"""Review R, engine only: a keyed-by-units segment without usage drops the whole convention."""

from datetime import date
from decimal import Decimal as D

from costing import engine

EPCI = engine.Party(1, "200000001", "EPCI", is_epci=True)
A = engine.Party(2, "210000001", "Commune A")
B = engine.Party(3, "210000002", "Commune B")
H1 = engine.Period(date(2026, 1, 1), date(2026, 6, 30))
H2 = engine.Period(date(2026, 7, 1), date(2026, 12, 31))


def test_a_units_segment_without_usage_does_not_drop_the_other_services():
    keyed = engine.ServiceInput(
        "ads",
        "ADS",
        None,
        allocation_key=engine.KEY_UNITS,
        total_cost=D("36500.00"),
        segments=(
            engine.KeySegment(H1, managing_mode=engine.MANAGING_NONE),
            engine.KeySegment(H2, managing_mode=engine.MANAGING_NONE),  # avenant on 1 July
        ),
    )
    unit = engine.ServiceInput("si", "SI", D("100.00"))
    convention = engine.ConventionInput(
        reference="C1",
        payee=EPCI,
        payers=(A, B),
        services=(keyed, unit),
        periods=(H1, H2),
        usages=(
            engine.Usage(A.id, "ads", date(2026, 3, 1), D("10")),
            engine.Usage(B.id, "si", date(2026, 9, 1), D("5")),
        ),
    )
    result = engine.compute_year(2026, [convention])
    # Today: NOT_COMPUTED for C1, and B's 500,00 € of SI (unit cost × units) vanish too.
    assert [
        (line.payer.name, line.service, line.amount)
        for line in result.lines
        if line.service == "si"
    ] == [("Commune B", "si", D("500.00"))], [f.message for f in result.findings]
    # No settlement (so no état annuel) is made on the convention's incomplete year.
    assert result.settlements == ()
    assert [f.code for f in result.findings] == ["NOT_COMPUTED"]
