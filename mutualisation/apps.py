from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MutualisationConfig(AppConfig):
    name = "mutualisation"
    verbose_name = _("Territoire et référentiels")

    def ready(self):
        from django.db.backends.signals import connection_created

        from mutualisation.collation import register_sqlite_collation
        from mutualisation.french import install_french_plurals

        install_french_plurals()
        # SQLite sorts names in French only once told how (PostgreSQL has ICU's collation).
        connection_created.connect(register_sqlite_collation)
