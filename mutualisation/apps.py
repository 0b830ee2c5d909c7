from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MutualisationConfig(AppConfig):
    name = "mutualisation"
    verbose_name = _("Territoire et référentiels")

    def ready(self):
        from mutualisation.french import install_french_plurals

        install_french_plurals()
