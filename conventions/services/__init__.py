"""Writes and legal rules on conventions, one module per concern:

- ``terms``: which terms apply on a date, the days covered in a year, the direction;
- ``records``: creation, optimistic-locked edits, attached records;
- ``gates``: one function per legal rule, each returning what is missing in French;
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


class StaleVersion(Exception):
    """Someone else saved the convention since the form was loaded (optimistic locking)."""


def fmt(day: date) -> str:
    return date_format(day, "SHORT_DATE_FORMAT")


def names(organisations) -> str:
    return ", ".join(sorted(str(o) for o in organisations))
