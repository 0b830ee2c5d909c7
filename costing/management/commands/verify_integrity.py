from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _

from costing.integrity import euros, verify_integrity


class Command(BaseCommand):
    help = _(
        "Vérifie les pièces figées (états émis, actes signés, pièces jointes) et les déclencheurs "
        "qui les protègent, et affiche les totaux par exercice : à lancer après une restauration "
        "et à comparer avec la base d'origine (docs/exploitation.md). Échoue sur toute anomalie."
    )

    def handle(self, *args, **options):
        with translation.override("fr"):
            report = verify_integrity()
            for year in report.years:
                self.stdout.write(
                    _(
                        "Exercice %(year)s : %(issued)s état(s) émis dont %(cancelled)s annulé(s) ; "
                        "total %(total)s, solde %(balance)s"
                    )
                    % {
                        "year": year.year,
                        "issued": year.issued,
                        "cancelled": year.cancelled,
                        "total": euros(year.total),
                        "balance": euros(year.balance),
                    }
                )
            self.stdout.write(
                _(
                    "Vérifiés : %(statements)s état(s) émis, %(documents)s acte(s) signé(s), "
                    "%(attachments)s pièce(s) jointe(s), %(triggers)s déclencheur(s) de protection"
                )
                % {
                    "statements": report.statements,
                    "documents": report.signed_documents,
                    "attachments": report.attachments,
                    "triggers": report.triggers,
                }
            )
            self.stdout.write(_("Empreinte de l'ensemble : %s") % report.fingerprint)
            if report.anomalies:
                for anomaly in report.anomalies:
                    self.stderr.write(anomaly)
                raise CommandError(
                    _("%(count)s anomalie(s) : la base ou les fichiers ne sont pas intègres.")
                    % {"count": len(report.anomalies)}
                )
            self.stdout.write(self.style.SUCCESS(_("Aucune anomalie.")))
