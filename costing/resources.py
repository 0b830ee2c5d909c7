"""Import of the état des recours from CSV or XLSX (django-import-export).

Columns (French, as finance officers name them): ``convention`` (reference), ``beneficiaire``
(code INSEE or SIREN), ``service`` (code), ``mois`` (AAAA-MM), ``quantite`` (1 234,5 or 1234.5),
``ponderation`` (optional weight code, e.g. PC), ``reference`` (optional, e.g. dossier number),
``motif`` (optional; required for a negative quantity, which is an adjustment).
Every error is reported in French with its row and column; the import is all or nothing. In
« remplacer » mode the imported records of every (convention, beneficiary, service, month) of
the file are replaced. No row may touch a year whose statement is issued and not under correction.
"""

import codecs
import datetime
import hashlib
import io
import logging
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import openpyxl
import tablib
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from import_export import fields, resources, widgets
from simple_history.utils import bulk_create_with_history

from conventions.models import Convention, ConventionKind, ConventionService, Party, PartyRole
from conventions.services.in_force import present_in_month
from costing.exports import safe_text
from costing.models import (
    Instalment,
    Statement,
    StatementLine,
    StatementStatus,
    UsageImport,
    UsageRecord,
    UsageSource,
)
from costing.services import (
    issued_year_message,
    month_bounds,
    negative_month_message,
    weighted_units,
)
from costing.statements import lock_year
from mutualisation.french import of
from mutualisation.models import Organisation, Service, UnitWeight
from mutualisation.validators import validate_plausible_date

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ["convention", "beneficiaire", "service", "mois", "quantite"]
OPTIONAL_COLUMNS = ["ponderation", "reference", "motif"]


def text(value) -> str:
    return "" if value is None else str(value).strip()


# The month names a French spreadsheet writes (« juin-26 », « janv.-27 », « août 2026 »), without
# accents or the abbreviation's dot: Excel reads the template's AAAA-MM as a date and saves it back
# in its display format.
FRENCH_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("janvier", "janv", "jan"),
            ("fevrier", "fevr", "fev"),
            ("mars", "mar"),
            ("avril", "avr"),
            ("mai",),
            ("juin",),
            ("juillet", "juil"),
            ("aout",),
            ("septembre", "sept", "sep"),
            ("octobre", "oct"),
            ("novembre", "nov"),
            ("decembre", "dec"),
        ),
        start=1,
    )
    for name in names
}


def without_accents(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))


def insee_as_typed(key: str) -> str:
    """An INSEE code of départements 01 to 09 loses its leading zero once a spreadsheet reads it
    as a number (01053 → 1053): four digits are that code."""
    return "0" + key if re.fullmatch(r"[0-9]{4}", key) else key


class MonthWidget(widgets.Widget):
    """A month as AAAA-MM, MM/AAAA, a spreadsheet date (a cell's date, or its first day written
    01/MM/AAAA or AAAA-MM-01) or as French Excel writes a month (« juin-26 », « janv. 2027 »);
    stored as its first day."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, datetime.datetime | datetime.date):
            return self.plausible(datetime.date(value.year, value.month, 1))
        raw = text(value)
        year_month = self.year_month(raw)
        if year_month and 1 <= year_month[1] <= 12:
            return self.plausible(datetime.date(*year_month, 1))
        raise ValueError(
            _("Mois invalide « %(value)s » : attendu AAAA-MM (ex. 2025-03).") % {"value": raw}
        )

    @staticmethod
    def year_month(raw: str) -> tuple[int, int] | None:
        # ASCII digits only: full-width or other Unicode digits are a typing accident.
        if match := re.fullmatch(r"([0-9]{4})-([0-9]{1,2})(-0?1)?", raw):
            return int(match[1]), int(match[2])
        if match := re.fullmatch(r"(0?1/)?([0-9]{1,2})/([0-9]{4})", raw):
            return int(match[3]), int(match[2])
        name = re.fullmatch(r"([a-z]+)\.?[ -]([0-9]{2}|[0-9]{4})", without_accents(raw).lower())
        if name and name[1] in FRENCH_MONTHS:
            year = int(name[2])
            return (2000 + year if year < 100 else year), FRENCH_MONTHS[name[1]]
        return None

    @staticmethod
    def plausible(month: datetime.date) -> datetime.date:
        try:
            validate_plausible_date(month)
        except ValidationError as error:
            raise ValueError(error.messages[0]) from None
        return month


class QuantityWidget(widgets.Widget):
    """A quantity, French (1 234,5) or plain (1234.5); never through float. Negative only for
    an adjustment with its motif (checked on the row)."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, float):
            value = repr(value)
        raw = (
            text(value).replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".")
        )
        # One rule for every number: ASCII digits, an optional sign and decimal point (no
        # exponent, no full-width or other Unicode digits), nine digits before the point at most.
        if not re.fullmatch(r"-?[0-9]{1,9}(\.[0-9]+)?", raw):
            raise ValueError(
                _(
                    "Quantité invalide « %(value)s » : un nombre est attendu (chiffres, virgule "
                    "décimale, 999 999 999 au plus)."
                )
                % {"value": text(value)[:40]}
            )
        try:
            quantity = Decimal(raw)
        except InvalidOperation:
            raise ValueError(
                _("Quantité invalide « %(value)s » : un nombre est attendu.")
                % {"value": text(value)}
            ) from None
        if not quantity.is_finite():
            raise ValueError(
                _("Quantité invalide « %(value)s » : un nombre est attendu.")
                % {"value": text(value)}
            )
        if quantity != quantity.quantize(Decimal("0.001")):
            raise ValueError(
                _("Quantité « %(value)s » : trois décimales au plus.") % {"value": text(value)}
            )
        return quantity


class UsageFileChecker:
    """Checks every row of a usage file in bulk: each lookup (conventions, organisations,
    services, the conventions' services and parties, weightings, issued statements, units
    already recorded) is one query for the whole file, never one per row, so that a file of
    20 000 rows is checked in seconds. The messages are those of the row-by-row checks."""

    def __init__(self, dataset, *, user=None, replace=False, progress=None):
        self.dataset = dataset
        self.user = user
        self.replace = replace
        self.progress = progress or (lambda done: None)
        self.errors: list[RowError] = []

    # -- the whole file, once ------------------------------------------------------------

    def check(self) -> list[UsageRecord]:
        """The records to write (complete, unsaved), or none when any row is in error."""
        parsed = [self.parse(line, row) for line, row in self.numbered_rows()]
        self.load(parsed)
        records = []
        for index, (line, values) in enumerate(parsed, start=1):
            record = self.build(line, values)
            if record is not None:
                records.append(record)
            if index % PROGRESS_STEP == 0:
                self.progress(index)
        self.check_running_totals(records)
        return [] if self.errors else records

    def numbered_rows(self):
        """(line of the file, row): the header is line 1."""
        return enumerate(self.dataset.dict, start=2)

    def error(self, line: int, column: str, message: str) -> None:
        self.errors.append(RowError(line, column, str(message)))

    def parse(self, line: int, row: dict) -> tuple[int, dict]:
        """The row's values, read by the one rule of each column (no database)."""
        errors_before = len(self.errors)
        values = {
            "convention": text(row.get("convention")).upper(),
            "beneficiary": insee_as_typed(text(row.get("beneficiaire"))),
            "service": text(row.get("service")).lower(),
            "weight": text(row.get("ponderation")),
            "reference": text(row.get("reference")),
            "reason": text(row.get("motif")),
            "month": None,
            "quantity": None,
            "raw_quantity": text(row.get("quantite")),
        }
        for column, key in (("convention", "convention"), ("beneficiaire", "beneficiary")):
            if not values[key]:
                self.error(line, column, _("Valeur obligatoire manquante."))
        if not values["service"]:
            self.error(line, "service", _("Valeur obligatoire manquante."))
        try:
            values["month"] = MonthWidget().clean(row.get("mois"))
        except ValueError as error:
            self.error(line, "mois", str(error))
        if not values["raw_quantity"]:
            self.error(line, "quantite", _("Valeur obligatoire manquante."))
        else:
            try:
                values["quantity"] = QuantityWidget().clean(row.get("quantite"))
            except ValueError as error:
                self.error(line, "quantite", str(error))
        if len(values["reference"]) > REFERENCE_MAX_LENGTH:
            self.error(
                line,
                "reference",
                _("Référence de %(length)s caractères : %(limit)s au plus.")
                % {"length": len(values["reference"]), "limit": REFERENCE_MAX_LENGTH},
            )
        if len(values["reason"]) > REASON_MAX_LENGTH:
            self.error(
                line,
                "motif",
                _("Motif de %(length)s caractères : %(limit)s au plus.")
                % {"length": len(values["reason"]), "limit": REASON_MAX_LENGTH},
            )
        values["invalid"] = len(self.errors) > errors_before
        return line, values

    def load(self, parsed) -> None:
        """Everything the rows refer to, in a few queries."""
        values = [v for _line, v in parsed]
        references = {v["convention"] for v in values if v["convention"]}
        # Only the conventions of the territories the importing person works for: another
        # territory's reference reads as unknown.
        conventions = (
            Convention.objects.of_territories(self.user) if self.user else Convention.objects
        )
        self.conventions = {
            c.reference: c
            for c in conventions.filter(reference__in=references).prefetch_related("terms")
        }
        keys = {v["beneficiary"] for v in values if v["beneficiary"]}
        sirens = {k for k in keys if re.fullmatch(r"\d{9}", k)}
        insee = {k.upper() for k in keys - sirens}
        self.by_siren = {o.siren: o for o in Organisation.objects.filter(siren__in=sirens)}
        self.by_insee = {o.insee_code: o for o in Organisation.objects.filter(insee_code__in=insee)}
        codes = {v["service"] for v in values if v["service"]}
        # (territory, code) → Service: a code is unique within a territory only, the row's
        # convention says which territory
        self.services = {
            (s.territory_id, s.code): s
            for s in Service.objects.filter(
                code__in=codes, territory__in={c.territory_id for c in self.conventions.values()}
            )
        }
        convention_ids = [c.pk for c in self.conventions.values()]
        self.lines = {}
        for line in (
            ConventionService.objects.filter(convention_id__in=convention_ids)
            .select_related("unit_type", "added_by", "removed_by")
            .order_by("pk")
        ):
            self.lines.setdefault((line.convention_id, line.service_id), []).append(line)
        self.parties = {
            (party.convention_id, party.organisation_id): party
            for party in Party.objects.filter(
                convention_id__in=convention_ids,
                role__in=(PartyRole.BENEFICIARY, PartyRole.MEMBER),
            ).select_related("joined_by", "left_by")
        }
        unit_types = {line.unit_type_id for lines in self.lines.values() for line in lines}
        self.weights = {
            (w.unit_type_id, w.code.lower()): w
            for w in UnitWeight.objects.filter(unit_type_id__in=unit_types)
        }
        years = {v["month"].year for v in values if v["month"]}
        self.locks = {}
        for statement in Statement.objects.filter(
            convention_id__in=convention_ids,
            year__in=years,
            status=StatementStatus.ISSUED,
            cancelled_by__isnull=True,
        ).select_related("payer"):
            self.locks[(statement.convention_id, statement.payer_id, statement.year)] = statement

    def organisation(self, key: str):
        if re.fullmatch(r"\d{9}", key):
            return self.by_siren.get(key)
        return self.by_insee.get(key.upper())

    def service(self, convention, code: str):
        """The service ``code`` of the convention's territory."""
        return self.services.get((convention.territory_id, code))

    # -- each row, in memory ---------------------------------------------------------------

    def build(self, line: int, values: dict) -> UsageRecord | None:
        errors_before = len(self.errors)
        convention = self.conventions.get(values["convention"]) if values["convention"] else None
        if values["convention"] and convention is None:
            self.error(
                line,
                "convention",
                _("Convention « %(value)s » inconnue.") % {"value": values["convention"]},
            )
        beneficiary = self.organisation(values["beneficiary"]) if values["beneficiary"] else None
        if values["beneficiary"] and beneficiary is None:
            self.error(
                line,
                "beneficiaire",
                _("Bénéficiaire « %(value)s » inconnu (code INSEE ou SIREN attendu).")
                % {"value": values["beneficiary"]},
            )
        # The convention unknown, so is its territory: the service cannot be looked up
        service = (
            self.service(convention, values["service"])
            if values["service"] and convention
            else None
        )
        if values["service"] and convention and service is None:
            self.error(
                line, "service", _("Service « %(value)s » inconnu.") % {"value": values["service"]}
            )
        quantity, month = values["quantity"], values["month"]
        negative = quantity is not None and quantity < 0
        if negative and not values["reason"]:
            self.error(
                line,
                "motif",
                _(
                    "Quantité négative « %(value)s » : c'est un ajustement, indiquez son "
                    "motif (colonne motif)."
                )
                % {"value": values["raw_quantity"]},
            )
        convention_line = None
        if convention is not None and service is not None:
            lines = self.lines.get((convention.pk, service.pk), [])
            if not lines:
                self.error(
                    line,
                    "service",
                    _("Le service « %(service)s » n'est pas couvert par %(convention)s.")
                    % {"service": service.code, "convention": convention.reference},
                )
            else:
                covered = [
                    candidate
                    for candidate in lines
                    if month is None
                    or present_in_month(candidate, month, start="added_by", end="removed_by")
                ]
                convention_line = (covered or lines)[0]
                if not covered:
                    self.error(
                        line,
                        "service",
                        _(
                            "Le service « %(service)s » n'est pas couvert par %(convention)s en "
                            "%(month)s (ajouté ou retiré par avenant)."
                        )
                        % {
                            "service": service.code,
                            "convention": convention.reference,
                            "month": month.strftime("%m/%Y"),
                        },
                    )
        if convention is not None and beneficiary is not None:
            party = self.parties.get((convention.pk, beneficiary.pk))
            if party is None:
                self.error(
                    line,
                    "beneficiaire",
                    _("%(organisation)s n'est pas bénéficiaire de %(convention)s.")
                    % {"organisation": beneficiary, "convention": convention.reference},
                )
            elif month is not None and not present_in_month(
                party, month, start="joined_by", end="left_by"
            ):
                self.error(
                    line,
                    "beneficiaire",
                    _(
                        "%(organisation)s n'est pas partie à %(convention)s en %(month)s (entrée "
                        "ou sortie par avenant) : ce recours ne serait pas facturé."
                    )
                    % {
                        "organisation": beneficiary,
                        "convention": convention.reference,
                        "month": month.strftime("%m/%Y"),
                    },
                )
        if convention is not None and month is not None:
            outside = month_outside_convention(convention, month)
            if outside:
                self.error(line, "mois", outside)
        weight = None
        if convention_line is not None and values["weight"]:
            weight = self.weights.get((convention_line.unit_type_id, values["weight"].lower()))
            if weight is None:
                self.error(
                    line,
                    "ponderation",
                    _("Pondération « %(code)s » inconnue pour l'unité « %(unit)s ».")
                    % {"code": values["weight"], "unit": convention_line.unit_type},
                )
        units = weighted_units(quantity, weight) if quantity is not None else None
        if units is not None and abs(units) >= MAX_UNITS:
            self.error(
                line,
                "quantite",
                _("Quantité « %(value)s » : une fois pondérée, elle dépasse 99 999 999 999.")
                % {"value": values["raw_quantity"]},
            )
        if convention is not None and beneficiary is not None and month is not None:
            issued = self.issued_statement(convention, beneficiary, month, values)
            if issued is not None:
                self.error(line, "mois", issued_year_message(issued))
        if values["invalid"] or len(self.errors) > errors_before:
            return None
        record = UsageRecord(
            convention=convention,
            beneficiary=beneficiary,
            service=service,
            unit_type=convention_line.unit_type,
            weight=weight,
            period_start=month,
            period_end=month_bounds(month.year, month.month)[1],
            quantity=quantity,
            units=units,
            reference=values["reference"],
            reason=values["reason"],
            source=UsageSource.ADJUSTMENT if negative else UsageSource.IMPORT,
            recorded_by=self.user,
        )
        record.line = line  # for the messages of the checks over several rows
        return record

    def issued_statement(self, convention, beneficiary, month, values) -> Statement | None:
        """The issued statement that locks the row's year, if one does."""
        return self.locks.get((convention.pk, beneficiary.pk, month.year))

    def check_running_totals(self, records: list[UsageRecord]) -> None:
        """An adjustment only removes what is recorded: the units of a payer, service and month
        (those in the database, then the file's rows in order) never fall below zero."""
        if self.errors or not any(r.units < 0 for r in records):
            return
        keys = {
            (r.convention_id, r.beneficiary_id, r.service_id, r.period_start)
            for r in records
            if r.units < 0
        }
        totals = dict.fromkeys(keys, Decimal(0))
        existing = UsageRecord.objects.filter(
            convention_id__in={k[0] for k in keys},
            beneficiary_id__in={k[1] for k in keys},
            period_start__in={k[3] for k in keys},
        )
        if self.replace:
            existing = existing.exclude(source=UsageSource.IMPORT)
        for convention_id, beneficiary_id, service_id, month, units in existing.values_list(
            "convention_id", "beneficiary_id", "service_id", "period_start", "units"
        ).order_by():
            key = (convention_id, beneficiary_id, service_id, month)
            if key in totals:
                totals[key] += units
        for record in records:
            key = (
                record.convention_id,
                record.beneficiary_id,
                record.service_id,
                record.period_start,
            )
            if key not in totals:
                continue
            totals[key] += record.units
            if record.units < 0 and totals[key] < 0:
                self.error(record.line, "quantite", negative_month_message(record, totals[key]))

    def issued_since_check(self, records: list[UsageRecord]) -> "list[RowError]":
        """Rows whose year a statement issued since the check now covers (read under the
        year's lock, in the writing transaction)."""
        keys = {(r.convention_id, r.beneficiary_id, r.period_start.year) for r in records}
        issued = {
            (s.convention_id, s.payer_id, s.year): s
            for s in Statement.objects.filter(
                convention_id__in={k[0] for k in keys},
                payer_id__in={k[1] for k in keys},
                year__in={k[2] for k in keys},
                status=StatementStatus.ISSUED,
                cancelled_by__isnull=True,
            ).select_related("payer")
        }
        errors = []
        for record in records:
            statement = issued.get(
                (record.convention_id, record.beneficiary_id, record.period_start.year)
            )
            if statement is not None:
                errors.append(
                    RowError(
                        record.line,
                        "mois",
                        _(
                            "L'état n° %(number)s, émis pendant la vérification du fichier, "
                            "couvre les recours %(year)s %(of_payer)s : rien n'a été importé."
                        )
                        % {
                            "number": statement.number,
                            "year": statement.year,
                            "of_payer": of(statement.payer.name),
                        },
                    )
                )
        return errors

    def replaced_records(self, records: list[UsageRecord]):
        """« Remplacer »: the imported records of every (convention, beneficiary, service,
        month) of the file."""
        keys = {(r.convention_id, r.beneficiary_id, r.service_id, r.period_start) for r in records}
        if not keys:
            return UsageRecord.objects.none()
        candidates = UsageRecord.objects.filter(
            source=UsageSource.IMPORT,
            convention_id__in={k[0] for k in keys},
            beneficiary_id__in={k[1] for k in keys},
            service_id__in={k[2] for k in keys},
            period_start__in={k[3] for k in keys},
        )
        ids = [
            pk
            for pk, *key in candidates.values_list(
                "pk", "convention_id", "beneficiary_id", "service_id", "period_start"
            ).order_by()
            if tuple(key) in keys
        ]
        return UsageRecord.objects.filter(pk__in=ids)


def month_outside_convention(convention: Convention, month: datetime.date) -> str | None:
    """Why a month is outside the convention's years, if it is: before the month it takes
    effect, or after its end date (latest terms, without tacit renewal)."""
    first = convention.start_date.replace(day=1)
    if month < first:
        return _("Mois %(month)s antérieur à la prise d'effet de %(convention)s (%(start)s).") % {
            "month": month.strftime("%m/%Y"),
            "convention": convention.reference,
            "start": convention.start_date.strftime("%d/%m/%Y"),
        }
    terms = sorted(convention.terms.all(), key=lambda t: t.effective_from)
    latest = terms[-1] if terms else None
    if (
        latest is not None
        and latest.end_date
        and not latest.tacit_renewal
        and month > latest.end_date
    ):
        return _("Mois %(month)s postérieur à l'échéance de %(convention)s (%(end)s).") % {
            "month": month.strftime("%m/%Y"),
            "convention": convention.reference,
            "end": latest.end_date.strftime("%d/%m/%Y"),
        }
    return None


MAX_IMPORT_BYTES = 5 * 1024 * 1024
PROGRESS_STEP = 1000  # rows between two updates of a job's progress
REFERENCE_MAX_LENGTH = UsageRecord._meta.get_field("reference").max_length
REASON_MAX_LENGTH = 2000
MAX_UNITS = Decimal("100000000000")  # units: 14 digits, 3 of them decimals
# An XLSX is a ZIP: bound what it expands to before parsing it (a 1.3 MB file expanding to
# 296 MB held a worker 126 s and +670 MB), and the rows one request checks.
MAX_XLSX_EXPANDED_BYTES = 40 * 1024 * 1024


def max_import_rows() -> int:
    from django.conf import settings

    return getattr(settings, "MUTUALIS_IMPORT_MAX_ROWS", 50_000)


def max_batch_records() -> int:
    """Records of one batch sent to the API: checked and written within the request (about
    1 s per 1 000 records), so fewer than a file's rows by default, and never more."""
    from django.conf import settings

    return min(getattr(settings, "MUTUALIS_API_BULK_MAX_RECORDS", 10_000), max_import_rows())


def too_many_rows(rows: int) -> str:
    return _(
        "Le fichier compte %(rows)s lignes : %(limit)s au plus par import. Découpez-le "
        "(par exemple par trimestre) ; rien n'a été importé."
    ) % {"rows": rows, "limit": max_import_rows()}


def check_xlsx_expansion(content: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ImportFileError(
            _("Fichier XLSX illisible : ce n'est pas un classeur Excel.")
        ) from None
    if expanded > MAX_XLSX_EXPANDED_BYTES:
        raise ImportFileError(
            _(
                "Classeur trop volumineux une fois décompressé (%(size)s Mo, 40 Mo au plus) : "
                "enregistrez-le en CSV ou découpez-le."
            )
            % {"size": expanded // (1024 * 1024)}
        )


@dataclass(frozen=True)
class RowError:
    line: int  # line of the file, the header being line 1
    column: str
    message: str


@dataclass(frozen=True)
class ImportReport:
    rows: int
    errors: tuple[RowError, ...]
    preview: tuple[dict, ...]  # the first rows as read, for the person to check
    imported: bool
    replaced: int = 0  # imported records replaced (« remplacer » mode)

    @property
    def ok(self) -> bool:
        return not self.errors


class ImportFileError(ValueError):
    """The file itself cannot be read (format, size, columns); the message is in French."""


def decode_csv(content: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252: what French Excel writes when it saves
    « CSV (séparateur : point-virgule) ». A byte Windows-1252 does not define still refuses the
    file (UnicodeDecodeError)."""
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            _(
                "Fichier en « Texte Unicode » (UTF-16) : enregistrez-le en CSV UTF-8 ou en "
                "Windows-1252 (« CSV (séparateur : point-virgule) » d'Excel), ou en classeur .xlsx."
            )
        )
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252")


def read_dataset(content: bytes, filename: str) -> tablib.Dataset:
    if len(content) > MAX_IMPORT_BYTES:
        raise ImportFileError(_("Fichier trop volumineux : 5 Mo au plus."))
    name = filename.lower()
    try:
        if name.endswith(".xlsx"):
            check_xlsx_expansion(content)
            dataset = tablib.Dataset().load(io.BytesIO(content), format="xlsx")
        elif name.endswith(".csv"):
            decoded = decode_csv(content)
            if not decoded.strip():
                raise ImportFileError(_("Le fichier est vide : aucune ligne à importer."))
            first_line = decoded.splitlines()[0]
            delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
            dataset = tablib.Dataset().load(decoded, format="csv", delimiter=delimiter)
        else:
            raise ImportFileError(_("Format non pris en charge : fichier .csv ou .xlsx attendu."))
    except UnicodeDecodeError:
        raise ImportFileError(
            _(
                "Le fichier CSV doit être encodé en UTF-8 ou en Windows-1252 (« CSV (séparateur : "
                "point-virgule) » d'Excel)."
            )
        ) from None
    except ImportFileError:
        raise
    except Exception:  # tablib, csv and openpyxl raise many kinds of errors on bad files
        # Their messages are English and name Python internals: say what to do instead.
        logger.info("Unreadable usage file %r", filename, exc_info=True)
        raise ImportFileError(
            _(
                "Fichier XLSX illisible : enregistrez-le à nouveau depuis le tableur (classeur "
                "Excel .xlsx), ou en CSV."
            )
            if name.endswith(".xlsx")
            else _(
                "Fichier CSV illisible : une ligne d'en-tête puis une ligne par recours, "
                "séparées par des points-virgules (une cellule compte au plus 131 072 "
                "caractères)."
            )
        ) from None
    if dataset.height > max_import_rows():
        raise ImportFileError(too_many_rows(dataset.height))
    # A NUL character is no text a person typed (a binary or corrupted file); PostgreSQL refuses
    # to store or even look one up.
    for line, row in enumerate([dataset.headers or [], *dataset], start=1):
        if any("\x00" in str(cell) for cell in row if cell is not None):
            raise ImportFileError(
                _(
                    "Ligne %(line)s : caractère nul dans une cellule (fichier binaire ou "
                    "corrompu ?). Enregistrez à nouveau le fichier depuis le tableur."
                )
                % {"line": line}
            )
    headers = [text(h).lower() for h in (dataset.headers or [])]
    missing = [column for column in REQUIRED_COLUMNS if column not in headers]
    if missing:
        raise ImportFileError(
            _("Colonnes manquantes : %(columns)s.") % {"columns": ", ".join(missing)}
        )
    if dataset.height == 0:
        raise ImportFileError(
            _("Le fichier ne compte aucune ligne de recours sous l'en-tête : rien à importer.")
        )
    dataset.headers = headers
    for column in OPTIONAL_COLUMNS:
        if column not in headers:
            dataset.append_col([""] * dataset.height, header=column)
    return dataset


def usage_template_dataset(user, month: datetime.date) -> tablib.Dataset:
    """The usage file to fill (« Télécharger le modèle »): the importer's exact header and one
    row per convention of the user's territories, beneficiary and service in force in
    ``month``, its quantity left blank. Only what the importer accepts is offered: a party and a
    service present that month (avenants), a month within the convention's years, a year whose
    statement of that payer is not issued (or is under correction)."""
    from costing.services import billed_conventions

    conventions = (
        billed_conventions(month.year, Convention.objects.of_territories(user))
        .prefetch_related(
            "parties__joined_by", "parties__left_by", "services__added_by", "services__removed_by"
        )
        .order_by("reference")
    )
    locked = set(
        Statement.objects.filter(
            convention__in=conventions,
            year=month.year,
            status=StatementStatus.ISSUED,
            cancelled_by__isnull=True,
        ).values_list("convention_id", "payer_id")
    )
    dataset = tablib.Dataset(headers=[*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS])
    dataset.title = _("recours")
    for convention in conventions:
        if month_outside_convention(convention, month):
            continue
        roles = (
            (PartyRole.MEMBER,)
            if convention.kind == ConventionKind.SERVICE_COMMUN
            else (PartyRole.BENEFICIARY,)
        )
        payers = sorted(
            (
                party.organisation
                for party in convention.parties.all()
                if present_in_month(party, month, start="joined_by", end="left_by")
                and party.role in roles
                and party.organisation_id != convention.managing_organisation_id
                and (convention.pk, party.organisation_id) not in locked
            ),
            key=lambda organisation: organisation.name,
        )
        lines = sorted(
            (
                line
                for line in convention.services.all()
                if present_in_month(line, month, start="added_by", end="removed_by")
            ),
            key=lambda line: line.service.code,
        )
        for payer in payers:
            for line in lines:
                dataset.append(
                    [
                        convention.reference,
                        payer.insee_code or payer.siren,
                        line.service.code,
                        month.strftime("%Y-%m"),
                        "",
                        "",
                        "",
                        "",
                    ]
                )
    return dataset


def duplicate_rows(dataset) -> list[RowError]:
    """Identical rows in one file (same convention, beneficiary, service, month, quantity,
    weighting and reference) are a copy-paste slip: refused with both line numbers, never
    imported twice."""
    seen: dict = {}
    errors = []
    columns = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS]
    for index, row in enumerate(dataset.dict, start=2):
        key = tuple(text(row.get(column)).lower() for column in columns)
        if key in seen:
            errors.append(
                RowError(
                    index,
                    "",
                    _(
                        "Ligne identique à la ligne %(line)s : une même saisie n'est importée qu'une fois."
                    )
                    % {"line": seen[key]},
                )
            )
        else:
            seen[key] = index
    return errors


def content_fingerprint(records) -> str:
    """The rows as read, whatever the file's format, order or spelling (lower/upper case,
    INSEE or SIREN, « 1,5 » or « 1.50 »): the same rows give the same fingerprint."""
    canonical = sorted(
        "|".join(
            str(value)
            for value in (
                r.convention_id,
                r.beneficiary_id,
                r.service_id,
                r.period_start.isoformat(),
                r.quantity.normalize(),
                r.weight_id or "",
                r.reference,
                r.reason,
            )
        )
        for r in records
    )
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def already_imported_reason(fingerprint: str) -> str | None:
    previous = (
        UsageImport.objects.filter(
            fingerprint=fingerprint, status=UsageImport.ImportStatus.IMPORTED
        )
        .select_related("created_by")
        .order_by("imported_at")
        .first()
    )
    if previous is None:
        return None
    return _(
        "Ces lignes ont déjà été importées le %(date)s par %(user)s (fichier « %(name)s ») : "
        "rien n'a été importé. Pour corriger des recours importés, cochez « remplacer »."
    ) % {
        "date": timezone.localtime(previous.imported_at).strftime("%d/%m/%Y à %H:%M"),
        "user": (
            (previous.created_by.get_full_name() or previous.created_by.get_username())
            if previous.created_by
            else _("un traitement automatique")
        ),
        "name": previous.filename,
    }


def import_usage_file(
    content: bytes,
    filename: str,
    *,
    user=None,
    commit: bool,
    replace: bool = False,
    job: UsageImport | None = None,
    progress=None,
) -> ImportReport:
    """Check (and with ``commit``, import) a usage file: all rows or none. With ``replace``, the
    imported records of the file's (convention, beneficiary, service, month) are replaced.
    The same rows are never added twice (ImportFileError names the first import)."""
    dataset = read_dataset(content, filename)
    duplicates = duplicate_rows(dataset)
    checker = UsageFileChecker(dataset, user=user, replace=replace, progress=progress)
    # The check only reads (outside the transaction, so that a job's progress shows); the
    # writing is one transaction, all or nothing.
    records = checker.check()
    errors = sorted([*checker.errors, *duplicates], key=lambda e: (e.line, e.column))
    fingerprint = content_fingerprint(records) if records and not errors else ""
    if fingerprint and not replace:
        reason = already_imported_reason(fingerprint)
        if reason:
            raise ImportFileError(reason)
    imported = commit and not errors and bool(records)
    replaced = checker.replaced_records(records).count() if replace and not imported else 0
    if imported:
        with transaction.atomic():
            # The statements' lock of each year (issuing and preparing take it first): an
            # import waits for an issue in progress, and two imports of the same months run
            # one after the other, the second replacing what the first wrote.
            territories = {c.territory_id for c in checker.conventions.values()}
            for year in sorted({r.period_start.year for r in records}):
                lock_year(year, territories)
            late = checker.issued_since_check(records)
            if late:
                errors = late
                imported = False
                transaction.set_rollback(True)
            else:
                replaced = write_records(
                    checker, records, content, filename, dataset.height, user, replace, job,
                    fingerprint,
                )  # fmt: skip
    preview = tuple(dict(zip(dataset.headers, row, strict=True)) for row in dataset[:20])
    return ImportReport(
        dataset.height, tuple(errors), preview, imported=imported, replaced=replaced
    )


def write_records(
    checker, records, content, filename, rows, user, replace, job, fingerprint
) -> int:
    """Within the import's transaction: record the import, replace, write; the number of
    records replaced."""
    replaced_records = checker.replaced_records(records) if replace else None
    replaced = replaced_records.count() if replaced_records is not None else 0
    if job is None:
        job = UsageImport(
            filename=filename[:200],
            sha256=hashlib.sha256(content).hexdigest(),
            replace=replace,
            rows=rows,
            created_by=user,
        )
        job.file.save(job.filename, ContentFile(content), save=False)
    job.fingerprint = fingerprint
    job.status = UsageImport.ImportStatus.IMPORTED
    job.imported_at = timezone.now()
    job.replaced = replaced
    try:
        with transaction.atomic():
            job.save()
    except IntegrityError:  # the same rows added at the same moment by someone else
        reason = already_imported_reason(fingerprint)
        if reason is None:
            raise
        raise ImportFileError(reason) from None
    if replaced_records is not None:
        replaced_records.delete()
    for record in records:
        record.imported_from = job
    bulk_create_with_history(records, UsageRecord, batch_size=1000, default_user=user)
    return replaced


# --- usage sent in bulk by a counting tool (POST /api/v1/usage-records/bulk/) -----------------

# The API's name of each column the file's checks report on.
BATCH_FIELDS = {
    "convention": "convention",
    "beneficiaire": "beneficiary_siren",
    "service": "service",
    "mois": "month",
    "quantite": "quantity",
    "ponderation": "weight",
    "reference": "reference",
    "motif": "quantity",  # never reached: the API refuses a negative quantity itself
}
LOOKUP_CHUNK = 500  # external references looked up per query


class UsageBatchChecker(UsageFileChecker):
    """The records a counting tool sends, checked by the very rules of the usage file (same
    lookups, same French messages): a record's « line » is its index in the batch."""

    def __init__(self, rows: list[tuple[int, dict]], *, user):
        super().__init__(None, user=user)
        self.rows = rows
        self.conflicts: set[int] = set()  # records whose external reference is recorded otherwise

    def numbered_rows(self):
        return self.rows

    def parse(self, line: int, row: dict) -> tuple[int, dict]:
        line, values = super().parse(line, row)
        values["external_reference"] = row["external_reference"]
        return line, values

    def load(self, parsed) -> None:
        super().load(parsed)
        # The records already there with the batch's external references: one sent again
        # unchanged changes nothing, even in a year an issued statement now locks.
        self.recorded = recorded_with_external_references(
            {
                (self.conventions[values["convention"]].pk, values["external_reference"])
                for _line, values in parsed
                if values["convention"] in self.conventions
            }
        )

    def issued_statement(self, convention, beneficiary, month, values) -> Statement | None:
        previous = self.recorded.get((convention.pk, values["external_reference"]))
        if previous is not None and sent_unchanged(previous, beneficiary, month, values):
            return None
        return super().issued_statement(convention, beneficiary, month, values)

    def build(self, line: int, values: dict) -> UsageRecord | None:
        record = super().build(line, values)
        if record is None:
            return None
        record.source = UsageSource.API
        record.external_reference = values["external_reference"]
        previous = self.recorded.get((record.convention_id, record.external_reference))
        differences = batch_differences(previous, record) if previous is not None else []
        if differences:
            self.conflicts.add(line)
            self.error(line, "external_reference", conflict_message(record, differences))
            return None
        return record


class UsageBatchRefused(Exception):
    """A batch refused, nothing written: French messages by field, as the API names them
    (``{"records.3.quantity": [...]}``). ``conflict``: every refusal is an external reference
    already recorded with other values (409)."""

    def __init__(self, errors: dict[str, list[str]], *, conflict: bool = False):
        self.errors = dict(sorted(errors.items(), key=lambda item: batch_error_order(item[0])))
        self.conflict = conflict
        super().__init__(str(self.errors))


def batch_error_order(key: str):
    parts = key.split(".")
    return (int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1, key)


@dataclass(frozen=True)
class BatchOutcome:
    index: int
    record: UsageRecord
    created: bool  # False: already recorded with the same values (sent again)


def record_usage_batch(
    items: list[tuple[int, dict]], *, user, invalid: dict[str, list[str]] | None = None
) -> list[BatchOutcome]:
    """Record the usage a counting tool sends (``items``: (index, values) as
    costing.serializers.UsageBatchRecordSerializer reads them), all or nothing, checked as a
    usage file is (UsageFileChecker). Idempotent: a record whose external reference is already
    recorded for its convention with the same values is not recorded again; with other values
    the batch is refused, never overwriting. ``invalid``: the errors already found on the
    records' shape, listed with those found here. Raises UsageBatchRefused."""
    errors: dict[str, list[str]] = dict(invalid or {})

    def refuse(index: int, field: str, message: str) -> None:
        errors.setdefault(f"records.{index}.{field}", []).append(str(message))

    fields = {index: values.get("month_field", "month") for index, values in items}
    first_sent: dict[tuple[str, str], int] = {}
    for index, values in items:
        key = (values["convention"].strip().upper(), values["external_reference"])
        if key in first_sent:
            refuse(
                index,
                "external_reference",
                _(
                    "Référence externe « %(reference)s » déjà envoyée pour %(convention)s par "
                    "l'enregistrement %(index)s de ce lot."
                )
                % {"reference": key[1], "convention": key[0], "index": first_sent[key]},
            )
        else:
            first_sent[key] = index
    checker = UsageBatchChecker([(index, batch_row(values)) for index, values in items], user=user)
    records = checker.check() if items else []
    conflicts = set()
    for row_error in checker.errors:
        field = BATCH_FIELDS.get(row_error.column, row_error.column)
        field = fields[row_error.line] if field == "month" else field
        refuse(row_error.line, field, row_error.message)
        if row_error.line in checker.conflicts and field == "external_reference":
            conflicts.add(f"records.{row_error.line}.{field}")
    if errors:
        raise UsageBatchRefused(errors, conflict=set(errors) <= conflicts)
    if not records:
        return []
    with transaction.atomic():
        # The years' lock, as the file import takes it: a batch waits for an issue in
        # progress, and two batches of the same territory run one after the other (the
        # second finds the first's records already there).
        territories = {c.territory_id for c in checker.conventions.values()}
        for year in sorted({r.period_start.year for r in records}):
            lock_year(year, territories)
        existing = recorded_with_external_references(
            {(r.convention_id, r.external_reference) for r in records}
        )
        unchanged = {
            r.line
            for r in records
            if (previous := existing.get((r.convention_id, r.external_reference))) is not None
            and not batch_differences(previous, r)
        }
        for late in checker.issued_since_check(records):
            if late.line not in unchanged:
                refuse(late.line, fields[late.line], late.message)
        if errors:
            raise UsageBatchRefused(errors)
        outcomes, new = [], []
        for record in records:
            previous = existing.get((record.convention_id, record.external_reference))
            if previous is None:
                new.append(record)
                outcomes.append(BatchOutcome(record.line, record, created=True))
                continue
            # Recorded meanwhile by another batch (the checker saw none): compared again.
            differences = batch_differences(previous, record)
            if differences:
                refuse(record.line, "external_reference", conflict_message(record, differences))
            outcomes.append(BatchOutcome(record.line, previous, created=False))
        if errors:
            raise UsageBatchRefused(errors, conflict=True)
        try:
            with transaction.atomic():
                bulk_create_with_history(
                    new,
                    UsageRecord,
                    batch_size=1000,
                    default_user=user,
                    default_change_reason=_("Envoi par l'API"),
                )
        except IntegrityError:  # the same references recorded at this moment by someone else
            raise UsageBatchRefused(
                {
                    "records": [
                        _(
                            "Un autre envoi vient d'enregistrer certaines de ces références "
                            "externes : rien n'a été enregistré, renvoyez le lot."
                        )
                    ]
                },
                conflict=True,
            ) from None
    missing = [r for r in new if r.pk is None]  # a database that does not return the keys
    if missing:
        ids = recorded_with_external_references(
            {(r.convention_id, r.external_reference) for r in missing}
        )
        for record in missing:
            record.pk = ids[(record.convention_id, record.external_reference)].pk
    return sorted(outcomes, key=lambda outcome: outcome.index)


def batch_row(values: dict) -> dict:
    """A record sent to the API as the usage file's row (its French columns)."""
    return {
        "convention": values["convention"],
        "beneficiaire": values["beneficiary_siren"],
        "service": values["service"],
        "mois": values["month"],
        "quantite": format(values["quantity"], "f"),
        "ponderation": values.get("weight", ""),
        "reference": values.get("reference") or values["external_reference"],
        "motif": "",
        "external_reference": values["external_reference"],
    }


def recorded_with_external_references(keys) -> dict:
    """The records already there with these (convention id, external reference), by key."""
    wanted: dict[int, set[str]] = {}
    for convention_id, reference in keys:
        wanted.setdefault(convention_id, set()).add(reference)
    found = {}
    for convention_id, references in wanted.items():
        references = sorted(references)
        for start in range(0, len(references), LOOKUP_CHUNK):
            for previous in UsageRecord.objects.filter(
                convention_id=convention_id,
                external_reference__in=references[start : start + LOOKUP_CHUNK],
            ).select_related("beneficiary", "service", "weight"):
                found[(convention_id, previous.external_reference)] = previous
    return found


def conflict_message(record: UsageRecord, differences: list[str]) -> str:
    return _(
        "La référence externe « %(reference)s » est déjà enregistrée pour %(convention)s avec "
        "d'autres valeurs (%(differences)s) : rien n'a été enregistré. Corrigez le recours à "
        "l'écran, ou envoyez une autre référence externe."
    ) % {
        "reference": record.external_reference,
        "convention": record.convention.reference,
        "differences": " ; ".join(differences),
    }


def sent_unchanged(previous: UsageRecord, beneficiary, month, values: dict) -> bool:
    """Whether a row sent again has the values of the record its external reference names."""
    weight = previous.weight.code.lower() if previous.weight else ""
    return (
        previous.beneficiary_id == beneficiary.pk
        and previous.period_start == month
        and previous.service.code == values["service"]
        and previous.quantity == values["quantity"]
        and weight == values["weight"].lower()
        and previous.reference == values["reference"]
    )


def french_number(value: Decimal) -> str:
    return format(value.normalize(), "f").replace(".", ",")


def batch_differences(previous: UsageRecord, record: UsageRecord) -> list[str]:
    """What a record sent again changes from the one recorded with its external reference,
    in French (« quantité : 3 enregistré, 4 envoyé »); empty when it is the same."""
    compared = (
        (_("bénéficiaire"), lambda r: r.beneficiary_id, lambda r: r.beneficiary.name),
        (_("service"), lambda r: r.service_id, lambda r: r.service.code),
        (_("mois"), lambda r: r.period_start, lambda r: r.period_start.strftime("%m/%Y")),
        (_("quantité"), lambda r: r.quantity, lambda r: french_number(r.quantity)),
        (
            _("pondération"),
            lambda r: r.weight_id,
            lambda r: r.weight.code if r.weight else _("aucune"),
        ),
        (_("référence"), lambda r: r.reference, lambda r: r.reference or "—"),
    )
    return [
        _("%(field)s : %(recorded)s enregistré, %(sent)s envoyé")
        % {"field": label, "recorded": shown(previous), "sent": shown(record)}
        for label, value, shown in compared
        if value(previous) != value(record)
    ]


# --- import jobs: the dropped file kept, checked, then imported ------------------------------

MAX_STORED_ERRORS = 500  # errors kept on a refused import (the count is always exact)


def sync_import_rows() -> int:
    """Files up to this many rows are checked and imported within the request; larger ones
    as a Celery job whose progress the page shows."""
    from django.conf import settings

    return getattr(settings, "MUTUALIS_IMPORT_SYNC_ROWS", 2000)


def estimate_rows(content: bytes, filename: str) -> int | None:
    """Rows of a file without reading it whole: lines of a CSV, the declared dimension of
    an XLSX sheet (None when the workbook does not declare it)."""
    if filename.lower().endswith(".csv"):
        return max(0, content.count(b"\n") - 1 + (0 if content.endswith(b"\n") else 1))
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
        rows = workbook.active.max_row
        workbook.close()
    except Exception:  # unreadable: the check says so in French
        return None
    return None if rows is None else max(0, rows - 1)


def usage_import_submit(*, content: bytes, filename: str, replace: bool, user) -> UsageImport:
    """Keep a dropped file and check it: in the request when small, as a job otherwise. What
    can be refused at once (size, format, a workbook bomb, too many rows) is, in French,
    before anything is kept."""
    if len(content) > MAX_IMPORT_BYTES:
        raise ImportFileError(_("Fichier trop volumineux : 5 Mo au plus."))
    name = filename.lower()
    if not name.endswith((".csv", ".xlsx")):
        raise ImportFileError(_("Format non pris en charge : fichier .csv ou .xlsx attendu."))
    if name.endswith(".xlsx"):
        check_xlsx_expansion(content)
    rows = estimate_rows(content, filename)
    if rows is not None and rows > max_import_rows():
        raise ImportFileError(too_many_rows(rows))
    job = UsageImport(
        filename=filename[:200],
        sha256=hashlib.sha256(content).hexdigest(),
        replace=replace,
        rows=rows or 0,
        created_by=user,
    )
    job.file.save(job.filename, ContentFile(content), save=False)
    job.save()
    run_or_queue(job, rows, "check")
    job.refresh_from_db()
    return job


def usage_import_confirm(job: UsageImport, *, user) -> UsageImport:
    """Import a checked file (once: a second confirmation finds it no longer waiting)."""
    waiting = UsageImport.objects.filter(
        pk=job.pk, created_by=user, status=UsageImport.ImportStatus.CHECKED
    ).update(status=UsageImport.ImportStatus.IMPORTING, done=0)
    if not waiting:
        raise ImportFileError(
            _(
                "Ce fichier n'est plus en attente (déjà importé, ou aperçu trop ancien) : "
                "déposez-le à nouveau."
            )
        )
    run_or_queue(job, job.rows, "import")
    job.refresh_from_db()
    return job


def run_or_queue(job: UsageImport, rows: int | None, phase: str) -> None:
    if rows is not None and rows <= sync_import_rows():
        usage_import_run(job.pk, phase)
    else:
        from costing.tasks import run_usage_import

        transaction.on_commit(lambda: run_usage_import.delay(job.pk, phase))


def usage_import_run(job_id: int, phase: str) -> None:
    """Check (phase "check") or import (phase "import") a kept file, recording progress and
    the outcome on the job. An import re-checks everything: the data may have changed since."""
    job = UsageImport.objects.get(pk=job_id)
    commit = phase == "import"
    UsageImport.objects.filter(pk=job.pk).update(done=0)

    def progress(done: int) -> None:
        UsageImport.objects.filter(pk=job.pk).update(done=done)

    try:
        with job.file.open("rb") as stored:
            content = stored.read()
        report = import_usage_file(
            content,
            job.filename,
            user=job.created_by,
            commit=commit,
            replace=job.replace,
            job=job,
            progress=progress,
        )
    except ImportFileError as error:
        refuse(job, [RowError(0, "", str(error))])
        return
    except Exception:
        refuse(
            job,
            [
                RowError(
                    0,
                    "",
                    _(
                        "Erreur inattendue pendant le traitement du fichier : rien n'a été "
                        "importé. Réessayez ; si l'erreur persiste, signalez-la à "
                        "l'administrateur."
                    ),
                )
            ],
        )
        raise
    if not report.ok:
        refuse(job, list(report.errors), rows=report.rows)
        return
    if commit:  # import_usage_file recorded the job as imported with its records
        UsageImport.objects.filter(pk=job.pk).update(done=report.rows, rows=report.rows)
        return
    UsageImport.objects.filter(pk=job.pk).update(
        status=UsageImport.ImportStatus.CHECKED,
        rows=report.rows,
        done=report.rows,
        replaced=report.replaced,
        preview=[{key: text(value) for key, value in row.items()} for row in report.preview],
    )


def refuse(job: UsageImport, errors: list[RowError], rows: int | None = None) -> None:
    UsageImport.objects.filter(pk=job.pk).update(
        status=UsageImport.ImportStatus.REFUSED,
        errors=[
            {"line": e.line, "column": e.column, "message": e.message}
            for e in errors[:MAX_STORED_ERRORS]
        ],
        error_count=len(errors),
        **({"rows": rows} if rows is not None else {}),
    )


def purge_usage_imports() -> int:
    """Delete the files dropped but never imported (refused, or checked and left unconfirmed)
    after MUTUALIS_IMPORT_RETENTION_DAYS; an imported file stays, its records cite it."""
    from django.conf import settings

    days = getattr(settings, "MUTUALIS_IMPORT_RETENTION_DAYS", 30)
    stale = UsageImport.objects.filter(
        status__in=(UsageImport.ImportStatus.REFUSED, UsageImport.ImportStatus.CHECKED),
        created_at__lt=timezone.now() - datetime.timedelta(days=days),
    )
    deleted = 0
    for job in stale.only("pk", "file"):
        job.file.delete(save=False)
        job.delete()
        deleted += 1
    return deleted


# --- exports for the finance suite (django-import-export, formula escaping on) -----------------


class NativeWidget(widgets.Widget):
    """An exported number or date as it is (Decimal, int, date; None stays None): each file
    format writes it its own way (costing.exports.SPREADSHEET_FORMATS), a number cell in XLSX,
    « 8965,47 » for French Excel, « 8965.47 » for the finance software."""

    def render(self, value, obj=None, **kwargs):
        return value


NATIVE = NativeWidget()


class StatementLineResource(resources.ModelResource):
    """Statement lines with the accounting imputation on both sides."""

    numero = fields.Field(column_name="numero_etat")
    exercice = fields.Field(column_name="exercice", attribute="statement__year", widget=NATIVE)
    convention = fields.Field(column_name="convention")
    debiteur_siren = fields.Field(column_name="debiteur_siren", attribute="statement__payer__siren")
    debiteur = fields.Field(column_name="debiteur")
    creancier_siren = fields.Field(
        column_name="creancier_siren", attribute="statement__payee__siren"
    )
    creancier = fields.Field(column_name="creancier")
    service = fields.Field(column_name="service")
    debut = fields.Field(column_name="periode_debut", attribute="period_start", widget=NATIVE)
    fin = fields.Field(column_name="periode_fin", attribute="period_end", widget=NATIVE)
    unites = fields.Field(column_name="unites", attribute="units", widget=NATIVE)
    cout_unitaire = fields.Field(column_name="cout_unitaire", attribute="unit_cost", widget=NATIVE)
    montant = fields.Field(column_name="montant", attribute="amount", widget=NATIVE)
    compte_recette = fields.Field(
        column_name="compte_recette_creancier", attribute="revenue_account"
    )
    compte_depense = fields.Field(
        column_name="compte_depense_debiteur", attribute="expense_account"
    )

    class Meta:
        model = StatementLine
        fields = (
            "numero",
            "exercice",
            "convention",
            "debiteur_siren",
            "debiteur",
            "creancier_siren",
            "creancier",
            "service",
            "debut",
            "fin",
            "unites",
            "cout_unitaire",
            "montant",
            "compte_recette",
            "compte_depense",
        )
        export_order = (
            "numero", "exercice", "convention", "debiteur_siren", "debiteur", "creancier_siren",
            "creancier", "service", "debut", "fin", "unites", "cout_unitaire", "montant",
            "compte_recette", "compte_depense",
        )  # fmt: skip

    def dehydrate_numero(self, line):
        return line.statement.number or "PROJET"

    def dehydrate_convention(self, line):
        return safe_text(line.statement.convention.reference)

    def dehydrate_debiteur(self, line):
        return safe_text(line.statement.payer.name)

    def dehydrate_creancier(self, line):
        return safe_text(line.statement.payee.name)

    def dehydrate_service(self, line):
        return safe_text(line.service.name)


class PieceResource(resources.Resource):
    """The pieces of the year's issued statements for one side of the flow (statements.Piece):
    titre, annulation / réduction, mandat de remboursement, imputation sur l'AC. Amounts are
    never negative; a correction's rows cite (« annule ») the statement whose pieces they
    reverse."""

    reference = fields.Field(column_name="reference", attribute="reference")
    nature = fields.Field(column_name="nature")
    libelle = fields.Field(column_name="libelle")
    annule = fields.Field(column_name="annule", attribute="cancels")
    objet = fields.Field(column_name="objet")
    montant = fields.Field(column_name="montant", attribute="amount", widget=NATIVE)
    total_exercice = fields.Field(column_name="total_exercice")
    deja_appele = fields.Field(column_name="deja_appele")
    compte = fields.Field(column_name="compte")
    periode = fields.Field(column_name="periode")
    side = ""  # "creditor" or "debtor"

    # An issued statement is frozen: its pieces export what its snapshot holds (names, SIREN,
    # convention), never today's reference data; a renamed commune changes no past export.
    @staticmethod
    def frozen(piece, role: str) -> dict:
        statement = piece.statement
        kept = statement.snapshot.get(role)
        if kept:
            return kept
        live = getattr(statement, role)
        if role == "convention":
            return {"reference": live.reference, "title": live.title}
        return {"name": live.name, "siren": live.siren, "is_epci": live.is_epci}

    def organisation(self, piece) -> dict:
        return self.frozen(piece, "payee" if self.side == "creditor" else "payer")

    def dehydrate_objet(self, piece):
        convention = self.frozen(piece, "convention")
        return safe_text(
            f"Remboursement {piece.statement.year} — {convention.get('reference', '')} — "
            f"{convention.get('title', '')}"
        )

    def dehydrate_total_exercice(self, piece):
        """The statement's total for the year (the amount of a titre is what remains of it)."""
        return piece.statement.total

    def dehydrate_deja_appele(self, piece):
        """The acomptes already called for the year, deducted from the total."""
        return piece.statement.instalments_called

    def dehydrate_compte(self, piece):
        accounts = piece.statement.snapshot.get("accounts") or {}
        if piece.is_ac:
            key = "ac_epci" if self.organisation(piece).get("is_epci") else "ac_commune"
        else:
            key = "revenue" if self.side == "creditor" else "expense"
        return (accounts.get(key) or {}).get("account", "")

    def dehydrate_periode(self, piece):
        return f"{piece.statement.year}-01-01/{piece.statement.year}-12-31"


class TitreResource(PieceResource):
    """The creditor's pieces: titres de recettes to issue, their annulations, its refunds."""

    debiteur_siren = fields.Field(column_name="debiteur_siren")
    debiteur = fields.Field(column_name="debiteur")
    emetteur_siren = fields.Field(column_name="emetteur_siren")
    side = "creditor"

    class Meta:
        fields = (
            "reference", "nature", "libelle", "annule", "debiteur_siren", "debiteur",
            "emetteur_siren", "objet", "montant", "total_exercice", "deja_appele", "compte",
            "periode",
        )  # fmt: skip
        export_order = fields

    def dehydrate_nature(self, piece):
        return piece.nature

    def dehydrate_libelle(self, piece):
        return piece.label

    def dehydrate_debiteur_siren(self, piece):
        return self.frozen(piece, "payer")["siren"]

    def dehydrate_debiteur(self, piece):
        return safe_text(self.frozen(piece, "payer")["name"])

    def dehydrate_emetteur_siren(self, piece):
        return self.frozen(piece, "payee")["siren"]


class MandatResource(PieceResource):
    """The debtor's mirror: the same references and amounts, the debtor's pieces and accounts,
    so that reciprocal flows match to the cent."""

    creancier_siren = fields.Field(column_name="creancier_siren")
    creancier = fields.Field(column_name="creancier")
    emetteur_siren = fields.Field(column_name="emetteur_siren")
    side = "debtor"

    class Meta:
        fields = (
            "reference", "nature", "libelle", "annule", "creancier_siren", "creancier",
            "emetteur_siren", "objet", "montant", "total_exercice", "deja_appele", "compte",
            "periode",
        )  # fmt: skip
        export_order = fields

    def dehydrate_nature(self, piece):
        return piece.debtor_nature

    def dehydrate_libelle(self, piece):
        return piece.debtor_label

    def dehydrate_creancier_siren(self, piece):
        return self.frozen(piece, "payee")["siren"]

    def dehydrate_creancier(self, piece):
        return safe_text(self.frozen(piece, "payee")["name"])

    def dehydrate_emetteur_siren(self, piece):
        return self.frozen(piece, "payer")["siren"]


class InstalmentResource(resources.ModelResource):
    """The acomptes called, for the titres the creditor issues (one row per call)."""

    convention = fields.Field(column_name="convention")
    rang = fields.Field(column_name="rang", attribute="rank", widget=NATIVE)
    echeance = fields.Field(column_name="echeance", attribute="due_date", widget=NATIVE)
    debiteur_siren = fields.Field(column_name="debiteur_siren", attribute="payer__siren")
    debiteur = fields.Field(column_name="debiteur")
    creancier_siren = fields.Field(column_name="creancier_siren", attribute="payee__siren")
    montant = fields.Field(column_name="montant", attribute="amount", widget=NATIVE)
    compte = fields.Field(column_name="compte")
    titre = fields.Field(column_name="titre", attribute="titre_number")
    statut = fields.Field(column_name="statut")
    encaisse_le = fields.Field(column_name="encaisse_le", attribute="paid_on", widget=NATIVE)

    class Meta:
        model = Instalment
        fields = (
            "convention", "rang", "echeance", "debiteur_siren", "debiteur", "creancier_siren",
            "montant", "compte", "titre", "statut", "encaisse_le",
        )  # fmt: skip
        export_order = fields

    def __init__(self, table=None, **kwargs):
        super().__init__(**kwargs)
        self.table = table or {}  # statements.account_table()

    def dehydrate_convention(self, instalment):
        return safe_text(instalment.convention.reference)

    def dehydrate_debiteur(self, instalment):
        return safe_text(instalment.payer.name)

    def dehydrate_compte(self, instalment):
        from costing.statements import accounts_for

        revenue, _expense = accounts_for(instalment.payee, self.table)
        return revenue.account if revenue else ""

    def dehydrate_statut(self, instalment):
        return str(instalment.get_status_display())
