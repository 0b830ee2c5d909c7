from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.utils.translation import gettext_lazy as _


def fire_delete_triggers_on_replace(sender, connection, **kwargs):
    """SQLite: a REPLACE conflict resolution deletes the conflicting row without firing its
    delete triggers unless recursive triggers are on. The triggers of migration 0006 refuse such
    a REPLACE whatever the connection says; this makes the 0003 no-delete triggers fire too."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA recursive_triggers = ON")


class CostingConfig(AppConfig):
    name = "costing"
    verbose_name = _("Coûts et remboursements")

    def ready(self):
        connection_created.connect(
            fire_delete_triggers_on_replace, dispatch_uid="costing.recursive_triggers"
        )
        from mutualisation.models import register_numbers_given

        register_numbers_given("statement_prefix", "costing.statements.last_number_given")

    def seed_demo(self) -> str:
        """Called by ``manage.py seed_demo`` after the territory and the conventions."""
        from costing.demo import seed_demo_costing

        bases, usages = seed_demo_costing()
        return _("bases de coûts créées : %(bases)s ; recours créés : %(usages)s") % {
            "bases": bases,
            "usages": usages,
        }
