"""French typography of the legal documents: elision, contraction, ordinals, amounts in words."""

from datetime import date
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.test import override_settings
from django.utils import translation
from django.utils.translation import ngettext

from mutualisation.french import of
from mutualisation.templatetags.french import authorised, euros_in_words, long_date


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Aubière", "d'Aubière"),
        ("Orcines", "d'Orcines"),
        ("Clermont-Ferrand", "de Clermont-Ferrand"),
        ("Le Cendre", "du Cendre"),
        ("Les Martres-d'Artière", "des Martres-d'Artière"),
        ("La Roche-Blanche", "de la Roche-Blanche"),
        ("Clermont Auvergne Métropole", "de Clermont Auvergne Métropole"),
    ],
)
def test_de_is_elided_before_a_vowel_and_contracted_with_le_and_les(name, expected):
    assert of(name) == expected


def test_the_first_day_of_a_month_is_written_as_an_ordinal():
    with translation.override("fr"):
        assert long_date(date(2026, 1, 1)) == "1er janvier 2026"
        assert long_date(date(2026, 3, 15)) == "15 mars 2026"


def test_habilite_agrees_with_the_representative_or_shows_both_forms():
    assert authorised("F") == "dûment habilitée"
    assert authorised("M") == "dûment habilité"
    assert authorised("") == "dûment habilité(e)"


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        (
            "719377.33",
            "sept cent dix-neuf mille trois cent soixante-dix-sept euros et trente-trois centimes",
        ),
        ("1.00", "un euro"),
        ("0.01", "un centime"),
        ("0.00", "zéro euro"),
        ("80.00", "quatre-vingts euros"),
        ("2000000.00", "deux millions d'euros"),
        ("1000000.10", "un million d'euros et dix centimes"),
        ("-12.50", "moins douze euros et cinquante centimes"),
    ],
)
def test_an_amount_is_written_in_words_as_an_etat_is_arrete(amount, words):
    assert euros_in_words(Decimal(amount)) == words


def test_an_amount_in_words_refuses_a_float():
    with pytest.raises(TypeError):
        euros_in_words(12.5)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, "0 projet calculé"), (1, "1 projet calculé"), (2, "2 projets calculés")],
)
def test_zero_and_one_take_the_singular_as_in_french(count, expected):
    with translation.override("fr"):
        message = ngettext("%(n)s projet calculé", "%(n)s projets calculés", count)
        assert message % {"n": count} == expected
        assert (
            Template(
                "{% load i18n %}{% blocktranslate count counter=n %}{{ counter }} projet calculé"
                "{% plural %}{{ counter }} projets calculés{% endblocktranslate %}"
            ).render(Context({"n": count}))
            == expected
        )


def test_zero_stays_singular_after_a_test_changes_the_language_settings():
    with override_settings(LANGUAGE_CODE="fr"):
        assert ngettext("%(n)s projet", "%(n)s projets", 0) == "%(n)s projet"
    assert ngettext("%(n)s projet", "%(n)s projets", 0) == "%(n)s projet"
