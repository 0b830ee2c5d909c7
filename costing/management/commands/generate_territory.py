import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from costing import territory
from mutualisation.models import Organisation


class Command(BaseCommand):
    help = _(
        "Génère une France de synthèse pour les mesures de performance : à l'échelle 1, "
        "1 254 EPCI, 34 900 communes, leurs conventions en vigueur, coûts et douze mois de "
        "recours. Reproductible (même graine, mêmes données). Jamais en production."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale", type=float, default=0.1, help=_("Fraction de la France (défaut 0,1).")
        )
        parser.add_argument("--seed", type=int, default=1, help=_("Graine (défaut 1)."))
        parser.add_argument(
            "--year", type=int, default=2025, help=_("Exercice des recours (défaut 2025).")
        )
        parser.add_argument(
            "--password",
            default=None,
            help=_("Mot de passe des comptes générés (défaut : inutilisable)."),
        )

    def handle(self, *args, scale, seed, year, password, **options):
        if not 0 < scale <= 1:
            raise CommandError(_("L'échelle est comprise entre 0 (exclu) et 1."))
        if Organisation.objects.filter(
            siren=territory.siren_from(territory.EPCI_SIREN_STEM)
        ).exists():
            raise CommandError(
                _("Cette base contient déjà un territoire de synthèse : partez d'une base vide.")
            )
        started = time.perf_counter()
        rows = territory.generate(
            scale=scale,
            seed=seed,
            year=year,
            password=password,
            progress=lambda message: self.stdout.write(
                f"  {message} ({time.perf_counter() - started:.0f} s)"
            ),
        )
        for label, count in sorted(rows.items()):
            self.stdout.write(f"{label:40} {count:>10}")
        self.stdout.write(
            _("Généré en %(seconds).0f s.") % {"seconds": time.perf_counter() - started}
        )
