"""A list with nothing chosen yet says so in French (« — Choisir — »), never « --------- »:
model forms, formsets, plain forms and the django-filter filters alike."""

import pytest
from django.urls import reverse

from conventions.filters import ConventionFilter
from conventions.forms import ConventionForm, NewPartyFormSet, TermsForm
from costing.forms import CostBaseForm
from mutualisation.forms import EMPTY_CHOICE

pytestmark = pytest.mark.django_db

DASHES = "---------"


def empty_labels(form) -> dict[str, str]:
    """The label of the empty choice of each list of the form that has one."""
    return {
        name: str(choices[0][1])
        for name, field in form.fields.items()
        if (choices := list(getattr(field, "choices", []))) and choices[0][0] == ""
    }


def test_the_empty_choice_of_every_list_reads_choisir():
    forms = [
        ConventionForm(),
        TermsForm(),
        CostBaseForm(),
        ConventionFilter(user=None).form,
        *NewPartyFormSet().forms,
    ]
    for form in forms:
        labels = empty_labels(form)
        assert labels, type(form).__name__
        assert set(labels.values()) == {str(EMPTY_CHOICE)}, (type(form).__name__, labels)


def test_the_convention_pages_never_show_dashes(client, personas):
    client.force_login(personas.manager)
    for url in (reverse("conventions:list"), reverse("conventions:create")):
        page = client.get(url).content.decode()
        assert DASHES not in page, url
        assert "— Choisir —" in page, url
