"""Before each territory got its own numbering, several EPCIs could leave their prefixes blank:
they then shared the CONV and EA counters (and the year's lock). Before the constraints of 0010
allow one EPCI only to number with the defaults, this gives the others a prefix of their own.

Deterministic: among the EPCIs numbering with a default (blank, or the default written out), the
oldest (smallest id) keeps it; each other one gets the default followed by its id (CONV12 and
EA12 for the EPCI of id 12), with a letter after it if another EPCI already has that prefix.
Numbers already given stay as they are; the territory's next ones start at 1 in its new series
(EA12-2026-0001). Irreversible in meaning, so going back leaves the prefixes as they are.
"""

from string import ascii_uppercase

from django.db import migrations

# field, default prefix, max_length (mutualisation.models.Organisation)
NUMBERINGS = [("reference_prefix", "CONV", 10), ("statement_prefix", "EA", 8)]


def derived_prefix(default, pk, taken, max_length):
    base = f"{default}{pk}"
    for candidate in [base, *(base + letter for letter in ascii_uppercase)]:
        if len(candidate) <= max_length and candidate not in taken:
            return candidate
    raise RuntimeError(
        f"Aucun préfixe libre pour l'EPCI n° {pk} ({default}…) : donnez-lui-en un, puis migrez."
    )


def give_own_prefixes(apps, schema_editor):
    Organisation = apps.get_model("mutualisation", "Organisation")
    epcis = list(Organisation.objects.filter(kind="EPCI").order_by("pk"))
    for field, default, max_length in NUMBERINGS:
        taken = {getattr(epci, field) for epci in epcis if getattr(epci, field)}
        sharing = [epci for epci in epcis if (getattr(epci, field) or default) == default]
        for epci in sharing[1:]:
            prefix = derived_prefix(default, epci.pk, taken, max_length)
            taken.add(prefix)
            setattr(epci, field, prefix)
            epci.save(update_fields=[field])


class Migration(migrations.Migration):
    dependencies = [
        ("mutualisation", "0008_service_code_per_territory"),
    ]

    operations = [
        migrations.RunPython(give_own_prefixes, migrations.RunPython.noop),
    ]
