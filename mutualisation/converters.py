"""URL converters shared by the apps."""

from django.conf import settings
from django.urls import register_converter
from django.utils import timezone

# The budget years Mutualis handles; configurable, wide enough for archives and projections.
DEFAULT_YEARS = (2000, 2100)


class YearConverter:
    """A budget year in a URL: four digits within ``MUTUALIS_URL_YEARS``. Any other value (0,
    10000) matches no URL, so the answer is a 404 page, never a 500 from an impossible date."""

    regex = "[0-9]{1,5}"

    def to_python(self, value: str) -> int:
        first, last = getattr(settings, "MUTUALIS_URL_YEARS", DEFAULT_YEARS)
        year = int(value)
        if not first <= year <= last:
            raise ValueError(value)
        return year

    def to_url(self, value) -> str:
        return str(int(value))


# The years the pages' year navigation offers, around this one.
YEARS_BACK, YEARS_AHEAD = 3, 1


def year_choices() -> list[int]:
    """The budget years a page offers to move to: next year, this one and three before."""
    this_year = timezone.localdate().year
    return list(range(this_year + YEARS_AHEAD, this_year - YEARS_BACK - 1, -1))


# A budget year in the apps' addresses (<year:year>), registered once for all of them, here: a
# module imported once, where a reloaded urls module would register it again (deprecated).
register_converter(YearConverter, "year")
