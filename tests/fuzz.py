"""Fuzzing with Hypothesis: hostile values, a fixed example budget, and the properties every form
and screen keeps whatever is posted to it.

Properties (checked by ``submit`` and ``check_form``):

- never a 500: no exception escapes a view or a form, no status of 500 or more;
- a refusal (a page shown again with its errors, a 4xx, a redirect with an error message)
  leaves the database exactly as it was (every table's rows, histories included);
- nothing is ever stored with a NUL character (PostgreSQL refuses them: a classic 500), nor a
  date out of the plausible years (0001-01-01, 9999-12-31);
- every message shown is French, without Python internals;
- a hostile value posted is shown escaped, never as live HTML.

Budget: ``MUTUALIS_FUZZ_EXAMPLES`` examples per fuzz test (default below), derandomized so that
CI and a developer run the very same examples. Each example runs in a savepoint rolled back at
its end, so the examples of one test start from the same data.
"""

import hashlib
import os
import re
from contextlib import contextmanager
from datetime import date
from functools import cache
from importlib import import_module

from django.apps import apps
from django.conf import settings as django_settings
from django.contrib.messages import constants as message_levels
from django.core.exceptions import FieldDoesNotExist
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.db.models import DateField, DateTimeField
from django.forms import BaseForm
from django.forms.formsets import BaseFormSet
from django.http import QueryDict
from django.urls import URLPattern, URLResolver, get_resolver
from django_filters import FilterSet
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("MUTUALIS_FUZZ_EXAMPLES", "20"))

settings.register_profile(
    "fuzz",
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        # Each example restores the database itself (``example_rolled_back``).
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)


def budget(share: float = 1.0):
    """The fuzz settings, with ``share`` of the example budget (a slow screen gets fewer)."""
    return settings(settings.get_profile("fuzz"), max_examples=max(3, round(EXAMPLES * share)))


# --- which forms are fuzzed ------------------------------------------------------------------

FUZZED: dict[type, list[str]] = {}


def fuzzes(*form_classes):
    """Declare the forms (or formsets, filter sets) a fuzz test covers."""

    def mark(test):
        for form_class in form_classes:
            FUZZED.setdefault(form_class, []).append(test.__name__)
        return test

    return mark


PROJECT_APPS = ("mutualisation", "conventions", "costing")


def project_forms() -> set[type]:
    """Every form, formset and filter set of the project: those of each app's ``forms`` and
    ``filters`` modules, and the form classes given to the class-based views of the URLs (login,
    password change)."""
    from django.forms import formsets, models

    django_classes = {id(value) for value in [*vars(formsets).values(), *vars(models).values()]}
    found = set()
    for app in PROJECT_APPS:
        for name in ("forms", "filters"):
            try:
                module = import_module(f"{app}.{name}")
            except ModuleNotFoundError:
                continue
            for value in vars(module).values():
                if not isinstance(value, type) or not issubclass(
                    value, BaseForm | BaseFormSet | FilterSet
                ):
                    continue
                if issubclass(value, BaseFormSet) and not hasattr(value, "form"):
                    continue  # a base class of formsets, not a formset a screen uses
                if issubclass(value, BaseForm) and not value.base_fields and value.__subclasses__():
                    continue  # a base class of forms (mutualisation.forms.Form), no screen's form
                made_here = value.__module__ == module.__name__
                # inlineformset_factory builds its class in django.forms: one bound here is ours.
                factory_made = issubclass(value, BaseFormSet) and id(value) not in django_classes
                if made_here or factory_made:
                    found.add(value)
    found.update(url_forms(get_resolver().url_patterns))
    return found


def url_forms(patterns) -> set[type]:
    found = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":
                continue  # Django's administration, for administrators only
            found |= url_forms(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            view_class = getattr(pattern.callback, "view_class", None)
            if view_class is None:
                continue
            initkwargs = getattr(pattern.callback, "view_initkwargs", {})
            form_class = (
                initkwargs.get("authentication_form")
                or initkwargs.get("form_class")
                or getattr(view_class, "form_class", None)
            )
            if form_class is not None:
                found.add(form_class)
    return found


# --- hostile values ----------------------------------------------------------------------------

SCRIPT = "<script>alert('mutualis')</script>"
IMG = '"><img src=x onerror=alert(1)>'
INJECTIONS = [
    SCRIPT,
    IMG,
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("https://exemple.invalid","clic")',
    "+SUM(1;1)",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(A1:A2)",
    "' OR 1=1 --",
    "'; DROP TABLE conventions_convention; --",
    "{{ request.user }}{% debug %}",
    "%s%s%s%n",
    "%(value)s",
    "../../../etc/passwd",
    "null",
    "None",
    "undefined",
    "[]",
    "{}",
]
CONTROL = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85"
INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2069\ufeff\xad"
FULL_WIDTH_DIGITS = "０１２３４５６７８９"
OTHER_DIGITS = "٠١٢٣٤٥٦٧٨٩۴۵६७𝟎𝟏𝟗²½"
EMOJI = ["😀", "👩‍👩‍👧‍👦", "🦆", "🇫🇷", "❤️"]
HOSTILE_TEXTS = [
    "",
    " ",
    "\x00",
    "Recours\x00double",
    "\x00" * 3,
    "\t\r\n",
    "\u202eedutitcnoc",
    "\u200b",
    "\ufeffconvention",
    "١٢٣",
    "１２３",
    "Élodie 😀 ÆŒ ß ǅ",
    "ﷺ",
    "\\",
    "A" * 2001,
    "é" * 301,
    "🦆" * 700,
    "x" * 70_000,
    *INJECTIONS,
]
hostile_characters = st.sampled_from(
    [*CONTROL, *INVISIBLE, *FULL_WIDTH_DIGITS, *OTHER_DIGITS, *EMOJI, *"<>&\"'%{};=+-@\t\r\n é€"]
)
any_characters = st.characters(codec="utf-8")
hostile_text = st.one_of(
    st.sampled_from(HOSTILE_TEXTS),
    st.lists(hostile_characters | any_characters, max_size=40).map("".join),
    st.lists(st.sampled_from(INJECTIONS + EMOJI), min_size=1, max_size=4).map("".join),
)

HOSTILE_NUMBERS = [
    "1e308",
    "-1e308",
    "1e-400",
    "-0",
    "-0.0",
    "0",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "99999999999999999999",
    "-99999999999999999999",
    "9" * 400,
    "2147483648",
    "9223372036854775808",
    "-2147483649",
    "32768",
    "65536",
    "0x1A",
    "1_000",
    "1,5",
    "1 234,56",
    "1\u202f234,56",
    "1\xa0234,56",
    "1.234.567,89",
    "12.3456789",
    "0,0001",
    "+7",
    "--1",
    "1e3",
    "1E+2",
    ".5",
    "5.",
    "-1",
    "١٢٣",
    "１２３",
    "𝟏",
    "²",
    "½",
]
hostile_number = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.integers().map(str),
    st.decimals().map(str),
    st.floats().map(repr),
    hostile_text,
)

HOSTILE_DATES = [
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "2026-02-29",
    "2024-02-29",
    "2026-13-01",
    "2026-00-10",
    "0000-00-00",
    "31/12/9999",
    "30/02/2026",
    "01/01/0001",
    "1989-12-31",
    "2101-01-01",
    "2026-1-1",
    "20260101",
    "2026-01-01T00:00:00",
    "2026-01-01 25:00",
    "２０２６-０１-０１",
    "٢٠٢٦-٠١-٠١",
    "-2026-01-01",
    "99999-01-01",
    "2026-W01",
    "aujourd'hui",
]
hostile_date = st.one_of(
    st.sampled_from(HOSTILE_DATES),
    st.dates().map(date.isoformat),
    st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
    hostile_text,
)
hostile_boolean = st.sampled_from(["on", "", "off", "false", "False", "0", "1", "true", "☃"])
HOSTILE_IDS = [
    "0",
    "-1",
    "999999999",
    "99999999999999999999",
    "1.5",
    "1e3",
    "abc",
    "１",
    "1 OR 1=1",
]


def hostile_choice(*foreign):
    """A value not offered: ``foreign`` ones (another commune's id, a forbidden role…), or junk."""
    return st.one_of(st.sampled_from([*map(str, foreign), *HOSTILE_IDS]), hostile_text)


def text_up_to(max_length: int | None = 200):
    """Plausible text a person may type, accents, emoji and injections included (no NUL), up to
    exactly ``max_length`` characters."""
    return st.one_of(
        st.text(
            alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
            min_size=1,
            max_size=min(max_length or 60, 60),
        ),
        st.sampled_from([s for s in INJECTIONS if len(s) <= (max_length or 10_000)]),
        st.just("é" * (max_length or 5_000)),
    ).filter(lambda s: s.strip())


def decimal_text(max_value=10**9, places=2, min_value=0):
    """A decimal as typed: plain (1234.5) or French (1 234,5), exactly ``places`` at most."""
    return st.decimals(
        min_value=min_value, max_value=max_value, places=places, allow_nan=False
    ).flatmap(
        lambda d: st.sampled_from(
            [str(d), str(d).replace(".", ","), f"{d:,}".replace(",", "\u202f").replace(".", ",")]
        )
    )


def year_text(first=1990, last=2100):
    return st.integers(first, last).map(str)


def date_text(first=date(1990, 1, 1), last=date(2100, 12, 31)):
    return st.dates(first, last).flatmap(
        lambda d: st.sampled_from([d.isoformat(), d.strftime("%d/%m/%Y")])
    )


def management(prefix: str, total: int, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def hostile_management(prefix: str) -> dict:
    """Hostile values for a formset's management form."""
    count = st.sampled_from(["-1", "", "abc", "1.5", "99999999999999999999", "1e3", "٣", "7"])
    return {f"{prefix}-TOTAL_FORMS": count, f"{prefix}-INITIAL_FORMS": count}


def formset_fields(prefix: str, rows: list) -> tuple[dict, dict]:
    """The valid and hostile strategies of an inline formset: ``rows`` are (existing pk or None,
    {field: (valid strategy, hostile strategy)}), existing rows first."""
    initial = sum(pk is not None for pk, _fields in rows)
    valid = {name: st.just(value) for name, value in management(prefix, len(rows), initial).items()}
    hostile = hostile_management(prefix)
    for index, (pk, fields) in enumerate(rows):
        start = f"{prefix}-{index}-"
        if pk is not None:
            valid[start + "id"] = st.just(str(pk))
            hostile[start + "id"] = hostile_choice()
        for name, (valid_value, hostile_value) in fields.items():
            valid[start + name] = valid_value
            hostile[start + name] = hostile_value
    return valid, hostile


def assert_stored(instance, cleaned: dict):
    """What a valid form cleaned is what the database holds (Decimal exact, text as cleaned)."""
    instance.refresh_from_db()
    for name, value in cleaned.items():
        try:
            field = instance._meta.get_field(name)
        except FieldDoesNotExist:
            continue  # a form field of its own (a hidden version, a new service…)
        if not field.concrete or field.many_to_many or not field.editable:
            continue
        stored = getattr(instance, name)
        if value is None and stored in (None, ""):
            continue
        assert stored == value, (name, stored, value)


def upload(name, content):
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


# --- usage files (CSV, XLSX) for the import --------------------------------------------------------

IMPORT_COLUMNS = ["convention", "beneficiaire", "service", "mois", "quantite"]
IMPORT_OPTIONAL = ["ponderation", "reference", "motif"]
HOSTILE_MONTHS = ["2026-13", "2026-00", "0001-01", "9999-12", "13/2026", "2026/03", "mars 2026",
                  "２０２６-０３", "2026-3-1", "2026-03-31", "202603", *HOSTILE_DATES]  # fmt: skip
FILE_NAMES = {
    "csv": ["recours.csv", "RECOURS.CSV", "état 😀 mars.csv"],
    "xlsx": ["recours.xlsx", "Recours.XLSX"],
}
HOSTILE_FILE_NAMES = ["recours.txt", "recours", "recours.csv.exe", "recours.xls",
                      "../../recours.csv", "recours\x00.csv", "r" * 250 + ".csv", ".csv"]  # fmt: skip


def valid_cell(column: str, catalogue: dict):
    """A value the import accepts: ``catalogue`` maps a column to (accepted values, values that
    name something real but not offered, e.g. a commune outside the convention)."""
    if column in catalogue:
        return st.sampled_from(catalogue[column][0])
    if column == "mois":
        return st.sampled_from(["2026-03", "2026-7", "03/2026", "2026-12", "2026-01"])
    if column == "quantite":
        return decimal_text(10**6, 3)
    if column in ("reference", "motif"):
        return st.one_of(st.just(""), text_up_to(80))
    return st.just("")


def hostile_cell(column: str, catalogue: dict):
    if column in catalogue and catalogue[column][1]:
        foreign = st.sampled_from(catalogue[column][1])
    else:
        foreign = st.nothing()
    if column == "mois":
        return st.one_of(st.sampled_from(HOSTILE_MONTHS), hostile_text)
    if column == "quantite":
        return st.one_of(st.sampled_from(["-1", "-0,5", "-1000"]), hostile_number)
    return st.one_of(foreign, hostile_text)


@st.composite
def usage_rows(draw, catalogue: dict, mode: str):
    """A header and rows: valid cells (from ``catalogue``), with ``mode`` "cells" some hostile
    ones, with "shape" columns missing, added, repeated, renamed, and rows cut or lengthened."""
    columns = [*IMPORT_COLUMNS, *draw(st.sets(st.sampled_from(IMPORT_OPTIONAL)))]
    header = list(draw(st.permutations(columns)))
    if mode == "shape":
        for _ in range(draw(st.integers(1, 3))):
            change = draw(st.sampled_from(["drop", "extra", "repeat", "rename", "empty"]))
            if change == "drop" and header:
                header.pop(draw(st.integers(0, len(header) - 1)))
            elif change == "extra":
                header.append(draw(st.sampled_from(["commentaire", "", "quantité", "=1+1"])))
            elif change == "repeat" and header:
                header.append(draw(st.sampled_from(header)))
            elif change == "rename" and header:
                index = draw(st.integers(0, len(header) - 1))
                header[index] = draw(
                    st.sampled_from([header[index].upper(), f" {header[index]} ", "Quantité"])
                )
            elif change == "empty":
                header = []
    rows = []
    for _ in range(draw(st.integers(0 if mode != "valid" else 1, 5))):
        row = []
        for column in header:
            name = column.strip().lower()
            # One hostile cell in a row now and then, the others valid: what reaches the rules.
            bad = mode != "valid" and draw(st.integers(0, 2 * len(header))) == 0
            row.append(draw(hostile_cell(name, catalogue) if bad else valid_cell(name, catalogue)))
        if mode == "shape" and draw(st.booleans()):
            row = row[: draw(st.integers(0, len(row)))] + draw(st.lists(hostile_text, max_size=2))
        rows.append(row)
    if mode != "valid" and rows and draw(st.integers(0, 3)) == 0:
        rows.append(list(draw(st.sampled_from(rows))))  # a row pasted twice
    return header, rows


def csv_bytes(draw, header, rows, *, hostile: bool) -> bytes:
    delimiter = draw(st.sampled_from([";", ";", ",", "\t", "|"] if hostile else [";", ","]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    quote = draw(st.sampled_from(["none", "minimal", "all"] if hostile else ["minimal", "all"]))

    def cell(value):
        value = str(value)
        if quote == "all" or (quote == "minimal" and any(c in value for c in f'{delimiter}"\n\r')):
            return '"' + value.replace('"', '""') + '"'
        return value

    text = newline.join(delimiter.join(map(cell, line)) for line in [header, *rows])
    encodings = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "mixed"] if hostile else ["utf-8"]
    encoding = draw(st.sampled_from(["utf-8", *encodings]))
    if encoding == "mixed":
        first, _, rest = text.partition(newline)
        return first.encode("utf-8") + newline.encode() + rest.encode("latin-1", "replace")
    return text.encode(encoding, "replace")


def xlsx_bytes(draw, header, rows, *, hostile: bool) -> bytes:
    import io

    import openpyxl
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    def cell(value):
        value = ILLEGAL_CHARACTERS_RE.sub("", str(value))
        as_type = draw(st.sampled_from(["text", "text", "number", "date", "empty"]))
        if as_type == "number" and re.fullmatch(r"-?[0-9]+([.,][0-9]+)?", value):
            number = value.replace(",", ".")
            return float(number) if "." in number else int(number)
        if as_type == "date" and re.fullmatch(r"[0-9]{4}-[0-9]{1,2}", value):
            year, month = map(int, value.split("-"))
            return date(year, month, draw(st.integers(1, 28))) if 1 <= month <= 12 else value
        return None if as_type == "empty" and not value else value

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if hostile and draw(st.booleans()):
        sheet.append([])  # a blank first line
    for line in [header, *rows]:
        sheet.append([cell(value) for value in line])
    if draw(st.integers(0, 4)) == 0:
        workbook.create_sheet("Autre").append(["rien", "ici"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


@st.composite
def usage_file(draw, catalogue: dict):
    """(content, file name) of a usage file, CSV or XLSX: well formed and valid, or with hostile
    cells, or with a hostile shape, encoding or name; or bytes that are no file at all."""
    mode = draw(st.sampled_from(["valid", "valid", "cells", "cells", "shape", "bytes"]))
    header, rows = draw(usage_rows(catalogue, "shape" if mode == "bytes" else mode))
    hostile = mode != "valid"
    kind = draw(st.sampled_from(["csv", "csv", "xlsx"]))
    if mode == "bytes":
        prefix = draw(
            st.sampled_from([b"", b"\xef\xbb\xbf", b"PK\x03\x04", b"%PDF-1.7\n", b"\xff\xfe"])
        )
        content = prefix + draw(st.binary(max_size=200))
    elif kind == "csv":
        content = csv_bytes(draw, header, rows, hostile=hostile)
    else:
        content = xlsx_bytes(draw, header, rows, hostile=hostile)
    if hostile and draw(st.integers(0, 6)) == 0:
        content = content[: len(content) * draw(st.integers(0, 99)) // 100]  # truncated
    names = FILE_NAMES[kind]
    if hostile and draw(st.integers(0, 5)) == 0:
        names = HOSTILE_FILE_NAMES + FILE_NAMES["csv"] + FILE_NAMES["xlsx"]
    return content, draw(st.sampled_from(names))


# --- a form's data, mostly valid, with hostile fields, missing and extra keys ---------------------


@st.composite
def form_data(draw, valid: dict, hostile: dict | None = None):
    """``valid`` (name → strategy) gives a plausible form; then some fields get a hostile value
    (``hostile``, name → strategy; hostile text by default), a few keys go missing, an unknown key
    or a repeated one is added. Values are strings, or lists of strings (a repeated key)."""
    data = draw(st.fixed_dictionaries(valid))
    hostile = hostile if hostile is not None else dict.fromkeys(valid, hostile_text)
    shape = draw(st.sampled_from(["valid", "hostile", "hostile", "hostile", "shape"]))
    if shape == "valid" or not hostile:
        return data
    names = sorted(hostile)
    for name in draw(st.sets(st.sampled_from(names), min_size=1, max_size=min(3, len(names)))):
        data[name] = draw(hostile[name])
    if shape == "shape":
        if data:
            for name in draw(st.sets(st.sampled_from(sorted(data)), max_size=2)):
                del data[name]
        if data and draw(st.booleans()):
            name = draw(st.sampled_from(sorted(data)))
            data[name] = [data[name], draw(hostile_text)]
        if draw(st.booleans()):
            data[draw(st.sampled_from(["id", "pk", "version", "status", "__proto__", "x\x00"]))] = (
                draw(hostile_text)
            )
    return data


def query_dict(data: dict) -> QueryDict:
    """The data as a view receives it (``request.POST``)."""
    result = QueryDict(mutable=True)
    for key, value in data.items():
        result.setlist(key, value if isinstance(value, list) else [value])
    return result


# --- properties --------------------------------------------------------------------------------

# What the application may write on any request, refusal or not: sessions, login throttling.
UNCHECKED_TABLES = {
    "django_session",
    "axes_accessattempt",
    "axes_accessattemptexpiration",
    "axes_accessfailurelog",
    "axes_accesslog",
    "django_migrations",
    # The year's computation the reimbursements page and the dashboard store when its data
    # changed (a cache of the engine, issue 11): reading these pages may write it.
    "costing_reimbursementresult",
}


@cache
def checked_tables() -> dict[str, set[str]]:
    """Table → its date columns (a stored date must be plausible, as the models require)."""
    tables = {}
    for model in apps.get_models():
        table = model._meta.db_table
        if table not in UNCHECKED_TABLES:
            tables[table] = {
                field.column
                for field in model._meta.concrete_fields
                if isinstance(field, DateField) and not isinstance(field, DateTimeField)
            }
    return dict(sorted(tables.items()))


def plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


def plausible_year(value) -> bool:
    first, last = getattr(django_settings, "MUTUALIS_DATE_YEARS", (1990, 2100))
    year = value.year if isinstance(value, date) else int(str(value)[:4])
    return first <= year <= last


def fingerprint() -> dict[str, tuple[int, str]]:
    """Every table's row count and a hash of its rows. Fails if a text holds a NUL character or
    a date is implausible (0001-01-01, 9999-12-31: what validate_plausible_date refuses)."""
    result = {}
    with connection.cursor() as cursor:
        for table, date_columns in checked_tables().items():
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608
            columns = [column[0] for column in cursor.description]
            rows = [tuple(plain(v) for v in row) for row in cursor.fetchall()]
            for row in rows:
                for column, value in zip(columns, row, strict=True):
                    assert not (isinstance(value, str) and "\x00" in value), (
                        f"NUL stored in {table}.{column}: {value!r}"
                    )
                    if column in date_columns and value is not None:
                        assert plausible_year(value), (
                            f"implausible date in {table}.{column}: {value}"
                        )
            digest = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode()).hexdigest()
            result[table] = (len(rows), digest)
    return result


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(table for table in before if before[table] != after[table])


@contextmanager
def example_rolled_back():
    """One example: whatever it writes is rolled back, so the next starts from the same data."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# English words and Python internals that never belong in a message shown to a person.
NOT_FRENCH = re.compile(
    r"Traceback|Exception|object at 0x|Decimal\(|datetime\.|\bNone\b|"
    r"\b(the|is|are|not|of|and|to|invalid|error|value|field|must|cannot|expected|object|line|"
    r"column|has|attribute|string|literal|characters|contain|required|enter|number|this|that|"
    r"with|for|unexpected|unknown|missing|out of range)\b",
    re.IGNORECASE,
)


def without_echoes(message: str, echoed) -> str:
    """The message without what the person typed (quoted back to them)."""
    for value in sorted((v for v in echoed if isinstance(v, str) and v), key=len, reverse=True):
        message = message.replace(value, "").replace(value.strip(), "")
    return re.sub(r"«[^»]*»", "«»", message)


def assert_french(message: str, echoed=()):
    message = str(message)
    stripped = without_echoes(message, echoed)
    found = NOT_FRENCH.search(stripped)
    assert found is None, f"Message not French or with internals ({found.group()!r}): {message!r}"


def submitted_values(data: dict) -> list[str]:
    values = []
    for value in data.values():
        values.extend(value if isinstance(value, list) else [value])
    return [v for v in values if isinstance(v, str)]


def form_errors(form) -> list[str]:
    """Every message of a form or formset (and of the forms of a formset)."""
    messages = []
    if isinstance(form, BaseFormSet):
        messages += list(form.non_form_errors())
        for sub in form.forms:
            messages += form_errors(sub)
        return messages
    if isinstance(form, BaseForm) and form.is_bound:
        for errors in form.errors.values():
            messages += list(errors)
    return messages


def check_form(form, data: dict) -> bool:
    """Validate ``form`` bound to ``data``: no exception, French messages, no NUL accepted."""
    valid = form.is_valid()
    for message in form_errors(form):
        assert_french(message, submitted_values(data))
    if valid:
        cleaned = (
            [f.cleaned_data for f in form.forms if hasattr(f, "cleaned_data")]
            if isinstance(form, BaseFormSet)
            else [form.cleaned_data]
        )
        for values in cleaned:
            for name, value in values.items():
                assert not (isinstance(value, str) and "\x00" in value), f"NUL accepted in {name}"
    return valid


def queued_messages(response):
    """The messages the request itself added (not those left by an earlier one)."""
    storage = getattr(response.wsgi_request, "_messages", None)
    return list(getattr(storage, "_queued_messages", []))


def context_forms(response):
    found = []
    for context in response.context or []:
        for value in context.flatten().values():
            if isinstance(value, BaseForm | BaseFormSet) and value.is_bound:
                found.append(value)
            elif isinstance(value, dict):
                found += [
                    v
                    for v in value.values()
                    if isinstance(v, BaseForm | BaseFormSet) and v.is_bound
                ]
    return found


def submit(client, url, data=None, *, method="post", files=None, explained=None, **extra):
    """Send ``data`` through the real view as a person would; returns (response, refused).

    Checks: no exception, status below 500, French messages, hostile values escaped, nothing
    written on a refusal, no NUL stored."""
    data = dict(data or {})
    client.cookies.pop("messages", None)
    before = fingerprint()
    payload = {**data, **(files or {})}
    response = getattr(client, method)(url, payload, **extra)
    assert response.status_code < 500, response.status_code
    after = fingerprint()
    echoed = submitted_values(data)
    errors = [m for m in queued_messages(response) if m.level >= message_levels.WARNING]
    for message in queued_messages(response):
        assert_french(message.message, echoed)
    forms_shown = context_forms(response)
    for form in forms_shown:
        for message in form_errors(form):
            assert_french(message, echoed)
    body = (
        response.content.decode(errors="replace")
        if response.get("Content-Type", "").startswith("text/html")
        else ""
    )
    for marker in (SCRIPT, IMG):
        assert marker not in body, "a hostile value is shown unescaped"
    # Reading never writes; a post is refused unless it redirects without an error message.
    refused = True if method == "get" else response.status_code != 302 or bool(errors)
    if refused:
        assert changed_tables(before, after) == [], "refused, yet the database changed"
    if method == "post" and response.status_code == 200 and payload:
        # Shown again: the person must see why.
        shown = [m for form in forms_shown for m in form_errors(form)] + errors
        assert shown or (explained and explained(response)), "refused without a message"
    return response, refused
