import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from costing import engine, exports, services


class Command(BaseCommand):
    help = _(
        "Calcule les remboursements d'une année et les écrit (JSON ou CSV) selon le format "
        "documenté dans docs/costing.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, required=True, help=_("Exercice, ex. 2025."))
        parser.add_argument("--format", choices=["json", "csv"], default="json")

    def handle(self, *args, year, format, **options):
        if not 2000 <= year <= 2100:
            raise CommandError(_("Année invalide : %(year)s.") % {"year": year})
        try:
            reimbursements = services.compute_reimbursements(year)
        except engine.EngineError as error:
            raise CommandError(str(error)) from error
        if format == "json":
            self.stdout.write(
                json.dumps(exports.year_as_dict(reimbursements), ensure_ascii=False, indent=2)
            )
        else:
            self.stdout.write(exports.year_as_csv(reimbursements), ending="")
