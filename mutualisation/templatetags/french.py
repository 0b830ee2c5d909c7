"""French typography of legal documents: the preposition « de » elided or contracted before a
name (« d'Aubière », « du Cendre », « des Martres-d'Artière »), long dates with the ordinal of the
first day (« 1er janvier 2026 »), agreement of « habilité(e) », and amounts in words
(num2words, never a hand-written speller)."""

from datetime import date
from decimal import Decimal

from django import template
from django.utils.formats import date_format
from num2words import num2words

from mutualisation.french import of

register = template.Library()


@register.filter(name="of")
def of_filter(value) -> str:
    return of(value)


def long_date(day: date | None) -> str:
    """« 1er janvier 2026 », « 15 mars 2026 »."""
    if day is None:
        return ""
    text = date_format(day, "j F Y")
    return f"1er{text[1:]}" if day.day == 1 else text


@register.filter(name="long_date")
def long_date_filter(value) -> str:
    return long_date(value)


def authorised(gender: str) -> str:
    """« dûment habilité » / « dûment habilitée » by the representative's gender (both forms
    when it was not recorded)."""
    return {"M": "dûment habilité", "F": "dûment habilitée"}.get(gender, "dûment habilité(e)")


@register.filter(name="authorised")
def authorised_filter(value) -> str:
    return authorised(value)


def euros_in_words(amount: Decimal) -> str:
    """« sept cent dix-neuf mille trois cent soixante-dix-sept euros et trente-trois centimes »:
    an état is « arrêté » in words. num2words spells the numbers; French grammar decides the
    rest: « un euro », « un million d'euros », « quinze centimes », « zéro euro ». Only Decimal
    amounts (never float)."""
    if not isinstance(amount, Decimal):
        raise TypeError("Montant en toutes lettres : un Decimal est requis.")
    cents_total = int(abs(amount).quantize(Decimal("0.01")) * 100)
    whole, cents = divmod(cents_total, 100)
    parts = []
    if whole:
        words = num2words(whole, lang="fr")
        if words.endswith(("million", "millions", "milliard", "milliards")):
            parts.append(f"{words} d'euros")
        else:
            parts.append(f"{words} {'euro' if whole == 1 else 'euros'}")
    if cents:
        parts.append(f"{num2words(cents, lang='fr')} {'centime' if cents == 1 else 'centimes'}")
    text = " et ".join(parts) or "zéro euro"
    return f"moins {text}" if amount < 0 and cents_total else text


@register.filter(name="in_words")
def in_words_filter(value) -> str:
    if value is None or value == "":
        return ""
    return euros_in_words(Decimal(value) if isinstance(value, str) else value)


@register.filter(name="duration")
def duration_filter(value) -> str:
    """A timedelta in French words: « 15 minutes », « 1 heure », « 1 heure 30 minutes »."""
    if value is None:
        return ""
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} heure{'s' if hours > 1 else ''}")
    if minutes or not parts:
        parts.append(f"{minutes} minute{'s' if minutes > 1 else ''}")
    return " ".join(parts)
