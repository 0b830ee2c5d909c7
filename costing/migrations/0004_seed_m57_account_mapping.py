"""Seed the account mapping with the M57 accounts of ../shared/domain.md §4.

All sub-account numbers there are unconfirmed [U]: they are reference data, editable in the
admin, under the nomenclature version "M57-2024".
"""

from django.db import migrations

NOMENCLATURE = "M57-2024"
ROWS = [
    ("SERVICE", "EPCI_PROVIDES", "PROVIDER", "70875", "Remboursements de frais par les communes membres du GFP"),
    ("SERVICE", "EPCI_PROVIDES", "BENEFICIARY", "62876", "Remboursements de frais au GFP de rattachement"),
    ("SERVICE", "COMMUNE_PROVIDES", "PROVIDER", "70876", "Remboursements de frais par le GFP de rattachement"),
    ("SERVICE", "COMMUNE_PROVIDES", "BENEFICIARY", "62875", "Remboursements de frais aux communes membres du GFP"),
    ("STAFF", "EPCI_PROVIDES", "PROVIDER", "70845", "Mise à disposition de personnel facturée aux communes membres du GFP"),
    ("STAFF", "EPCI_PROVIDES", "BENEFICIARY", "6216", "Personnel affecté par le GFP de rattachement"),
    ("STAFF", "COMMUNE_PROVIDES", "PROVIDER", "70846", "Mise à disposition de personnel facturée au GFP de rattachement"),
    ("STAFF", "COMMUNE_PROVIDES", "BENEFICIARY", "6217", "Personnel affecté par la commune membre du GFP"),
    ("AC", "EPCI_PROVIDES", "PROVIDER", "739211", "Attribution de compensation (reversement)"),
    ("AC", "EPCI_PROVIDES", "BENEFICIARY", "73211", "Attribution de compensation"),
]


def seed(apps, schema_editor):
    AccountMapping = apps.get_model("costing", "AccountMapping")
    for flow, direction, side, account, label in ROWS:
        AccountMapping.objects.get_or_create(
            nomenclature=NOMENCLATURE,
            flow=flow,
            direction=direction,
            side=side,
            defaults={"account": account, "label": label, "is_current": True},
        )


class Migration(migrations.Migration):
    dependencies = [("costing", "0003_issued_statements_are_immutable")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
