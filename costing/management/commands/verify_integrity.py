from django.core.management.base import BaseCommand, CommandError
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

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
                        "Exercice %(year)s : %(issued)s dont %(cancelled)s ; "
                        "total %(total)s, solde %(balance)s"
                    )
                    % {
                        "year": year.year,
                        "issued": ngettext(
                            "%(count)s état émis", "%(count)s états émis", year.issued
                        )
                        % {"count": year.issued},
                        "cancelled": ngettext(
                            "%(count)s annulé", "%(count)s annulés", year.cancelled
                        )
                        % {"count": year.cancelled},
                        "total": euros(year.total),
                        "balance": euros(year.balance),
                    }
                )
            self.stdout.write(
                _("Vérifiés : %(statements)s, %(documents)s, %(attachments)s, %(triggers)s")
                % {
                    "statements": ngettext(
                        "%(count)s état émis", "%(count)s états émis", report.statements
                    )
                    % {"count": report.statements},
                    "documents": ngettext(
                        "%(count)s acte signé", "%(count)s actes signés", report.signed_documents
                    )
                    % {"count": report.signed_documents},
                    "attachments": ngettext(
                        "%(count)s pièce jointe", "%(count)s pièces jointes", report.attachments
                    )
                    % {"count": report.attachments},
                    "triggers": ngettext(
                        "%(count)s déclencheur de protection",
                        "%(count)s déclencheurs de protection",
                        report.triggers,
                    )
                    % {"count": report.triggers},
                }
            )
            self.stdout.write(_("Empreinte de l'ensemble : %s") % report.fingerprint)
            if report.anomalies:
                for anomaly in report.anomalies:
                    self.stderr.write(anomaly)
                raise CommandError(
                    ngettext(
                        "%(count)s anomalie : la base ou les fichiers ne sont pas intègres.",
                        "%(count)s anomalies : la base ou les fichiers ne sont pas intègres.",
                        len(report.anomalies),
                    )
                    % {"count": len(report.anomalies)}
                )
            self.stdout.write(self.style.SUCCESS(_("Aucune anomalie.")))
