"""Cost base sources (issue 11): the latest accounts of the year (CA, or CFU from the 2026
exercise on) and the M57 account of each cost line. First the pure rule, without a database."""

from decimal import Decimal as D
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from costing import engine, services
from costing.engine import CostLineInput, cost_base_findings
from costing.forms import CostBaseForm, CostLineFormSet
from costing.models import (
    CostBase,
    CostCategory,
    CostLine,
    ReferenceBasis,
    SourceDocument,
    UnitCost,
)
from tests.conftest import log_in, run_seed_demo
from tests.factories import ServiceFactory


def line(account="6411", eligible=True, justification="", category=engine.PERSONNEL):
    return CostLineInput(
        "Ligne", category, D("1000.00"), D("0"), eligible, justification, account=account
    )


def codes(findings):
    return [f.code for f in findings]


# --- the pure rule ------------------------------------------------------------------------------


def test_cost_line_input_keeps_its_positional_fields_and_defaults_the_account():
    legacy = CostLineInput("Agents", engine.PERSONNEL, D("10"), D("0"), True)
    assert (legacy.justification, legacy.account) == ("", "")


def test_accounts_of_n_minus_2_or_later_are_the_latest_available():
    for source, source_year in (("CA", 2024), ("CA", 2025), ("CFU", 2026)):
        assert cost_base_findings(2026 if source == "CA" else 2027, source, source_year, []) == []
    assert cost_base_findings(2028, "CFU", 2026, []) == []


def test_a_source_older_than_n_minus_2_is_a_finding_naming_the_document_and_exercise():
    [finding] = cost_base_findings(2026, "CA", 2023, [line()], convention="CONV-2026-001")
    assert finding.code == "OLD_SOURCE"
    assert finding.convention == "CONV-2026-001"
    assert "compte administratif 2023" in finding.message
    assert "2026" in finding.message
    [finding] = cost_base_findings(2030, "CFU", 2027, [])
    assert finding.code == "OLD_SOURCE"
    assert "compte financier unique 2027" in finding.message


def test_a_compte_administratif_of_2026_or_later_is_a_finding():
    [finding] = cost_base_findings(2027, "CA", 2026, [])
    assert finding.code == "CA_AFTER_CFU"
    assert "compte financier unique" in finding.message


def test_an_eligible_line_outside_the_operating_expenses_needs_a_justification():
    found = cost_base_findings(2026, "CA", 2025, [line("6411"), line("611"), line("6811")])
    assert found == []
    [finding] = cost_base_findings(2026, "CA", 2025, [line("7087")])
    assert finding.code == "ACCOUNT_OUTSIDE_OPERATING"
    assert "7087" in finding.message
    assert "justification" in finding.message
    assert cost_base_findings(2026, "CA", 2025, [line("7087", justification="Parce que.")]) == []
    assert cost_base_findings(2026, "CA", 2025, [line("7087", eligible=False)]) == []


def test_investment_and_financial_charges_are_never_eligible():
    found = cost_base_findings(2026, "CA", 2025, [line("2183"), line("66111"), line("2", False)])
    assert codes(found) == ["ACCOUNT_NOT_ELIGIBLE", "ACCOUNT_NOT_ELIGIBLE"]
    assert "investissement" in found[0].message
    assert "charge financière" in found[1].message


def test_an_eligible_line_without_its_account_is_a_finding():
    assert codes(cost_base_findings(2026, "CA", 2025, [line("")])) == ["NO_ACCOUNT"]
    assert cost_base_findings(2026, "CA", 2025, [line("", eligible=False)]) == []


# --- model, database and forms ------------------------------------------------------------------


def base_data(service, **changes):
    data = {
        "service": service.pk,
        "year": "2027",
        "source": "CFU",
        "source_year": "2026",
        "reference_units": "100",
        "reference_basis": "FORECAST",
        "notes": "",
    }
    return {**data, **changes}


def lines_data(*rows):
    data = {"lines-TOTAL_FORMS": str(len(rows)), "lines-INITIAL_FORMS": "0"}
    for index, row in enumerate(rows):
        defaults = {
            "label": "Agents",
            "category": "PERSONNEL",
            "account": "6411",
            "accounts_amount": "1 000,00",
            "budget_adjustment": "0",
            "eligible": "on",
            "justification": "",
        }
        for key, value in {**defaults, **row}.items():
            if value is not None:
                data[f"lines-{index}-{key}"] = value
    return data


@pytest.mark.django_db
def test_a_compte_administratif_of_2026_is_refused_by_the_form_the_model_and_the_database(
    territory,
):
    service = ServiceFactory(provider=territory.epci)
    form = CostBaseForm(base_data(service, source="CA", source_year="2026"))
    assert not form.is_valid()
    assert "compte financier unique" in " ".join(form.errors["source"])
    base = CostBase(
        service=service,
        year=2027,
        source=SourceDocument.CA,
        source_year=2026,
        reference_units=D("1"),
        reference_basis=ReferenceBasis.FORECAST,
    )
    with pytest.raises(ValidationError) as refused:
        base.clean()
    assert "compte financier unique" in str(refused.value.message_dict["source"])
    with pytest.raises(IntegrityError), transaction.atomic():
        base.save()
    assert CostBaseForm(base_data(service)).is_valid()
    assert CostBaseForm(base_data(service, source="CA", source_year="2025")).is_valid()


@pytest.mark.django_db
def test_cost_line_accounts_are_checked_by_the_model_and_the_database(territory):
    base = CostBase.objects.create(
        service=ServiceFactory(provider=territory.epci),
        year=2026,
        source=SourceDocument.CA,
        source_year=2025,
        reference_units=D("10"),
        reference_basis=ReferenceBasis.FORECAST,
    )

    def cost_line(**fields):
        values = {
            "cost_base": base,
            "label": "Ligne",
            "category": CostCategory.PERSONNEL,
            "account": "6411",
            "accounts_amount": D("100"),
        }
        return CostLine(**{**values, **fields})

    cost_line().full_clean()
    cost_line(account="2183", eligible=False).full_clean()
    for account, field, words in (
        ("2183", "account", "investissement"),
        ("6611", "account", "charge financière"),
        ("64-11", "account", "chiffres"),
        ("6", "account", "chiffres"),
        ("7087", "justification", "hors des charges de fonctionnement"),
    ):
        with pytest.raises(ValidationError) as refused:
            cost_line(account=account).full_clean()
        assert words in " ".join(refused.value.message_dict[field]), account
    cost_line(account="7087", justification="Atténuation de charge du service.").full_clean()
    for account in ("2183", "661"):
        with pytest.raises(IntegrityError), transaction.atomic():
            cost_line(account=account).save()


@pytest.mark.django_db
def test_the_cost_line_formset_requires_a_valid_account(territory):
    base = CostBase(service=ServiceFactory(provider=territory.epci), year=2027)
    for row, words in (
        ({"account": ""}, "Indiquez le compte M57"),
        ({"account": "64a1"}, "de 2 à 10 chiffres"),
        ({"account": "2183"}, "investissement"),
        ({"account": "6615"}, "charge financière"),
        ({"account": "7087"}, "hors des charges de fonctionnement"),
    ):
        formset = CostLineFormSet(lines_data(row), instance=base, prefix="lines")
        assert not formset.is_valid(), row
        assert words in unescape(str(formset.errors)), row
    ok = lines_data(
        {"account": "2183", "eligible": None}, {"account": "7087", "justification": "x"}
    )
    assert CostLineFormSet(ok, instance=base, prefix="lines").is_valid()


@pytest.mark.django_db
def test_cost_base_findings_for_a_stored_base(territory):
    base = CostBase.objects.create(
        service=ServiceFactory(provider=territory.epci),
        year=2026,
        source=SourceDocument.CA,
        source_year=2023,
        reference_units=D("10"),
        reference_basis=ReferenceBasis.FORECAST,
    )
    CostLine.objects.create(
        cost_base=base,
        label="Refacturation",
        category=CostCategory.OTHER_LINKED,
        account="7087",
        accounts_amount=D("100"),
        justification="Recette, sans lien avec le coût du service.",
        eligible=False,
    )
    CostLine.objects.create(
        cost_base=base,
        label="Personnel",
        category=CostCategory.PERSONNEL,
        account="778",
        accounts_amount=D("100"),
    )
    found = services.cost_base_findings_for(base, "CONV-2026-004")
    assert codes(found) == ["OLD_SOURCE", "ACCOUNT_OUTSIDE_OPERATING"]
    assert {f.convention for f in found} == {"CONV-2026-004"}
    assert "« Personnel »" in found[1].message


# --- the demo and the screens -------------------------------------------------------------------


@pytest.fixture
def demo(client):
    run_seed_demo()
    return client


@pytest.mark.django_db
def test_every_demo_cost_line_has_a_plausible_m57_account(demo):
    lines = CostLine.objects.select_related("cost_base")
    assert lines.exists()
    assert not lines.filter(account="").exists()
    for cost_line in lines:
        assert cost_line.account.isdigit(), cost_line.label
        assert cost_line.account.startswith("6"), cost_line.label
    reception = lines.filter(label="Réception de fin d'année").first()
    assert (reception.account, reception.eligible) == ("6257", False)
    assert set(lines.filter(category=CostCategory.OVERHEAD).values_list("account", flat=True)) == {
        "6288"
    }
    for base in CostBase.objects.prefetch_related("lines"):
        assert services.cost_base_findings_for(base, "demo") == [], base
    voirie = UnitCost.objects.current().get(service__code="voirie-entretien", year=2025)
    assert voirie.amount == D("242.31")
    assert voirie.eligible_cost == D("448278.27")


@pytest.mark.django_db
def test_the_cost_base_pages_show_the_account_and_explain_a_refused_line(demo):
    assert log_in(demo, "finances", "demo-mutualis-2026")
    base = CostBase.objects.get(service__code="voirie-entretien", year=2025)
    detail = unescape(demo.get(reverse("costing:cost-base", args=[base.pk])).content.decode())
    assert "Compte" in detail
    assert "6411" in detail
    edit = unescape(demo.get(reverse("costing:cost-base-edit", args=[base.pk])).content.decode())
    assert 'name="lines-0-account"' in edit
    data = {
        **base_data(base.service, year="2031", source="CA", source_year="2027"),
        **lines_data({"account": "2183"}, {"account": ""}, {"account": "7087"}),
    }
    response = demo.post(reverse("costing:cost-base-create"), data)
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert "Le compte financier unique remplace le compte administratif" in html
    assert "investissement" in html
    assert "Indiquez le compte M57" in html
    assert "hors des charges de fonctionnement" in html
