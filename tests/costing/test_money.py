"""Rounding and splitting rules (pure: no database)."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costing.money import MoneyError, allocate, as_decimal, round_cents, split_evenly


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        ("242.3125", "242.31"),
        ("0.005", "0.01"),
        ("2.675", "2.68"),
        ("8965.4700", "8965.47"),
        ("-1.005", "-1.01"),
    ],
)
def test_round_half_up_to_the_cent(amount, rounded):
    assert round_cents(D(amount)) == D(rounded)


def test_floats_are_refused():
    with pytest.raises(MoneyError, match="virgule flottante"):
        as_decimal(2.675)


def test_hundred_euros_shared_equally_by_three_communes():
    assert allocate(D("100.00"), [D(1)] * 3, ["216300145", "216300194", "216300327"]) == [
        D("33.34"),
        D("33.33"),
        D("33.33"),
    ]


def test_the_extra_cent_goes_to_the_smaller_siren_on_a_tie():
    shares = allocate(D("100.00"), [D(1)] * 3, ["216300327", "216300145", "216300194"])
    assert shares == [D("33.33"), D("33.34"), D("33.33")]


def test_weights_all_zero_is_an_explicit_error():
    with pytest.raises(MoneyError, match="toutes les pondérations sont nulles"):
        allocate(D("10.00"), [D(0), D(0)], ["1", "2"])


def test_instalments_add_up_and_the_last_absorbs_rounding():
    assert split_evenly(D("100.00"), 3) == [D("33.33"), D("33.33"), D("33.34")]
    assert split_evenly(D("0.10"), 12) == [D("0.00")] * 11 + [D("0.10")]


cents = st.integers(min_value=0, max_value=10**11).map(lambda c: D(c) / 100)
weights = st.lists(
    st.decimals(min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=25,
).filter(lambda ws: sum(ws) > 0)


@given(total=cents, ws=weights)
def test_shares_always_add_up_to_the_total_to_the_cent(total, ws):
    shares = allocate(total, ws, [f"{i:09d}" for i in range(len(ws))])
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
    assert all(share == share.quantize(D("0.01")) for share in shares)


@given(total=cents, ws=weights, data=st.data())
def test_shares_do_not_depend_on_the_order_of_the_beneficiaries(total, ws, data):
    sirens = [f"{i:09d}" for i in range(len(ws))]
    order = data.draw(st.permutations(range(len(ws))))
    straight = dict(zip(sirens, allocate(total, ws, sirens), strict=True))
    shuffled_sirens = [sirens[i] for i in order]
    shuffled = dict(
        zip(shuffled_sirens, allocate(total, [ws[i] for i in order], shuffled_sirens), strict=True)
    )
    assert straight == shuffled


@given(total=cents, count=st.integers(min_value=1, max_value=12))
def test_instalments_are_never_negative_and_add_up(total, count):
    parts = split_evenly(total, count)
    assert sum(parts) == round_cents(total)
    assert all(part >= 0 for part in parts)
    assert parts[-1] == max(parts)


def test_ties_are_decided_exactly_not_by_decimal_precision():
    # 0,04 € for weights 4/1/1: exact shares 0,0266… / 0,0066… / 0,0066…; the two small
    # remainders are equal, so the second cent goes to the smaller SIREN.
    assert allocate(D("0.04"), [D(4), D(1), D(1)], ["3", "1", "2"]) == [
        D("0.02"),
        D("0.01"),
        D("0.01"),
    ]
    assert sum(allocate(D("38.26"), [D(4), D(1), D(1)], ["3", "1", "2"])) == D("38.26")


@given(total=cents, ws=weights)
def test_allocation_matches_an_exact_fraction_reference(total, ws):
    from fractions import Fraction

    sirens = [f"{i:09d}" for i in range(len(ws))]
    exact = [Fraction(int(total * 100)) * Fraction(w) / Fraction(sum(ws)) for w in ws]
    floors = [int(e) for e in exact]
    order = sorted(range(len(ws)), key=lambda i: (-(exact[i] - floors[i]), sirens[i]))
    for i in order[: int(total * 100) - sum(floors)]:
        floors[i] += 1
    assert allocate(total, ws, sirens) == [D(f) / 100 for f in floors]


@given(total=cents, ws=weights)
def test_a_debit_is_shared_as_the_mirror_of_the_credit_without_minus_zero(total, ws):
    sirens = [f"{i:09d}" for i in range(len(ws))]
    debit = allocate(-total, ws, sirens)
    assert debit == [-share for share in allocate(total, ws, sirens)]
    assert all(str(share) != "-0.00" for share in debit)
    assert all(share.as_tuple().exponent == -2 for share in debit)


def test_weights_with_different_decimal_places_are_shared_exactly():
    # 1 : 0.5 : 0.25 is 4 : 2 : 1 of 7,00 €.
    assert allocate(D("7.00"), [D("1"), D("0.5"), D("0.250")], ["1", "2", "3"]) == [
        D("4.00"),
        D("2.00"),
        D("1.00"),
    ]
