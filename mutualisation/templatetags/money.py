"""Money and quantities at the edge: French formatting of Decimals, refusing floats."""

from decimal import Decimal

from django import template
from django.utils.formats import number_format

register = template.Library()


def require_decimal(value):
    if isinstance(value, float):
        raise TypeError("Montant en float refusé : les montants sont des Decimal.")
    return value


@register.filter
def euros(value):
    """242.31 → « 242,31 € » (no-break spaces), None → « — »."""
    if value is None or value == "":
        return "—"
    value = require_decimal(value)
    return f"{number_format(Decimal(value), decimal_pos=2, force_grouping=True)}\u00a0€"


@register.filter
def unsigned(value):
    """The amount without its sign, where the words beside it say which way it goes (« Solde à
    rembourser au débiteur : 465,75 € », not « -465,75 € »)."""
    if value is None or value == "":
        return value
    return abs(Decimal(require_decimal(value)))


@register.filter
def units(value):
    """Units of use: up to three decimals, trailing zeros dropped (1 843 ; 212,4 ; 0,8)."""
    if value is None or value == "":
        return "—"
    value = Decimal(require_decimal(value))
    normalized = value.normalize()
    places = max(0, -normalized.as_tuple().exponent)
    return number_format(value, decimal_pos=min(places, 3), force_grouping=True)
