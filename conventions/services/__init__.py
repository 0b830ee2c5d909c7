"""Writes and legal rules on conventions, one module per concern:

- ``terms``: which terms apply on a date, the days covered in a year, the direction;
- ``records``: creation, optimistic-locked edits, attached records;
- ``gates``: one function per legal rule, each returning what is missing in French (``Gap``:
  a sentence that also says, for the screens, which rule and which parties or records);
- ``transitions``: the lifecycle, refused with the list of what is missing;
- ``amendments``: avenants, their deliberations and signature;
- ``overview``: what the detail page and the convention document show.

docs/architecture.md and docs/conventions.md say which article each gate enforces.
"""

from datetime import date

from django.utils.formats import date_format


class TransitionRefused(Exception):
    """A legal transition refused, with the list of what is missing (French sentences)."""

    def __init__(self, target, missing):
        self.target = target
        self.missing = list(missing)
        super().__init__("; ".join(self.missing))


class Gap(str):
    """What a gate finds missing: its French sentence (what every caller reads, compares and
    shows), and for the screens that link to where it is fixed, ``code`` (which rule, one of
    the constants of ``gates``), the ``organisations`` it names and the ``records`` it is
    about (a deliberation to transmit…)."""

    code: str
    organisations: tuple
    records: tuple

    def __new__(cls, message, *, code="", organisations=(), records=()):
        gap = super().__new__(cls, message)
        gap.code = code
        gap.organisations = tuple(organisations)
        gap.records = tuple(records)
        return gap


class StaleVersion(Exception):
    """Someone else saved the convention since the form was loaded (optimistic locking)."""


def fmt(day: date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def names(organisations) -> str:
    return ", ".join(sorted(str(o) for o in organisations))
