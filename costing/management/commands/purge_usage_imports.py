from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from costing.resources import purge_usage_imports


class Command(BaseCommand):
    help = _(
        "Supprime les fichiers de recours déposés mais jamais importés (refusés ou non confirmés) "
        "au-delà de la durée de conservation ; les fichiers importés sont conservés."
    )

    def handle(self, *args, **options):
        deleted = purge_usage_imports()
        self.stdout.write(
            ngettext("%(count)s fichier supprimé.", "%(count)s fichiers supprimés.", deleted)
            % {"count": deleted}
        )
