"""Import of the état des recours from CSV or XLSX (django-import-export).

Columns (French, as finance officers name them): ``convention`` (reference), ``beneficiaire``
(code INSEE or SIREN), ``service`` (code), ``mois`` (AAAA-MM), ``quantite`` (1 234,5 or 1234.5),
``ponderation`` (optional weight code, e.g. PC), ``reference`` (optional, e.g. dossier number),
``motif`` (optional; required for a negative quantity, which is an adjustment).
Every error is reported in French with its row and column; the import is all or nothing. In
« remplacer » mode the imported records of every (convention, beneficiary, service, month) of
the file are replaced. No row may touch a year whose statement is issued and not under correction.
"""

import datetime
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import tablib
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import fields, resources, widgets

from conventions.models import Convention, PartyRole
from costing.models import Instalment, StatementLine, UsageRecord, UsageSource
from costing.services import (
    month_bounds,
    negative_month_reason,
    usage_lock_reason,
    weighted_units,
)
from mutualisation.models import Organisation, Service, UnitWeight
from mutualisation.validators import validate_plausible_date

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ["convention", "beneficiaire", "service", "mois", "quantite"]
OPTIONAL_COLUMNS = ["ponderation", "reference", "motif"]


def text(value) -> str:
    return "" if value is None else str(value).strip()


class LookupWidget(widgets.Widget):
    """A foreign key found by a natural key, with a French message when it is not."""

    def __init__(self, finder, message):
        super().__init__()
        self.finder = finder
        self.message = message

    def clean(self, value, row=None, **kwargs):
        key = text(value)
        if not key:
            raise ValueError(_("Valeur obligatoire manquante."))
        found = self.finder(key)
        if found is None:
            raise ValueError(self.message % {"value": key})
        return found

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


def find_organisation(key: str):
    if re.fullmatch(r"\d{9}", key):
        return Organisation.objects.filter(siren=key).first()
    return Organisation.objects.filter(insee_code=key.upper()).first()


class MonthWidget(widgets.Widget):
    """A month as AAAA-MM, MM/AAAA or a spreadsheet date; stored as its first day."""

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, datetime.datetime | datetime.date):
            return self.plausible(datetime.date(value.year, value.month, 1))
        raw = text(value)
        # ASCII digits only: full-width or other Unicode digits are a typing accident.
        match = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})", raw) or re.fullmatch(
            r"([0-9]{1,2})/([0-9]{4})", raw
        )
        if match:
            first, second = match.groups()
            year, month = (
                (int(first), int(second)) if len(first) == 4 else (int(second), int(first))
            )
            if 1 <= month <= 12:
                return self.plausible(datetime.date(year, month, 1))
        raise ValueError(
            _("Mois invalide « %(value)s » : attendu AAAA-MM (ex. 2025-03).") % {"value": raw}
        )

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


class UsageRecordResource(resources.ModelResource):
    convention = fields.Field(
        attribute="convention",
        column_name="convention",
        widget=LookupWidget(
            lambda key: Convention.objects.filter(reference=key.upper()).first(),
            gettext_lazy("Convention « %(value)s » inconnue."),
        ),
    )
    beneficiary = fields.Field(
        attribute="beneficiary",
        column_name="beneficiaire",
        widget=LookupWidget(
            find_organisation,
            gettext_lazy("Bénéficiaire « %(value)s » inconnu (code INSEE ou SIREN attendu)."),
        ),
    )
    service = fields.Field(
        attribute="service",
        column_name="service",
        widget=LookupWidget(
            lambda key: Service.objects.filter(code=key.lower()).first(),
            gettext_lazy("Service « %(value)s » inconnu."),
        ),
    )
    period_start = fields.Field(attribute="period_start", column_name="mois", widget=MonthWidget())
    quantity = fields.Field(attribute="quantity", column_name="quantite", widget=QuantityWidget())
    reference = fields.Field(
        attribute="reference", column_name="reference", widget=widgets.CharWidget()
    )
    reason = fields.Field(attribute="reason", column_name="motif", widget=widgets.CharWidget())

    class Meta:
        model = UsageRecord
        fields = (
            "convention",
            "beneficiary",
            "service",
            "period_start",
            "quantity",
            "reference",
            "reason",
        )
        import_id_fields = ()
        skip_diff = True
        use_transactions = True
        clean_model_instances = True

    def __init__(self, user=None, replace=False, **kwargs):
        super().__init__(**kwargs)
        self.user = user
        self.replace = replace
        self.replaced = 0

    def before_import(self, dataset, **kwargs):
        """« Remplacer »: delete the imported records of every (convention, beneficiary,
        service, month) of the file, in the import's transaction (rolled back with it)."""
        if not self.replace:
            return
        months = MonthWidget()
        tuples = set()
        for row in dataset.dict:
            convention = Convention.objects.filter(reference=text(row["convention"]).upper())
            beneficiary = find_organisation(text(row["beneficiaire"]))
            try:
                month = months.clean(row["mois"])
            except ValueError:
                continue  # reported on its row
            if convention.exists() and beneficiary is not None:
                tuples.add(
                    (convention.get().pk, beneficiary.pk, text(row["service"]).lower(), month)
                )
        for convention_id, beneficiary_id, service_code, month in tuples:
            deleted, _detail = UsageRecord.objects.filter(
                convention_id=convention_id,
                beneficiary_id=beneficiary_id,
                service__code=service_code,
                period_start=month,
                source=UsageSource.IMPORT,
            ).delete()
            self.replaced += deleted

    def get_instance(self, instance_loader, row):
        return None  # every row is a new record

    def import_instance(self, instance, row, **kwargs):
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as error:
            errors = error.error_dict
        self.complete(instance, row, errors)
        if errors:
            raise ValidationError(errors)

    def complete(self, instance, row, errors):
        """Derive the period end, unit type, weighted units and source; check the row against
        the convention (beneficiary, service, weight)."""
        instance.recorded_by = self.user
        if instance.reference is None:
            instance.reference = ""
        instance.reason = (instance.reason or "").strip()
        negative = instance.quantity is not None and instance.quantity < 0
        instance.source = UsageSource.ADJUSTMENT if negative else UsageSource.IMPORT
        if negative and not instance.reason:
            errors.setdefault("reason", []).append(
                ValidationError(
                    _(
                        "Quantité négative « %(value)s » : c'est un ajustement, indiquez son "
                        "motif (colonne motif)."
                    )
                    % {"value": text(row.get("quantite"))}
                )
            )
        if instance.period_start:
            instance.period_end = month_bounds(
                instance.period_start.year, instance.period_start.month
            )[1]
        convention = instance.convention if instance.convention_id else None
        line = None
        if convention is not None and instance.service_id:
            line = (
                convention.services.select_related("unit_type")
                .filter(service=instance.service)
                .first()
            )
            if line is None:
                errors.setdefault("service", []).append(
                    ValidationError(
                        _("Le service « %(service)s » n'est pas couvert par %(convention)s.")
                        % {"service": instance.service.code, "convention": convention.reference}
                    )
                )
        if convention is not None and instance.beneficiary_id:
            roles = (PartyRole.BENEFICIARY, PartyRole.MEMBER)
            if not convention.parties.filter(
                organisation=instance.beneficiary, role__in=roles
            ).exists():
                errors.setdefault("beneficiary", []).append(
                    ValidationError(
                        _("%(organisation)s n'est pas bénéficiaire de %(convention)s.")
                        % {"organisation": instance.beneficiary, "convention": convention.reference}
                    )
                )
        weight = None
        code = text(row.get("ponderation"))
        if line is not None:
            instance.unit_type = line.unit_type
            if code:
                weight = UnitWeight.objects.filter(
                    unit_type=line.unit_type, code__iexact=code
                ).first()
                if weight is None:
                    errors.setdefault("weight", []).append(
                        ValidationError(
                            _("Pondération « %(code)s » inconnue pour l'unité « %(unit)s ».")
                            % {"code": code, "unit": line.unit_type}
                        )
                    )
        instance.weight = weight
        if instance.quantity is not None:
            instance.units = weighted_units(instance.quantity, weight)
        if instance.convention_id and instance.beneficiary_id and instance.period_start:
            lock = usage_lock_reason(
                convention_id=instance.convention_id,
                beneficiary_id=instance.beneficiary_id,
                year=instance.period_start.year,
            )
            if lock:
                errors.setdefault("period_start", []).append(ValidationError(lock))
            elif negative and line is not None and not errors:
                # The rows above in the file are already written (in the transaction).
                below = negative_month_reason(instance, instance.units)
                if below:
                    errors.setdefault("quantity", []).append(ValidationError(below))

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        """The model's own validation too, without repeating errors of fields already in error
        (nor of the fields derived from them)."""
        errors = dict(import_validation_errors or {})
        derived = {"unit_type", "period_end", "units", "weight"} if errors else set()
        try:
            instance.full_clean(exclude=set(errors) | derived, validate_unique=False)
        except ValidationError as error:
            errors = error.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)


# Column shown to people for each attribute that can be in error.
COLUMN_OF = {
    "convention": "convention",
    "beneficiary": "beneficiaire",
    "service": "service",
    "period_start": "mois",
    "period_end": "mois",
    "quantity": "quantite",
    "units": "quantite",
    "weight": "ponderation",
    "reference": "reference",
    "reason": "motif",
    "source": "quantite",
    "unit_type": "service",
}


MAX_IMPORT_BYTES = 5 * 1024 * 1024
# An XLSX is a ZIP: bound what it expands to before parsing it (a 1.3 MB file expanding to
# 296 MB held a worker 126 s and +670 MB), and the rows one request checks.
MAX_XLSX_EXPANDED_BYTES = 40 * 1024 * 1024


def max_import_rows() -> int:
    from django.conf import settings

    return getattr(settings, "MUTUALIS_IMPORT_MAX_ROWS", 5000)


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


def read_dataset(content: bytes, filename: str) -> tablib.Dataset:
    if len(content) > MAX_IMPORT_BYTES:
        raise ImportFileError(_("Fichier trop volumineux : 5 Mo au plus."))
    name = filename.lower()
    try:
        if name.endswith(".xlsx"):
            check_xlsx_expansion(content)
            dataset = tablib.Dataset().load(io.BytesIO(content), format="xlsx")
        elif name.endswith(".csv"):
            decoded = content.decode("utf-8-sig")
            if not decoded.strip():
                raise ImportFileError(_("Le fichier est vide : aucune ligne à importer."))
            first_line = decoded.splitlines()[0]
            delimiter = ";" if first_line.count(";") >= first_line.count(",") else ","
            dataset = tablib.Dataset().load(decoded, format="csv", delimiter=delimiter)
        else:
            raise ImportFileError(_("Format non pris en charge : fichier .csv ou .xlsx attendu."))
    except UnicodeDecodeError:
        raise ImportFileError(_("Le fichier CSV doit être encodé en UTF-8.")) from None
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
        raise ImportFileError(
            _(
                "Le fichier compte %(rows)s lignes : %(limit)s au plus par import. Découpez-le "
                "(par exemple par trimestre) ; rien n'a été importé."
            )
            % {"rows": dataset.height, "limit": max_import_rows()}
        )
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
    dataset.headers = headers
    for column in OPTIONAL_COLUMNS:
        if column not in headers:
            dataset.append_col([""] * dataset.height, header=column)
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


def import_usage_file(
    content: bytes, filename: str, *, user=None, commit: bool, replace: bool = False
) -> ImportReport:
    """Check (and with ``commit``, import) a usage file: all rows or none. With ``replace``, the
    imported records of the file's (convention, beneficiary, service, month) are replaced."""
    dataset = read_dataset(content, filename)
    duplicates = duplicate_rows(dataset)
    commit = commit and not duplicates  # all or nothing: a duplicated row stops the import
    resource = UsageRecordResource(user=user, replace=replace)
    # One pass: a dry run, or a real import rolled back whole if any row fails.
    with transaction.atomic():
        result = resource.import_data(
            dataset,
            dry_run=not commit,
            raise_errors=False,
            use_transactions=True,
            rollback_on_validation_errors=True,
        )
    errors = []
    for invalid in result.invalid_rows:
        for attribute, messages in invalid.error_dict.items():
            for message in messages:
                errors.append(
                    RowError(invalid.number + 1, COLUMN_OF.get(attribute, attribute), str(message))
                )
    for number, row_errors in result.row_errors():
        for error in row_errors:
            # The exception's text is English and technical: logged, not shown.
            logger.warning("Usage import, line %s: %r", number + 1, error.error)
            errors.append(
                RowError(
                    number + 1,
                    "",
                    _("Ligne illisible : vérifiez ses valeurs (nombres, mois, codes)."),
                )
            )
    errors += duplicates
    errors.sort(key=lambda e: (e.line, e.column))
    preview = tuple(dict(zip(dataset.headers, row, strict=True)) for row in dataset[:20])
    return ImportReport(
        dataset.height,
        tuple(errors),
        preview,
        imported=commit and not errors,
        replaced=resource.replaced,
    )


# --- exports for the finance suite (django-import-export, formula escaping on) -----------------

SPREADSHEET_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(value) -> str:
    """Text for a spreadsheet cell: a leading formula character is neutralised with a quote
    (django-import-export also strips a leading « = » on export)."""
    value = "" if value is None else str(value)
    return "'" + value if value.startswith(SPREADSHEET_TRIGGERS) else value


class StatementLineResource(resources.ModelResource):
    """Statement lines with the accounting imputation on both sides."""

    numero = fields.Field(column_name="numero_etat")
    exercice = fields.Field(column_name="exercice", attribute="statement__year")
    convention = fields.Field(column_name="convention")
    debiteur_siren = fields.Field(column_name="debiteur_siren", attribute="statement__payer__siren")
    debiteur = fields.Field(column_name="debiteur")
    creancier_siren = fields.Field(
        column_name="creancier_siren", attribute="statement__payee__siren"
    )
    creancier = fields.Field(column_name="creancier")
    service = fields.Field(column_name="service")
    debut = fields.Field(column_name="periode_debut", attribute="period_start")
    fin = fields.Field(column_name="periode_fin", attribute="period_end")
    unites = fields.Field(column_name="unites", attribute="units")
    cout_unitaire = fields.Field(column_name="cout_unitaire", attribute="unit_cost")
    montant = fields.Field(column_name="montant", attribute="amount")
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
    montant = fields.Field(column_name="montant", attribute="amount")
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
        return str(piece.statement.total)

    def dehydrate_deja_appele(self, piece):
        """The acomptes already called for the year, deducted from the total."""
        return str(piece.statement.instalments_called)

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
    rang = fields.Field(column_name="rang", attribute="rank")
    echeance = fields.Field(column_name="echeance", attribute="due_date")
    debiteur_siren = fields.Field(column_name="debiteur_siren", attribute="payer__siren")
    debiteur = fields.Field(column_name="debiteur")
    creancier_siren = fields.Field(column_name="creancier_siren", attribute="payee__siren")
    montant = fields.Field(column_name="montant", attribute="amount")
    compte = fields.Field(column_name="compte")
    titre = fields.Field(column_name="titre", attribute="titre_number")
    statut = fields.Field(column_name="statut")
    encaisse_le = fields.Field(column_name="encaisse_le", attribute="paid_on")

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
