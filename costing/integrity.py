"""Integrity of what the database keeps frozen, checked after a restore (docs/exploitation.md):
issued statements (PDF against its SHA-256, total against its lines and snapshot), signed acts
(PDF against its SHA-256), signed scans (file against its SHA-256) and the triggers that refuse
to change them."""

import hashlib
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection
from django.db.models import Sum
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from conventions.models import Attachment, SignedDocument
from costing.models import Statement, StatementLine, StatementStatus

# The triggers of the migrations (costing 0003, 0005, 0008; conventions 0006), by vendor. A
# migration that adds one adds it here: tests/costing/test_integrity.py compares this list
# with the migrated test database.
PROTECTIVE_TRIGGERS = {
    "sqlite": {
        "conventions_signeddocument_no_update",
        "costing_statement_born_draft",
        "costing_statement_draft_unnumbered_insert",
        "costing_statement_draft_unnumbered_update",
        "costing_statement_issued_by_issue_only",
        "costing_statement_issued_no_delete",
        "costing_statement_issued_no_replace_insert",
        "costing_statement_issued_no_replace_update",
        "costing_statement_issued_no_update",
        "costing_statementline_issued_no_delete",
        "costing_statementline_issued_no_insert",
        "costing_statementline_issued_no_replace_insert",
        "costing_statementline_issued_no_replace_update",
        "costing_statementline_issued_no_update",
        "costing_unitcost_notified_no_update",
    },
    "postgresql": {
        "conventions_signeddocument_no_update",
        "costing_statement_issued_by_issue_only",
        "costing_statement_issued_immutable",
        "costing_statement_issued_no_truncate",
        "costing_statementline_issued_immutable",
        "costing_statementline_issued_no_truncate",
        "costing_unitcost_notified_frozen",
    },
}


@dataclass
class YearTotals:
    year: int
    issued: int = 0
    cancelled: int = 0  # issued, then cancelled and replaced by an issued correction
    total: Decimal = Decimal("0.00")  # of the issued statements that stand
    balance: Decimal = Decimal("0.00")


@dataclass
class Integrity:
    years: list[YearTotals] = field(default_factory=list)
    statements: int = 0
    signed_documents: int = 0
    attachments: int = 0
    triggers: int = 0
    anomalies: list[str] = field(default_factory=list)
    fingerprint: str = ""  # one SHA-256 over every frozen item: compare two databases at a glance


def euros(amount: Decimal) -> str:
    return f"{number_format(amount, decimal_pos=2, force_grouping=True)}\u00a0€"


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def frozen_total(snapshot: dict) -> Decimal | None:
    try:
        return Decimal(snapshot["total"])
    except (KeyError, TypeError, ArithmeticError):
        return None


def active_triggers() -> set[str]:
    """The enabled triggers of the database (PostgreSQL: ``ALTER TABLE … DISABLE TRIGGER``
    leaves a trigger in place but inactive)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'D'"
            )
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {name for (name,) in cursor.fetchall()}


def verify_integrity() -> Integrity:
    """Check every frozen item; nothing is written."""
    report = Integrity()
    digest = hashlib.sha256()
    years: dict[int, YearTotals] = {}
    issued = Statement.objects.filter(status=StatementStatus.ISSUED).order_by("year", "number")
    lines_totals = dict(
        StatementLine.objects.filter(statement__status=StatementStatus.ISSUED)
        .values("statement")
        .annotate(total=Sum("amount"))
        .values_list("statement", "total")
    )
    cancelled = set(
        Statement.objects.filter(
            status=StatementStatus.ISSUED, cancelled_by__status=StatementStatus.ISSUED
        ).values_list("pk", flat=True)
    )
    for statement in issued.iterator(chunk_size=100):
        report.statements += 1
        number = statement.number
        if sha256(bytes(statement.pdf or b"")) != statement.pdf_sha256:
            report.anomalies.append(
                _("%(number)s : le PDF ne correspond plus à son empreinte SHA-256.")
                % {"number": number}
            )
        lines_total = lines_totals.get(statement.pk, Decimal("0.00"))
        if lines_total != statement.total:
            report.anomalies.append(
                _("%(number)s : total %(total)s, mais ses lignes font %(lines)s.")
                % {"number": number, "total": euros(statement.total), "lines": euros(lines_total)}
            )
        frozen = statement.snapshot or {}
        if frozen_total(frozen) != statement.total or frozen.get("number") != number:
            report.anomalies.append(
                _("%(number)s : son instantané ne porte pas le même numéro ou le même total.")
                % {"number": number}
            )
        totals = years.setdefault(statement.year, YearTotals(statement.year))
        totals.issued += 1
        if statement.pk in cancelled:
            totals.cancelled += 1
        else:
            totals.total += statement.total
            totals.balance += statement.balance
        digest.update(
            f"etat {number} {statement.pdf_sha256} {statement.total} {statement.balance}\n".encode()
        )
    report.years = [years[year] for year in sorted(years)]

    for document in (
        SignedDocument.objects.select_related("convention", "amendment")
        .order_by("convention__reference", "signed_on", "pk")
        .iterator(chunk_size=100)
    ):
        report.signed_documents += 1
        act = document.convention.reference
        if document.amendment_id:
            act = f"{act} avenant {document.amendment.number}"
        if sha256(bytes(document.pdf)) != document.sha256:
            report.anomalies.append(
                _("%(act)s : l'acte signé ne correspond plus à son empreinte SHA-256.")
                % {"act": act}
            )
        digest.update(f"acte {act} {document.sha256}\n".encode())

    for attachment in Attachment.objects.select_related("convention").order_by("pk"):
        report.attachments += 1
        try:
            with attachment.file.storage.open(attachment.file.name, "rb") as handle:
                content = handle.read()
        except FileNotFoundError:
            report.anomalies.append(
                _("%(reference)s : pièce jointe « %(name)s » absente des fichiers.")
                % {"reference": attachment.convention.reference, "name": attachment.file.name}
            )
            content = None
        if content is not None and sha256(content) != attachment.sha256:
            report.anomalies.append(
                _(
                    "%(reference)s : la pièce jointe « %(name)s » ne correspond plus à son empreinte."
                )
                % {"reference": attachment.convention.reference, "name": attachment.file.name}
            )
        digest.update(f"piece {attachment.file.name} {attachment.sha256}\n".encode())

    expected = PROTECTIVE_TRIGGERS.get(connection.vendor, set())
    present = active_triggers()
    report.triggers = len(expected & present)
    for name in sorted(expected - present):
        report.anomalies.append(
            _("Déclencheur de protection absent ou désactivé : %(name)s.") % {"name": name}
        )
    report.fingerprint = digest.hexdigest()
    return report
