import time

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from costing import statements
from costing.management.commands.benchmark_scale import peak_memory_kib
from costing.models import Statement


class Command(BaseCommand):
    help = _(
        "Mesure le rendu PDF de N états annuels (sans rien enregistrer : tout se passe dans une "
        "transaction annulée) : durée totale, par état, mémoire maximale. Un banc de mesure, "
        "pas un test."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, required=True)
        parser.add_argument("--count", type=int, default=21, help=_("Nombre d'états à rendre."))

    def handle(self, *args, year, count, **options):
        # Preparing the drafts writes them: everything happens in a transaction rolled back.
        with transaction.atomic():
            try:
                self.measure(year, count)
            finally:
                transaction.set_rollback(True)

    def measure(self, year, count):
        drafts = list(Statement.objects.filter(year=year)) or statements.statements_prepare(year)
        if not drafts:
            raise CommandError(
                _("Aucun état pour %(year)s : chargez la démonstration.") % {"year": year}
            )
        started = time.perf_counter()
        sizes = []
        for index in range(count):
            sizes.append(len(statements.render_statement_pdf(drafts[index % len(drafts)])))
        elapsed = time.perf_counter() - started
        summary = statements.render_summary_pdf(year, drafts)
        peak_mib = peak_memory_kib() / 1024
        self.stdout.write(
            f"{count} PDF en {elapsed:.2f} s ({elapsed / count * 1000:.0f} ms par état, "
            f"{sum(sizes) / count / 1024:.0f} Kio en moyenne) ; récapitulatif {len(summary) / 1024:.0f} Kio ; "
            f"mémoire maximale du processus {peak_mib:.0f} Mio"
        )
