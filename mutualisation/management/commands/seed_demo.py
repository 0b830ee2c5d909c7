from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from mutualisation.services import seed_demo_territory

# Published in the README: demo accounts exist only with DEBUG on (settings.DEMO_USERS_ENABLED).
DEMO_PASSWORD = "demo-mutualis-2026"


class Command(BaseCommand):
    help = _("Charge le territoire de démonstration (Clermont Auvergne Métropole) ; idempotent.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--no-users", action="store_true", help=_("Ne pas créer les comptes de démonstration.")
        )

    def handle(self, *args, no_users=False, **options):
        with_users = not no_users
        if with_users and not settings.DEMO_USERS_ENABLED:
            raise CommandError(
                _(
                    "Les comptes de démonstration ne sont créés qu'en développement "
                    "(DJANGO_DEBUG=true). Relancez avec --no-users pour ne charger "
                    "que le territoire."
                )
            )
        report = seed_demo_territory(with_users=with_users, password=DEMO_PASSWORD)
        created = ", ".join(f"{label} : {count}" for label, count in report.created.items())
        self.stdout.write(
            self.style.SUCCESS(_("Territoire de démonstration chargé (créés — %s).") % created)
        )
        # Later apps (conventions, costing) add their demo data through AppConfig.seed_demo,
        # so this command needs no import from them.
        for config in apps.get_app_configs():
            seeder = getattr(config, "seed_demo", None)
            if seeder is not None:
                self.stdout.write(f"{config.verbose_name} : {seeder()}")
        if report.demo_users:
            self.stdout.write(
                _("Comptes de démonstration (mot de passe commun : %s) :") % DEMO_PASSWORD
            )
            for username in report.demo_users:
                self.stdout.write(f"  - {username}")
