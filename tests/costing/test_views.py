"""Costing screens and the command: totals that match to the cent, permissions, the grid."""

import io
import json
from decimal import Decimal
from html import unescape

import pytest
from django.core.management import call_command
from django.urls import reverse

from costing.models import CostBase, UnitCost, UsageRecord, UsageSource
from mutualisation.models import Membership, Organisation, Role
from tests.conftest import log_in, run_seed_demo
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "demo-mutualis-2026"


@pytest.fixture
def demo(client):
    run_seed_demo()
    return client


def login(client, username):
    assert log_in(client, username, PASSWORD)


def test_command_json_totals_match_the_finance_page_to_the_cent(demo):
    out = io.StringIO()
    call_command("compute_reimbursements", "--year", "2025", "--format", "json", stdout=out)
    exported = json.loads(out.getvalue())
    login(demo, "finances")
    page = demo.get(reverse("costing:reimbursements", args=[2025]))
    assert exported["schema"] == "mutualis.reimbursements/2"
    assert Decimal(exported["totals"]["amount"]) == page.context["total"]
    assert [Decimal(line["amount"]) for line in exported["lines"]] == [
        line.amount for line in page.context["lines"]
    ]
    assert len(exported["lines"]) == exported["totals"]["lines"] == 9
    assert sum(Decimal(p["net"]) for p in exported["positions"]) == 0
    html = page.content.decode()
    total = page.context["total"]
    assert f"{total:,.2f}".replace(",", "\xa0").replace(".", ",") + "\xa0€" in html


def test_command_csv_has_one_row_per_line_and_the_total(demo):
    out = io.StringIO()
    call_command("compute_reimbursements", "--year", "2025", "--format", "csv", stdout=out)
    rows = out.getvalue().splitlines()
    assert rows[0].startswith("convention;payer_siren;payer_name")
    assert len(rows) == 1 + 9 + 1
    assert rows[-1].startswith("TOTAL;")
    assert sum(Decimal(r.split(";")[-1]) for r in rows[1:-1]) == Decimal(rows[-1].split(";")[-1])


def test_demo_voirie_2025_is_the_worked_example(demo):
    unit_cost = UnitCost.objects.get(service__code="voirie-entretien", year=2025)
    assert unit_cost.amount == Decimal("242.31")
    assert unit_cost.eligible_cost == Decimal("448278.27")
    assert unit_cost.trace["reference_units"] == "1850"


def test_commune_reader_sees_only_its_own_lines_and_position(demo):
    login(demo, "lecteur.aubiere")
    page = demo.get(reverse("costing:reimbursements", args=[2026]))
    aubiere = Organisation.objects.get(insee_code="63014")
    assert page.status_code == 200
    assert page.context["lines"]
    assert all(
        aubiere.siren in (line.payer.siren, line.payee.siren) for line in page.context["lines"]
    )
    assert [p.party.siren for p in page.context["positions"]] == [aubiere.siren]
    assert page.context["findings"] == []  # the compliance findings name other communes
    html = page.content.decode()
    assert "Beaumont" not in html
    assert "Clermont-Ferrand" not in html


def test_outsider_cannot_see_reimbursements(demo):
    demo.force_login(UserFactory())
    assert demo.get(reverse("costing:reimbursements", args=[2025])).status_code == 403


def test_compliance_findings_are_shown(demo):
    login(demo, "finances")
    html = demo.get(reverse("costing:reimbursements", args=[2026])).content.decode()
    assert "notifié le 12/05/2026, après la date limite du 30/04/2026" in html
    assert "Ligne de coût non éligible exclue" in html


def test_finance_computes_a_unit_cost_and_readers_cannot(demo):
    # Issue 8: the 2026 unit cost is notified, hence frozen (never deleted nor recomputed); the
    # 2027 one is not notified yet.
    base = CostBase.objects.get(service__code="paie", year=2027)
    UnitCost.objects.filter(service=base.service, year=2027).delete()
    login(demo, "lecteur.clermont")
    assert demo.post(reverse("costing:unit-cost-compute", args=[base.pk])).status_code == 403
    login(demo, "finances")
    response = demo.post(reverse("costing:unit-cost-compute", args=[base.pk]), follow=True)
    assert "Coût unitaire 2027 calculé" in response.content.decode()
    assert UnitCost.objects.get(service=base.service, year=2027).amount == Decimal("19.80")
    notified = CostBase.objects.get(service__code="paie", year=2026)
    response = demo.post(reverse("costing:unit-cost-compute", args=[notified.pk]), follow=True)
    assert "il ne peut plus être recalculé" in unescape(response.content.decode())
    assert UnitCost.objects.get(service=base.service, year=2026).amount == Decimal("19.38")


def test_invalid_cost_base_keeps_the_input_and_explains(demo):
    login(demo, "finances")
    data = {
        "service": CostBase.objects.first().service_id,
        "year": "2030",
        "source": "CFU",
        "source_year": "2031",
        "reference_units": "0",
        "reference_basis": "FORECAST",
        "lines-TOTAL_FORMS": "1",
        "lines-INITIAL_FORMS": "0",
        "lines-0-label": "Frais de structure",
        "lines-0-category": "OVERHEAD",
        "lines-0-accounts_amount": "1 000,50",
        "lines-0-budget_adjustment": "0",
        "lines-0-eligible": "on",
    }
    response = demo.post(reverse("costing:cost-base-create"), data)
    html = unescape(response.content.decode())
    assert response.status_code == 200
    assert "Les comptes utilisés précèdent l" in html
    assert "Les unités de référence doivent être positives" in html
    assert "doivent être justifiés" in html
    assert 'value="1 000,50"' in html or 'value="1000,50"' in html
    # Listed at the top, each linked to its field (the line's field too), as on every form.
    summary = html.split('id="erreurs"', 1)[1].split("</div>", 1)[0]
    assert "Les unités de référence doivent être positives." in summary
    assert "Lignes, ligne 1 : Une autre charge ou des frais de structure doivent être" in summary
    assert '<a href="#id_lines-0-account">Lignes, ligne 1 — Compte (M57)</a>' in summary


def test_usage_grid_saves_french_decimals_and_refuses_negatives(demo):
    login(demo, "gestionnaire")
    url = reverse("costing:usage-grid", args=["CONV-2025-002", "ads", 2026])
    page = demo.get(url)
    form = page.context["form"]
    aubiere = Organisation.objects.get(insee_code="63014")
    key = form.key(aubiere.pk, 3)
    response = demo.post(url, {key: "-2"})
    assert "Quantité négative" in response.content.decode()
    assert not UsageRecord.objects.filter(source=UsageSource.GRID).exists()
    response = demo.post(url, {key: "12,5"}, follow=True)
    assert "1 case enregistrée." in response.content.decode()
    record = UsageRecord.objects.get(source=UsageSource.GRID)
    assert (record.quantity, record.units, record.period_start.month) == (
        Decimal("12.5"),
        Decimal("12.5"),
        3,
    )
    demo.post(url, {key: ""})
    assert not UsageRecord.objects.filter(source=UsageSource.GRID).exists()


def test_finance_officer_cannot_see_a_commune_grid_of_a_convention_hidden_from_them(demo):
    user = UserFactory()
    Membership.objects.create(
        user=user,
        organisation=Organisation.objects.get(insee_code="63113"),
        role=Role.COMMUNE_READER,
    )
    demo.force_login(user)
    assert (
        demo.get(reverse("costing:usage-grid", args=["CONV-2025-002", "ads", 2025])).status_code
        == 403
    )


def test_import_page_previews_then_imports(demo):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(demo, "finances")
    content = b"convention;beneficiaire;service;mois;quantite;ponderation;reference\nCONV-2025-002;63014;ads;2026-11;3;PC;WEB-1\n"
    response = demo.post(
        reverse("costing:usage-import"),
        {"file": SimpleUploadedFile("r.csv", content)},
        follow=True,
    )
    assert "1 ligne vérifiée, sans erreur" in response.content.decode()
    assert not UsageRecord.objects.filter(reference="WEB-1").exists()
    job = response.context["job"]
    response = demo.post(reverse("costing:usage-import-confirm", args=[job.pk]), follow=True)
    assert "1 ligne importée." in response.content.decode()
    assert UsageRecord.objects.get(reference="WEB-1").units == 3
    listed = demo.get(reverse("costing:usage-import")).content.decode()
    assert "Vos derniers fichiers" in listed
    assert "r.csv" in listed
    assert "Importé" in listed
    # The file is kept out of the session (before: base64 in it, up to ~6.7 MB).
    assert not any("import" in key for key, _value in demo.session.items())


def test_confirming_a_preview_imports_that_file_even_after_another_preview(demo):
    """Before: preview A, preview B in another tab, confirm A: B was imported."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(demo, "finances")
    header = b"convention;beneficiaire;service;mois;quantite;ponderation;reference\n"
    url = reverse("costing:usage-import")
    first = demo.post(
        url,
        {
            "file": SimpleUploadedFile(
                "a.csv", header + b"CONV-2025-002;63014;ads;2026-11;3;PC;TAB-A\n"
            )
        },
        follow=True,
    )
    demo.post(
        url,
        {
            "file": SimpleUploadedFile(
                "b.csv", header + b"CONV-2025-002;63014;ads;2026-11;5;PC;TAB-B\n"
            )
        },
        follow=True,
    )
    confirm = reverse("costing:usage-import-confirm", args=[first.context["job"].pk])
    response = demo.post(confirm, follow=True)
    assert "1 ligne importée." in response.content.decode()
    assert UsageRecord.objects.filter(reference="TAB-A").exists()
    assert not UsageRecord.objects.filter(reference="TAB-B").exists()
    again = demo.post(confirm, follow=True)
    assert "n&#x27;est plus en attente" in again.content.decode()
    assert UsageRecord.objects.filter(reference="TAB-A").count() == 1


def test_another_persons_import_is_not_found(demo):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(demo, "finances")
    content = b"convention;beneficiaire;service;mois;quantite\nCONV-2025-002;63014;ads;2026-11;3\n"
    job = demo.post(
        reverse("costing:usage-import"),
        {"file": SimpleUploadedFile("r.csv", content)},
        follow=True,
    ).context["job"]
    login(demo, "gestionnaire")
    assert demo.get(reverse("costing:usage-import-detail", args=[job.pk])).status_code == 404
    assert demo.post(reverse("costing:usage-import-confirm", args=[job.pk])).status_code == 404


def test_import_page_lists_errors_and_imports_nothing(demo):
    from django.core.files.uploadedfile import SimpleUploadedFile

    login(demo, "finances")
    content = b"convention;beneficiaire;service;mois;quantite\nCONV-2025-002;63014;ads;2026-11;3\nCONV-2025-002;63014;ads;novembre;3\n"
    response = demo.post(
        reverse("costing:usage-import"),
        {"file": SimpleUploadedFile("r.csv", content)},
        follow=True,
    )
    html = response.content.decode()
    assert "1 erreur : rien n'a été importé." in html
    assert "Mois invalide « novembre »" in html
    assert "Déposer un fichier corrigé" in html


def test_simulation_projects_forecasts_at_the_latest_unit_cost(demo):
    login(demo, "gestionnaire")
    page = demo.get(reverse("costing:simulation", args=["CONV-2027-001"]))
    rows = {(row.year, row.organisation.name): row.projected for row in page.context["rows"]}
    # Paie: 1 150 pay slips for Ceyrat at the 2027 unit cost 19,80 €.
    assert rows[(2027, "Ceyrat")] == Decimal("22770.00")
    assert page.context["chart"]["labels"] == ["2027", "2028"]


def test_a_provisional_unit_cost_by_index_until_the_computed_one(demo):
    from costing.models import CostBase, UnitCost

    base = CostBase.objects.get(service__code="paie", year=2027)
    UnitCost.objects.filter(service=base.service, year=2027).delete()
    login(demo, "finances")
    url = reverse("costing:unit-cost-provisional", args=[base.pk])
    response = demo.post(url, {"index_now": "104,2", "index_before": "101,5"}, follow=True)
    provisional = UnitCost.objects.get(service=base.service, year=2027)
    assert provisional.is_provisional
    assert provisional.amount == Decimal("19.90")  # 19,38 × 104,2 ÷ 101,5
    assert "Coût unitaire provisoire 2027" in response.content.decode()
    demo.post(reverse("costing:unit-cost-compute", args=[base.pk]))
    computed = UnitCost.objects.get(service=base.service, year=2027)
    assert not computed.is_provisional
    assert computed.amount == Decimal("19.80")
