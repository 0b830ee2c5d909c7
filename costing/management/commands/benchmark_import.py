import random
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils.translation import gettext as _

from conventions.models import Convention, Party, PartyRole, Status
from costing.resources import ImportFileError, estimate_rows, import_usage_file


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = _(
        "Mesure la vérification puis l'import d'un fichier de recours de N lignes synthétiques "
        "(conventions en vigueur de la base) dans une transaction annulée : rien n'est "
        "enregistré. Un banc de mesure, pas un test."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=20_000, help=_("Nombre de lignes."))
        parser.add_argument("--year", type=int, default=2026)

    def handle(self, *args, rows, year, **options):
        content = self.synthetic_csv(rows, year)
        started = time.perf_counter()
        estimated = estimate_rows(content, "banc.csv")
        self.stdout.write(
            f"Fichier : {rows} lignes, {len(content) / 1024:.0f} Kio ; comptage des lignes "
            f"{(time.perf_counter() - started) * 1000:.1f} ms ({estimated})"
        )
        for commit in (False, True):
            label = _("import") if commit else _("vérification")
            try:
                with transaction.atomic(), CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    try:
                        report = import_usage_file(content, "banc.csv", commit=commit)
                    except ImportFileError as error:
                        self.stdout.write(
                            f"{label} : refusé en {time.perf_counter() - started:.2f} s : {error}"
                        )
                        raise Rollback from None
                    elapsed = time.perf_counter() - started
                    self.stdout.write(
                        f"{label} : {elapsed:.2f} s ({elapsed / rows * 1e6:.0f} µs par ligne), "
                        f"{len(queries)} requêtes, {len(report.errors)} erreur(s), "
                        f"importé : {report.imported}"
                    )
                    raise Rollback
            except Rollback:
                pass

    def synthetic_csv(self, rows: int, year: int) -> bytes:
        """Rows over the conventions in force of the database, their beneficiaries and
        services, with distinct references (no duplicate rows)."""
        pairs = []
        for convention in Convention.objects.filter(status=Status.IN_FORCE):
            if convention.start_date.year > year:
                continue
            services = [line.service.code for line in convention.services.select_related("service")]
            parties = Party.objects.filter(
                convention=convention, role__in=(PartyRole.BENEFICIARY, PartyRole.MEMBER)
            ).select_related("organisation")
            for party in parties:
                for service in services:
                    first = convention.start_date.month if convention.start_date.year == year else 1
                    pairs.append((convention.reference, party.organisation.siren, service, first))
        if not pairs:
            raise CommandError(_("Aucune convention en vigueur : chargez la démonstration."))
        generator = random.Random(2026)
        lines = ["convention;beneficiaire;service;mois;quantite;reference"]
        for number in range(rows):
            reference, siren, service, first = generator.choice(pairs)
            month = generator.randint(first, 12)
            lines.append(
                f"{reference};{siren};{service};{year}-{month:02d};{generator.randint(1, 40)};"
                f"BANC-{number:06d}"
            )
        return ("\n".join(lines) + "\n").encode()
