"""The terms of a service commun state how the managing EPCI takes part in a keyed cost: the
form checks the value against the mode, and the convention document says it."""

import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from pypdf import PdfReader

from conventions.forms import TermsForm
from conventions.models import ManagingShare, Terms

pytestmark = pytest.mark.django_db

BASE = {
    "settlement_mode": "AC_IMPUTATION",
    "periodicity_months": "12",
    "instalment_count": "0",
    "unit_cost_method": "Coût du dernier CA réparti par population.",
    "notice_months": "6",
}


@pytest.mark.parametrize(
    ("mode", "value", "message"),
    [
        (ManagingShare.FIXED_PERCENT, "", "un pourcentage entre 0 et 100"),
        (ManagingShare.FIXED_PERCENT, "140", "un pourcentage entre 0 et 100"),
        (ManagingShare.WEIGHT, "", "pondération du gestionnaire"),
        (ManagingShare.NONE, "12", "laissez la part ou pondération vide"),
    ],
)
def test_the_managing_share_value_must_fit_its_mode(mode, value, message):
    form = TermsForm({**BASE, "managing_share_mode": mode, "managing_share_value": value})
    assert not form.is_valid()
    assert message in " ".join(form.errors["managing_share_value"])


def test_a_fixed_share_of_the_epci_is_accepted():
    form = TermsForm(
        {**BASE, "managing_share_mode": ManagingShare.FIXED_PERCENT, "managing_share_value": "25"}
    )
    assert form.is_valid(), form.errors


def test_the_convention_document_states_the_epcis_part(client, personas, service_commun):
    Terms.objects.filter(pk=service_commun.terms.pk).update(
        managing_share_mode=ManagingShare.FIXED_PERCENT, managing_share_value=Decimal("25")
    )
    client.force_login(personas.manager)
    response = client.get(reverse("conventions:pdf", args=[service_commun.convention.reference]))
    text = re.sub(
        r"\s+",
        " ",
        " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages),
    )
    assert "organisation gestionnaire, supporte une part fixe de 25 % du coût" in text
    assert "au prorata de leur population municipale du millésime 2023" in text


def convention_text(client, reference):
    response = client.get(reverse("conventions:pdf", args=[reference]))
    return re.sub(
        r"\s+",
        " ",
        " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages),
    )


def test_the_agents_article_of_a_service_commun_follows_l5211_4_2(client, personas, service_commun):
    """Before: a service commun's agents article used the mise-à-disposition wording (agents
    keep their employer, functional authority of the beneficiary)."""
    client.force_login(personas.manager)
    text = convention_text(client, service_commun.convention.reference)
    assert "sont transférés de plein droit à Métropole de test" in text
    assert (
        "autorité fonctionnelle du maire ou sous celle du président de l'établissement public"
        in text
    )
    assert "autorité fonctionnelle du bénéficiaire" not in text


def test_the_agents_article_of_a_mad_follows_l5211_4_1(client, personas, mad_descendante):
    client.force_login(personas.manager)
    text = convention_text(client, mad_descendante.convention.reference)
    assert "mis à disposition à titre individuel du bénéficiaire" in text
    assert "transférés de plein droit" not in text
