"""The import's month column: AAAA-MM or MM/AAAA in ASCII digits, within plausible years;
everything else is refused with a French message (before: 0001-01 was saved and full-width
digits accepted)."""

import datetime

import pytest

from costing.resources import MonthWidget


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("2026-03", datetime.date(2026, 3, 1)), ("03/2026", datetime.date(2026, 3, 1))],
)
def test_a_month_is_read_as_its_first_day(raw, expected):
    assert MonthWidget().clean(raw) == expected


@pytest.mark.parametrize("raw", ["0001-01", "9999-12", "1899-01"])
def test_an_implausible_month_is_refused_in_french(raw):
    with pytest.raises(ValueError, match="Date invraisemblable"):
        MonthWidget().clean(raw)


@pytest.mark.parametrize(
    "raw", ["２０２６-０３", "٢٠٢٦-٠٣", "2026-13", "mars", "marz 2026", "mars 26 2026"]
)
def test_full_width_digits_and_nonsense_are_refused(raw):
    with pytest.raises(ValueError, match="Mois invalide"):
        MonthWidget().clean(raw)


def test_a_spreadsheet_date_of_year_one_is_refused():
    with pytest.raises(ValueError, match="Date invraisemblable"):
        MonthWidget().clean(datetime.date(1, 1, 1))


@pytest.mark.parametrize("raw", ["1e308", "1E3", "２", "١٢", "1234567890", "NaN", "Infinity"])
def test_a_quantity_is_ascii_digits_within_bounds_or_refused_in_french(raw):
    """Before: 1e308 answered « Erreur inattendue » with Python internals; full-width digits
    were accepted."""
    from costing.resources import QuantityWidget

    with pytest.raises(ValueError, match="Quantité invalide"):
        QuantityWidget().clean(raw)


@pytest.mark.parametrize(
    ("raw", "expected"), [("1 234,5", "1234.5"), ("-2", "-2"), ("0,125", "0.125")]
)
def test_a_french_or_plain_quantity_is_read_exactly(raw, expected):
    from decimal import Decimal

    from costing.resources import QuantityWidget

    assert QuantityWidget().clean(raw) == Decimal(expected)
