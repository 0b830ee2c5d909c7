"""Money rules, written once (pure Python: no Django). See docs/costing.md, « Arrondis ».

- Amounts are ``Decimal``; a float is refused.
- Rounding is to the cent, half up (« au centime le plus proche, 0,005 arrondi au-dessus »).
- A shared amount is split by the largest-remainder method, so the rounded shares always add up
  exactly to the total.
"""

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from math import lcm

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class MoneyError(ValueError):
    """An amount or a split that cannot be computed (the message says why, in French)."""


def as_decimal(value) -> Decimal:
    """A Decimal from a Decimal, an int or a string; floats are refused (binary rounding)."""
    if type(value) is Decimal:  # nearly always: told first, a year reads a million of them
        return value
    if isinstance(value, float):
        raise MoneyError("Montant en virgule flottante refusé : utilisez Decimal ou une chaîne.")
    if isinstance(value, Decimal):
        return value
    return Decimal(value)


def round_cents(amount: Decimal) -> Decimal:
    """Round half up to the cent: 242,3125 → 242,31 ; 0,005 → 0,01."""
    return as_decimal(amount).quantize(CENT, ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal], tie_keys: Sequence[str]) -> list[Decimal]:
    """Split ``total`` (in cents) pro rata of ``weights``; the shares add up exactly to ``total``.

    Each share is first rounded down to the cent; the cents left over go one by one to the largest
    remainders, ties going to the smallest ``tie_keys`` (the SIREN of the beneficiary).
    Computed in exact integers (no Decimal precision limit decides a tie).
    Weights all zero (or none) is an error, never a lost cost.
    """
    total = round_cents(total)
    weights = [as_decimal(w) for w in weights]
    if len(weights) != len(tie_keys):
        raise MoneyError("Autant de clés de départage que de pondérations sont requises.")
    if any(w < 0 for w in weights):
        raise MoneyError("Une pondération de répartition ne peut être négative.")
    # Integers: each weight as an exact fraction, all over their common denominator (the
    # weights in the same proportions), the total in cents.
    ratios = [w.as_integer_ratio() for w in weights]
    denominator = lcm(*(d for _n, d in ratios))
    if denominator == 1:  # whole weights (populations, units without decimals): as they are
        integer_weights = [n for n, _d in ratios]
    else:
        integer_weights = [n * (denominator // d) for n, d in ratios]
    weight_sum = sum(integer_weights)
    if weight_sum == 0:
        raise MoneyError(
            "Répartition impossible : toutes les pondérations sont nulles ; le coût ne peut être "
            "réparti (vérifiez la clé de répartition)."
        )
    sign, cents = (-1, -int(total.scaleb(2))) if total < 0 else (1, int(total.scaleb(2)))
    parts = [divmod(cents * w, weight_sum) for w in integer_weights]  # (floor, remainder)
    floors = [floor for floor, _remainder in parts]
    left = cents - sum(floors)
    if left:
        order = sorted(range(len(weights)), key=lambda i: (-parts[i][1], tie_keys[i]))
        for i in order[:left]:
            floors[i] += 1
    # A share of a debit is negative; a share of nothing is 0.00, never -0.00.
    return [Decimal(sign * f).scaleb(-2) for f in floors]


def split_evenly(total: Decimal, count: int) -> list[Decimal]:
    """``count`` instalments of ``total``: all but the last rounded down to the cent, the last
    one absorbing the rounding so that they add up exactly to ``total`` (and it is never the
    smallest, nor negative)."""
    if count < 1:
        raise MoneyError("Le nombre d'acomptes doit être au moins 1.")
    total = round_cents(total)
    each = (total / count).quantize(CENT, rounding=ROUND_DOWN)
    return [each] * (count - 1) + [total - each * (count - 1)]
