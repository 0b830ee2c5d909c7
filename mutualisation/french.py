"""French as the application writes it: the preposition « de » before a name (« d'Aubière »,
« du Cendre »), and the plural of a count (« 0 projet », « 1 projet », « 2 projets »).

The messages are written in French and have no catalog of their own. For a message it does not
find in a catalog, gettext chooses between the singular and the plural by the English rule
(singular for 1 only: « 0 projets »). ``FrenchPlurals`` is the French translation's fallback and
applies the French rule instead: singular below 2.
"""

from gettext import NullTranslations

from django.conf import settings
from django.utils.translation import trans_real

LANGUAGE_SETTINGS = {"LANGUAGES", "LANGUAGE_CODE", "LOCALE_PATHS"}
VOWELS = "aeiouyhâàäéèêëîïôöûüAEIOUYHÂÀÄÉÈÊËÎÏÔÖÛÜ"
# An aspirated h forbids the elision; none of these starts a commune of the demo, kept short.
ASPIRATED_H = ("Hautes", "Haute", "Haut", "Hameau", "Havre", "Herbiers")


def of(name: str) -> str:
    """« de » + a name, as French writes it: de Clermont-Ferrand, d'Aubière, du Cendre,
    des Martres-d'Artière, de la Roche-Blanche, de l'Isle."""
    name = str(name).strip()
    if not name:
        return ""
    for article, contracted in (("Le ", "du "), ("Les ", "des ")):
        if name.startswith(article):
            return contracted + name[len(article) :]
    if name.startswith(("La ", "L'")):
        return "de " + name[0].lower() + name[1:]
    if name[0] in VOWELS and not name.startswith(ASPIRATED_H):
        return "d'" + name
    return "de " + name


class FrenchPlurals(NullTranslations):
    """The messages themselves, with the French rule for the plural: 0 and 1 are singular."""

    def ngettext(self, msgid1, msgid2, n):
        return msgid1 if -2 < n < 2 else msgid2


def install_french_plurals(**kwargs) -> None:
    """Give the French translation (the application's own language) the French plural rule
    for its messages. Called when the applications are ready; the tests call it again after
    Django starts its translations anew on a change of the language settings (its test
    receiver of ``setting_changed``)."""
    if kwargs.get("setting", "LANGUAGE_CODE") not in LANGUAGE_SETTINGS:
        return
    if not settings.LANGUAGE_CODE.startswith("fr"):
        return
    french = trans_real.translation(settings.LANGUAGE_CODE)
    fallback = french
    while fallback._fallback is not None:
        if isinstance(fallback._fallback, FrenchPlurals):
            return
        fallback = fallback._fallback
    french.add_fallback(FrenchPlurals())
