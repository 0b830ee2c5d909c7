"""The payer or payee a message names takes « de » as French writes it: « d'Aubière »,
« du Cendre » (never « de Aubière », « de Le Cendre »)."""

from datetime import date, timedelta
from decimal import Decimal
from html import unescape
from types import SimpleNamespace

from django.urls import reverse

from costing import instalments, services, statements


def draft_of(payer_name, year=2026):
    return next(s for s in statements.statements_prepare(year) if s.payer.name == payer_name)


def test_an_issued_year_names_its_payer_with_an_elided_de():
    issued = SimpleNamespace(
        number="EA-2026-0001", year=2026, payer=SimpleNamespace(name="Aubière")
    )
    assert services.issued_year_message(issued).startswith(
        "L'état n° EA-2026-0001 émis couvre les recours 2026 d'Aubière : mettez-le"
    )


def test_negative_units_name_their_payer_with_a_contracted_de():
    record = SimpleNamespace(
        beneficiary=SimpleNamespace(name="Le Cendre"),
        service=SimpleNamespace(name="ADS"),
        period_start=date(2026, 3, 1),
    )
    assert services.negative_month_message(record, Decimal("-2")).startswith(
        "Les unités du Cendre pour « ADS » en 03/2026 deviendraient négatives (-2)"
    )


def test_a_missing_comptable_names_the_payee_with_an_elided_de(billed):
    payee = billed.territory.epci
    payee.name = "Issoire Communauté"
    payee.public_accountant = ""
    payee.save()
    draft = draft_of("Commune A")
    reasons = statements.issue_refusals(draft, today=draft.review_until + timedelta(days=1))
    assert any(
        reason.startswith("Le comptable public assignataire d'Issoire Communauté n'est pas")
        for reason in reasons
    )


def test_the_acompte_fields_name_their_payer_with_an_elided_de(client, personas, billed):
    commune = billed.territory.commune_a
    commune.name = "Aubière"
    commune.save()
    instalments.instalments_call(2026, up_to=date(2026, 1, 31))
    client.force_login(personas.finance)
    page = unescape(client.get(reverse("costing:instalments", args=[2026])).content.decode())
    assert "N° du titre de l'acompte 1 d'Aubière" in page
    assert "Motif de l'annulation de l'acompte 1 d'Aubière" in page
    assert "de Aubière" not in page


def test_the_dashboard_links_each_summary_with_an_elided_de(client, personas, billed):
    commune = billed.territory.commune_a
    commune.name = "Aubière"
    commune.save()
    client.force_login(personas.finance)
    page = unescape(client.get(reverse("costing:dashboard", args=[2026])).content.decode())
    assert 'aria-label="Récapitulatif PDF d\'Aubière"' in page
