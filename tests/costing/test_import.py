"""Import of the état des recours: French row errors, all or nothing."""

import io
from decimal import Decimal

import openpyxl
import pytest

from conventions.demo import DEMO, build
from costing.models import UsageRecord
from costing.resources import ImportFileError, import_usage_file
from tests.conftest import seed_territory

pytestmark = pytest.mark.django_db

HEADER = "convention;beneficiaire;service;mois;quantite;ponderation;reference"


@pytest.fixture
def demo(db):
    """The territory and the demo ADS service commun only (it gets the reference CONV-2025-001)."""
    seed_territory(with_users=False)
    ads = next(d for d in DEMO if d.service == "ads")
    return build(ads).reference


def ads_rows(count):
    communes = ["63014", "63019", "63042", "63099", "63141", "63254", "63272", "63345"]
    return [
        f"CONV-2025-001;{communes[i % 8]};ads;2025-{i % 12 + 1:02d};{i % 5 + 1};PC;ADS-{i:04d}"
        for i in range(count)
    ]


def csv_bytes(rows):
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def test_one_bad_row_among_200_imports_nothing_and_names_row_column_and_reason(demo):
    rows = ads_rows(200)
    rows[136] = rows[136].replace(";ads;2025-05;", ";ads;2025-13;")
    before = UsageRecord.objects.count()
    report = import_usage_file(csv_bytes(rows), "recours.csv", commit=True)
    assert not report.imported
    assert UsageRecord.objects.count() == before
    assert [(e.line, e.column) for e in report.errors] == [(138, "mois")]
    assert report.errors[0].message == "Mois invalide « 2025-13 » : attendu AAAA-MM (ex. 2025-03)."


def test_a_clean_file_of_200_rows_is_imported_with_weighted_units(demo):
    before = UsageRecord.objects.count()
    report = import_usage_file(csv_bytes(ads_rows(200)), "recours.csv", commit=True)
    assert report.ok
    assert report.imported
    assert UsageRecord.objects.count() == before + 200
    record = UsageRecord.objects.get(reference="ADS-0001")
    assert (record.quantity, record.units, record.weight.code) == (2, 2, "PC")


def test_dry_run_previews_without_writing(demo):
    before = UsageRecord.objects.count()
    report = import_usage_file(csv_bytes(ads_rows(3)), "recours.csv", commit=False)
    assert report.ok
    assert not report.imported
    assert report.preview[0]["beneficiaire"] == "63014"
    assert UsageRecord.objects.count() == before


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        (
            "CONV-1999-999;63014;ads;2025-01;1;;",
            "convention",
            "Convention « CONV-1999-999 » inconnue.",
        ),
        (
            "CONV-2025-001;99999;ads;2025-01;1;;",
            "beneficiaire",
            "Bénéficiaire « 99999 » inconnu (code INSEE ou SIREN attendu).",
        ),
        (
            "CONV-2025-001;63113;ads;2025-01;1;;",
            "beneficiaire",
            "Clermont-Ferrand n'est pas bénéficiaire de CONV-2025-001.",
        ),
        (
            "CONV-2025-001;63014;paie;2025-01;1;;",
            "service",
            "Le service « paie » n'est pas couvert par CONV-2025-001.",
        ),
        (
            # A negative quantity is an adjustment: it needs its motif (issue 8).
            "CONV-2025-001;63014;ads;2025-01;-3;;",
            "motif",
            "Quantité négative « -3 » : c'est un ajustement, indiquez son motif (colonne motif).",
        ),
        (
            "CONV-2025-001;63014;ads;2025-01;douze;;",
            "quantite",
            "Quantité invalide « douze » : un nombre est attendu (chiffres, virgule décimale, "
            "999 999 999 au plus).",
        ),
        (
            "CONV-2025-001;63014;ads;2025-01;1;XX;",
            "ponderation",
            "Pondération « XX » inconnue pour l'unité « Équivalent permis (ADS) ».",
        ),
    ],
)
def test_each_bad_value_is_explained_in_french(demo, row, column, message):
    report = import_usage_file(csv_bytes([row]), "recours.csv", commit=True)
    assert [(e.line, e.column, e.message) for e in report.errors] == [(2, column, message)]


def test_french_decimal_quantities_are_read_exactly(demo):
    report = import_usage_file(
        csv_bytes(['CONV-2025-001;216300145;ads;03/2025;"1 234,5";DP;X-1']), "r.csv", commit=True
    )
    assert report.ok, report.errors
    record = UsageRecord.objects.get(reference="X-1")
    assert str(record.quantity) == "1234.500"
    assert record.units == Decimal("617.250")  # DP weighs 0,5


def test_xlsx_files_are_imported(demo):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(";"))
    sheet.append(["CONV-2025-001", "63019", "ads", "2025-06", 4, "CU", "XLSX-1"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    report = import_usage_file(buffer.getvalue(), "recours.xlsx", commit=True)
    assert report.ok, report.errors
    assert UsageRecord.objects.get(reference="XLSX-1").units == Decimal("0.800")  # CU weighs 0,2


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (
            b"a;b\n1;2\n",
            "recours.csv",
            "Colonnes manquantes : convention, beneficiaire, service, mois, quantite.",
        ),
        (b"whatever", "recours.pdf", "fichier .csv ou .xlsx attendu"),
        ("convention;beneficiaire\n".encode("utf-16"), "recours.csv", "UTF-8"),
    ],
)
def test_unreadable_files_are_refused_in_french(demo, content, name, message):
    with pytest.raises(ImportFileError, match=message):
        import_usage_file(content, name, commit=False)


def test_a_file_naming_another_territorys_convention_is_refused_as_unknown(demo):
    """The staff of another EPCI hosted by the same deployment cannot record usage on this
    territory's conventions: the reference reads as unknown (its existence is not revealed)."""
    from mutualisation.models import Organisation, Role
    from tests.factories import EpciFactory, MembershipFactory

    elsewhere = MembershipFactory(organisation=EpciFactory(), role=Role.FINANCE).user
    before = UsageRecord.objects.count()
    report = import_usage_file(csv_bytes(ads_rows(3)), "recours.csv", commit=True, user=elsewhere)
    assert not report.imported
    assert UsageRecord.objects.count() == before
    assert {e.message for e in report.errors} == {"Convention « CONV-2025-001 » inconnue."}
    here = MembershipFactory(organisation=Organisation.objects.epcis().first(), role=Role.FINANCE)
    report = import_usage_file(csv_bytes(ads_rows(3)), "recours.csv", commit=True, user=here.user)
    assert report.imported


def test_another_territorys_service_with_the_same_code_leaves_the_import_on_this_ones(demo):
    """Service codes are unique within a territory: two EPCIs hosted by one deployment both
    have their « ads »; a usage file names a convention, whose territory says which « ads »."""
    from tests.factories import EpciFactory, ServiceFactory

    elsewhere = EpciFactory()
    ServiceFactory(code="ads", provider=elsewhere, territory=elsewhere)
    report = import_usage_file(csv_bytes(ads_rows(3)), "recours.csv", commit=True)
    assert report.imported, report.errors
    records = UsageRecord.objects.filter(reference__in=["ADS-0000", "ADS-0001", "ADS-0002"])
    assert {r.service.territory_id for r in records} == {records[0].convention.territory_id}


def test_a_territory_cannot_have_two_services_with_the_same_code(demo):
    from django.db import IntegrityError, transaction

    from mutualisation.models import Service
    from tests.factories import ServiceFactory

    ads = Service.objects.get(code="ads")
    with pytest.raises(IntegrityError), transaction.atomic():
        ServiceFactory(code="ads", provider=ads.provider, territory=ads.territory)
