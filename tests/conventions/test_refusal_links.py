"""A refused legal transition names each missing item with a link to the page that fixes it;
the gates keep their French sentences for every other caller (issue 12, point 2)."""

from datetime import date

import pytest
import time_machine
from django.urls import reverse

from conventions.models import Convention, Status
from conventions.services import gates, transitions
from tests.conventions.conftest import add_deliberations

pytestmark = pytest.mark.django_db
TODAY = date(2026, 11, 29)


def transition(client, convention, name, **data):
    return client.post(reverse("conventions:transition", args=[convention.reference, name]), data)


def links(page: str, href: str) -> bool:
    """Whether the refusal itself (not the rest of the page) links to ``href``."""
    refusal = page.split('id="refus"', 1)[1].split("</div>", 1)[0]
    return f'href="{href}"' in refusal


def test_the_missing_deliberations_are_a_gap_naming_each_party(mad_descendante, territory):
    """Structured for the screens, the same sentence for every other caller."""
    convention = mad_descendante.convention
    add_deliberations(convention, [territory.epci])
    missing = gates.gaps_for(convention, Status.DELIBERATED)
    gap = next(g for g in missing if g.code == gates.DELIBERATION_MISSING)
    assert gap == "Délibération approuvant la convention manquante pour : Commune A, Commune B."
    assert list(gap.organisations) == [territory.commune_a, territory.commune_b]
    assert isinstance(gap, str)


@time_machine.travel(TODAY)
def test_a_refused_deliberation_links_each_missing_party_to_its_prefilled_form(
    client, personas, mad_descendante, territory
):
    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci])
    client.force_login(personas.manager)
    response = transition(client, convention, "deliberate")
    assert response.status_code == 409
    page = response.content.decode()
    assert "Délibération approuvant la convention manquante pour : Commune A, Commune B." in page
    add = reverse("conventions:deliberation-add", args=[convention.reference])
    for commune in (territory.commune_a, territory.commune_b):
        assert links(page, f"{add}?organisation={commune.pk}")
    assert "Saisir la délibération de Commune A" in page
    # The link opens the form pre-filled for that party only.
    formset = client.get(f"{add}?organisation={territory.commune_b.pk}").context["formset"]
    assert [form.initial["organisation"] for form in formset] == [territory.commune_b.pk]


@time_machine.travel(TODAY)
def test_a_refused_submission_links_the_missing_forecasts_to_the_edit_form(
    client, personas, mad_descendante, territory
):
    convention = mad_descendante.convention
    mad_descendante.terms.forecasts.filter(beneficiary=territory.commune_b).delete()
    client.force_login(personas.manager)
    response = transition(client, convention, "submit")
    assert response.status_code == 409
    page = response.content.decode()
    edit = reverse("conventions:edit", args=[convention.reference])
    assert links(page, f"{edit}#previsions")
    assert 'id="previsions"' in client.get(edit).content.decode()


@time_machine.travel(TODAY)
def test_a_refused_entry_into_force_links_each_transmission_form(
    client, personas, mad_descendante, territory
):
    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    convention = transitions.convention_transition(convention, "deliberate")
    convention = transitions.convention_transition(
        convention, "sign", signature_date=date(2025, 12, 20)
    )
    client.force_login(personas.manager)
    response = transition(client, convention, "enter_into_force")
    assert response.status_code == 409
    page = response.content.decode()
    for deliberation in convention.deliberations.all():
        assert links(
            page,
            reverse(
                "conventions:deliberation-publicity", args=[convention.reference, deliberation.pk]
            ),
        )
    assert links(page, reverse("conventions:publicity", args=[convention.reference]))


@time_machine.travel(TODAY)
def test_no_link_leads_to_a_form_the_status_closes(client, personas, mad_descendante, territory):
    """A deliberated convention whose party lacks a deliberation (entered by the admin, say):
    the refusal says so, without a link to a form that would refuse it."""
    convention = mad_descendante.convention
    add_deliberations(convention, [territory.epci, territory.commune_a])
    Convention.objects.filter(pk=convention.pk).update(status=Status.DELIBERATED)
    client.force_login(personas.manager)
    response = transition(client, convention, "sign", signature_date="2025-12-20")
    assert response.status_code == 409
    page = response.content.decode()
    assert "Délibération approuvant la convention manquante pour : Commune B." in page
    assert reverse("conventions:deliberation-add", args=[convention.reference]) not in page


@time_machine.travel(TODAY)
def test_a_refused_avenant_signature_links_each_party_to_the_avenants_deliberation_form(
    client, personas, mad_descendante, territory
):
    from conventions.models import Amendment, SettlementMode, Terms
    from conventions.services import amendments

    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    convention = transitions.convention_transition(convention, "deliberate")
    convention = transitions.convention_transition(
        convention, "sign", signature_date=date(2025, 12, 20)
    )
    amendment = amendments.amendment_create(
        convention=convention,
        amendment=Amendment(object="Périodicité trimestrielle", effective_from=date(2026, 7, 1)),
        terms=Terms(
            settlement_mode=SettlementMode.TITRE, periodicity_months=3, unit_cost_method="Idem."
        ),
    )
    add_deliberations(
        convention,
        [territory.epci, territory.commune_a],
        day=date(2026, 6, 10),
        amendment=amendment,
    )
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:amendment-sign", args=[convention.reference, amendment.number]),
        {"signature_date": "2026-06-20"},
    )
    assert response.status_code == 409
    url = reverse("conventions:amendment-deliberation", args=[convention.reference, 1])
    assert links(response.content.decode(), f"{url}?organisation={territory.commune_b.pk}")
    form = client.get(f"{url}?organisation={territory.commune_b.pk}").context["form"]
    assert form["organisation"].value() == str(territory.commune_b.pk)


def test_a_service_communs_gaps_come_in_the_order_the_law_has_them_done(service_commun):
    """Journey 2: the fiche d'impact, then the staff bodies' opinions on the convention and its
    annexes, then the assemblies' deliberations (L5211-4-2): a manager working down the list
    never records a deliberation before the opinion that must precede it."""
    codes = [
        gap.code
        for gap in gates.gaps_for(service_commun.convention, Status.DELIBERATED)
        if getattr(gap, "code", "")
    ]
    assert codes == [
        gates.IMPACT_SHEET_MISSING,
        gates.OPINION_MISSING,
        gates.DELIBERATION_MISSING,
    ]
