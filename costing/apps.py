from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CostingConfig(AppConfig):
    name = "costing"
    verbose_name = _("Coûts et remboursements")

    def seed_demo(self) -> str:
        """Called by ``manage.py seed_demo`` after the territory and the conventions."""
        from costing.demo import seed_demo_costing

        bases, usages = seed_demo_costing()
        return _("bases de coûts créées : %(bases)s ; recours créés : %(usages)s") % {
            "bases": bases,
            "usages": usages,
        }
