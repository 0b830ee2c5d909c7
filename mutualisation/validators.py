"""Validators for the identifiers of French public bodies (SIREN, code INSEE)."""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

INSEE_CODE_RE = re.compile(r"^(?:[0-9]{2}|2[AB])[0-9]{3}$")


def luhn_is_valid(digits: str) -> bool:
    """Luhn checksum: every second digit from the right is doubled (9 → 18 → 1 + 8)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def validate_siren(value: str) -> None:
    """A SIREN is 9 digits whose Luhn checksum is valid (INSEE, répertoire SIRENE)."""
    if not (len(value) == 9 and value.isascii() and value.isdigit()):
        raise ValidationError(
            _("Le SIREN « %(value)s » doit comporter exactement 9 chiffres."),
            code="siren_format",
            params={"value": value},
        )
    if not luhn_is_valid(value):
        raise ValidationError(
            _(
                "Le SIREN « %(value)s » est invalide : sa clé de contrôle (algorithme de Luhn) "
                "ne correspond pas. Vérifiez-le sur l'avis de situation SIRENE."
            ),
            code="siren_checksum",
            params={"value": value},
        )


def validate_insee_code(value: str) -> None:
    """A commune's code officiel géographique: 5 characters, 2A/2B allowed for Corsica."""
    if not INSEE_CODE_RE.match(value):
        raise ValidationError(
            _(
                "Le code INSEE « %(value)s » est invalide : 5 caractères attendus, chiffres ou "
                "2A/2B pour la Corse (ex. 63113)."
            ),
            code="insee_format",
            params={"value": value},
        )


def validate_plausible_date(value) -> None:
    """A date an act, a notification or a use can bear: within ``MUTUALIS_DATE_YEARS``
    (1990–2100 by default). 0001-01-01 or 9999-12-31 are typing slips, refused in French."""
    from django.conf import settings

    first, last = getattr(settings, "MUTUALIS_DATE_YEARS", (1990, 2100))
    if value is not None and not first <= value.year <= last:
        raise ValidationError(
            _("Date invraisemblable (%(date)s) : indiquez une date entre %(first)s et %(last)s."),
            code="implausible_date",
            params={
                "date": f"{value.day:02d}/{value.month:02d}/{value.year:04d}",
                "first": first,
                "last": last,
            },
        )


PREFIX_PATTERN = re.compile(r"[A-Z][A-Z0-9]{1,9}")


def validate_prefix(value: str) -> None:
    """A numbering prefix: 2 to 10 capital letters or digits, starting with a letter."""
    if value and not PREFIX_PATTERN.fullmatch(value):
        raise ValidationError(
            _("Un préfixe compte 2 à 10 lettres capitales ou chiffres et commence par une lettre."),
            code="invalid_prefix",
        )
