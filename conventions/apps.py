from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConventionsConfig(AppConfig):
    name = "conventions"
    verbose_name = _("Conventions")

    def ready(self):
        from mutualisation.models import register_numbers_given

        register_numbers_given(
            "reference_prefix", "conventions.services.records.last_reference_given"
        )

    def seed_demo(self) -> str:
        """Called by ``manage.py seed_demo`` after the territory is loaded."""
        from conventions.demo import seed_demo_conventions, seed_demo_scheme

        return _(
            "conventions de démonstration créées : %(count)s ; schéma de mutualisation : "
            "%(schemes)s"
        ) % {"count": seed_demo_conventions(), "schemes": seed_demo_scheme()}
