from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from mutualisation.services import purge_document_accesses


class Command(BaseCommand):
    help = _("Supprime le journal des téléchargements au-delà de la durée de conservation.")

    def handle(self, *args, **options):
        deleted = purge_document_accesses()
        self.stdout.write(
            ngettext("%(count)s entrée supprimée.", "%(count)s entrées supprimées.", deleted)
            % {"count": deleted}
        )
