"""A manager enters a convention in a real Chromium and carries it to consultation; the reader
of another commune never sees it."""

import pytest

from conventions.models import Convention, Status
from tests.conftest import assert_accessible, browser_log_in, screenshot, seed_territory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "demo-mutualis-2026"


def test_manager_creates_a_convention_then_puts_it_into_consultation(live_server, page):
    seed_territory()
    browser_log_in(page, live_server, "gestionnaire", PASSWORD)
    page.get_by_role("link", name="Conventions").click()
    page.get_by_role("link", name="Nouvelle convention").click()

    page.get_by_label("Intitulé").fill("Mise à disposition du service des archives")
    page.get_by_label("Type de convention").select_option(label="Mise à disposition de services")
    page.get_by_label("Objet").fill("Traitement des archives de la commune de Beaumont.")
    page.get_by_label("Préambule").fill(
        "Dans le cadre d'une bonne organisation des services, la Métropole met son service des "
        "archives à la disposition de Beaumont, qui n'en dispose pas."
    )
    page.get_by_label("Date de prise d'effet").fill("2027-01-01")
    page.get_by_label("Modalité de règlement").select_option(label="Titre de recettes")
    page.get_by_label("Périodicité des remboursements (mois)").fill("18")
    page.get_by_label("Méthode de détermination du coût unitaire").fill(
        "Coût du service / mètres linéaires traités."
    )
    parties = page.locator("[role=group][aria-label^='Parties']")
    parties.nth(0).get_by_label("Organisation").select_option(label="Clermont Auvergne Métropole")
    parties.nth(0).get_by_label("Rôle").select_option(label="Prestataire")
    parties.nth(1).get_by_label("Organisation").select_option(label="Beaumont")
    parties.nth(1).get_by_label("Rôle").select_option(label="Bénéficiaire")
    page.locator("[role=group][aria-label^='Services couverts']").first.get_by_label(
        "Service"
    ).select_option(label="Archives")
    page.get_by_role("button", name="Enregistrer").click()

    # 18 months is refused in French, and nothing typed is lost.
    assert (
        "ne peut dépasser 12 mois"
        in page.locator("#id_terms-periodicity_months").locator("..").inner_text()
    )
    assert (
        page.get_by_label("Intitulé").input_value() == "Mise à disposition du service des archives"
    )
    screenshot(page, "convention-form-error")
    page.get_by_label("Périodicité des remboursements (mois)").fill("12")
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(live_server.url + "/conventions/CONV-2027-001/")
    assert "descendante" in page.locator(".lead").inner_text()

    # Consultation is refused until the forecast units are entered.
    page.get_by_role("button", name="Mettre en consultation").click()
    alert = page.get_by_role("alert")
    assert "Prévision d'utilisation en unités manquante" in alert.inner_text()
    screenshot(page, "convention-refused")

    page.get_by_role("link", name="Modifier").click()
    forecasts = page.locator("[role=group][aria-label^='Prévisions']")
    forecasts.nth(0).get_by_label("Service").select_option(index=1)
    forecasts.nth(0).get_by_label("Bénéficiaire").select_option(label="Beaumont")
    forecasts.nth(0).get_by_label("Année").fill("2027")
    forecasts.nth(0).get_by_label("Unités prévues").fill("12,5")
    page.get_by_role("button", name="Enregistrer").click()
    page.get_by_role("button", name="Mettre en consultation").click()
    assert "désormais « En consultation »" in page.get_by_role("status").first.inner_text()
    screenshot(page, "convention-detail")
    convention = Convention.objects.get(reference="CONV-2027-001")
    assert convention.status == Status.CONSULTATION
    assert str(convention.terms.get().forecasts.get().units) == "12.500"

    # Another commune's reader finds nothing, not even the reference.
    page.get_by_role("button", name="Se déconnecter").click()
    browser_log_in(page, live_server, "lecteur.aubiere", PASSWORD)
    page.goto(live_server.url + "/conventions/")
    assert "CONV-2027-001" not in page.locator("#table-conventions").inner_text()
    response = page.goto(live_server.url + "/conventions/CONV-2027-001/")
    assert response.status == 404


def test_the_list_filters_by_an_organisation_searched_by_name(live_server, page):
    """The organisation filter asks the server for what is typed (no list of every
    organisation), is reached by its label, and filters the table once one is chosen."""
    from conventions.models import Party, PartyRole
    from mutualisation.models import Organisation
    from tests.factories import ConventionFactory

    seed_territory()
    for name in ("Aubière", "Beaumont"):
        Party.objects.create(
            convention=ConventionFactory(title=f"Convention avec {name}"),
            organisation=Organisation.objects.get(name=name),
            role=PartyRole.BENEFICIARY,
        )
    browser_log_in(page, live_server, "gestionnaire", PASSWORD)
    page.goto(live_server.url + "/conventions/")
    field = page.get_by_role("combobox", name="Commune ou organisation")
    field.click()
    field.press_sequentially("aub", delay=50)
    option = page.locator(".ts-dropdown .option", has_text="Aubière")
    option.wait_for()
    option.click()
    page.wait_for_url("**organisation=216300145**")
    page.locator("h1").click()
    screenshot(page, "conventions-filtre-organisation")
    assert page.locator("#table-conventions tbody tr").count() == 1
    assert "Convention avec Aubière" in page.locator("#table-conventions").inner_text()
    assert "Beaumont" not in page.locator("#table-conventions").inner_text()


def test_the_creation_form_offers_only_the_roles_the_chosen_type_allows(live_server, page):
    seed_territory()
    browser_log_in(page, live_server, "gestionnaire", PASSWORD)
    page.goto(live_server.url + "/conventions/nouvelle/")
    parties = page.locator("[role=group][aria-label^='Parties']")
    first_role = parties.nth(0).get_by_label("Rôle")

    def offered(select):
        return select.locator("option:not([hidden]):not([value=''])").all_inner_texts()

    # The territory's EPCI is already the first party.
    assert (
        parties.nth(0).get_by_label("Organisation").locator("option:checked").inner_text()
        == "Clermont Auvergne Métropole"
    )
    page.get_by_label("Type de convention").select_option(label="Service commun")
    assert offered(first_role) == ["Membre du service commun"]
    assert first_role.input_value() == "MEMBER"
    # A row without an organisation stays empty (saved, it would ask for one); naming one
    # gives it the role.
    second_role = parties.nth(1).get_by_label("Rôle")
    assert second_role.input_value() == ""
    parties.nth(1).get_by_label("Organisation").select_option(label="Aubière")
    assert second_role.input_value() == "MEMBER"
    managing = page.get_by_label("Organisation gestionnaire")
    assert managing.is_visible()
    assert managing.locator("option:checked").inner_text() == "Clermont Auvergne Métropole"
    assert_accessible(page, "création d'un service commun")
    screenshot(page, "convention-form-service-commun")

    page.get_by_label("Type de convention").select_option(label="Mise à disposition de services")
    assert offered(first_role) == ["Prestataire", "Bénéficiaire"]
    assert first_role.input_value() == ""
    assert not managing.is_visible()

    # Back to a service commun, filled in and saved: its parties are its members.
    page.get_by_label("Type de convention").select_option(label="Service commun")
    page.get_by_label("Intitulé").fill("Service commun des archives")
    page.get_by_label("Objet").fill("Gestion commune des archives.")
    page.get_by_label("Date de prise d'effet").fill("2027-01-01")
    page.get_by_label("Modalité de règlement").select_option(label="Titre de recettes")
    page.get_by_label("Périodicité des remboursements (mois)").fill("12")
    page.locator("[role=group][aria-label^='Services couverts']").first.get_by_label(
        "Service"
    ).select_option(label="Archives")
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(live_server.url + "/conventions/CONV-2027-001/")
    convention = Convention.objects.get(reference="CONV-2027-001")
    assert convention.kind == "SERVICE_COMMUN"
    assert convention.managing_organisation.name == "Clermont Auvergne Métropole"
    assert sorted(convention.parties.values_list("organisation__name", "role")) == [
        ("Aubière", "MEMBER"),
        ("Clermont Auvergne Métropole", "MEMBER"),
    ]


def test_a_refused_step_links_to_the_prefilled_deliberation_form(live_server, page):
    """Issue 12: « Constater les délibérations » is refused while Aubière has not deliberated;
    the refusal links to the form pre-filled for Aubière; once it is recorded, the step is no
    longer refused for it."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from conventions.models import ConventionService, Deliberation, Party, PartyRole
    from conventions.services import transitions
    from mutualisation.models import Organisation, Service
    from tests.conventions.conftest import add_deliberations
    from tests.factories import ConventionFactory, TermsFactory

    seed_territory()
    today = timezone.localdate()
    metropole = Organisation.objects.get(name="Clermont Auvergne Métropole")
    aubiere, beaumont = (Organisation.objects.get(name=n) for n in ("Aubière", "Beaumont"))
    convention = ConventionFactory(
        title="Archives pour Aubière et Beaumont",
        territory=metropole,
        start_date=today + timedelta(days=30),
    )
    Party.objects.create(convention=convention, organisation=metropole, role=PartyRole.PROVIDER)
    for commune in (aubiere, beaumont):
        Party.objects.create(
            convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
        )
    service = Service.objects.filter(provider=metropole).order_by("name").first()
    line = ConventionService.objects.create(
        convention=convention, service=service, unit_type=service.unit_type
    )
    terms = TermsFactory(convention=convention, effective_from=convention.start_date)
    for commune in (aubiere, beaumont):
        terms.forecasts.create(
            service=line, beneficiary=commune, year=today.year + 1, units=Decimal("10")
        )
    convention = transitions.convention_transition(convention, "submit")
    add_deliberations(convention, [metropole, beaumont], day=today - timedelta(days=10))

    browser_log_in(page, live_server, "gestionnaire", PASSWORD)
    page.goto(live_server.url + convention.get_absolute_url())
    page.get_by_role("button", name="Constater les délibérations").click()
    refusal = page.locator("#refus")
    assert "Délibération approuvant la convention manquante pour : Aubière." in (
        refusal.inner_text()
    )
    assert_accessible(page, "refus")
    screenshot(page, "deliberation-refus-lien")

    with page.expect_navigation():
        refusal.get_by_role("link", name="Saisir la délibération d'Aubière").click()
    rows = page.locator("fieldset")
    assert rows.count() == 1
    row = page.get_by_role("group", name="Délibération d'Aubière")
    assert row.get_by_label("Organisation").locator("option:checked").inner_text() == "Aubière"
    assert_accessible(page, "formulaire")
    row.get_by_label("Assemblée").fill("Conseil municipal")
    row.get_by_label("Date de séance").fill((today - timedelta(days=5)).isoformat())
    row.get_by_label("Numéro").fill("2026-117")
    row.get_by_label("Voix pour").fill("20")
    row.get_by_label("Voix contre").fill("25")
    page.get_by_role("button", name="Enregistrer les délibérations").click()
    # Refused as today, everything typed kept, the error linked to its field.
    errors = page.get_by_role("alert").first
    assert "moins de voix pour que contre" in errors.inner_text()
    assert row.get_by_label("Numéro").input_value() == "2026-117"
    assert_accessible(page, "formulaire en erreur")
    screenshot(page, "deliberation-ajout-erreur")
    row.get_by_label("Voix contre").fill("3")
    page.get_by_role("button", name="Enregistrer les délibérations").click()
    page.wait_for_url(live_server.url + convention.get_absolute_url())
    assert "1 délibération enregistrée." in page.get_by_role("status").first.inner_text()
    assert Deliberation.objects.get(convention=convention, organisation=aubiere).votes_for == 20

    page.get_by_role("button", name="Constater les délibérations").click()
    assert "désormais « Délibérée »" in page.get_by_role("status").first.inner_text()
    assert page.locator("#refus").count() == 0
    assert_accessible(page, "délibérée")
    screenshot(page, "deliberation-constatee")
    # … and the signature that follows is no longer refused either.
    page.get_by_label("Date de signature").fill(today.isoformat())
    page.get_by_role("button", name="Enregistrer la signature").click()
    assert "désormais « Signée »" in page.get_by_role("status").first.inner_text()


def test_a_refused_list_of_parties_keeps_its_heading_above_the_error(live_server, page):
    """When the parties are refused as a whole (here, Aubière named twice), the error shows
    under the « Parties » heading, which stays in sight (the alert was laid over it)."""
    seed_territory()
    browser_log_in(page, live_server, "gestionnaire", PASSWORD)
    page.goto(live_server.url + "/conventions/nouvelle/")
    page.get_by_label("Type de convention").select_option(label="Service commun")
    page.get_by_label("Intitulé").fill("Service commun des archives")
    page.get_by_label("Objet").fill("Gestion commune des archives.")
    page.get_by_label("Date de prise d'effet").fill("2027-01-01")
    page.get_by_label("Modalité de règlement").select_option(label="Titre de recettes")
    page.get_by_label("Périodicité des remboursements (mois)").fill("12")
    parties = page.locator("[role=group][aria-label^='Parties']")
    parties.nth(1).get_by_label("Organisation").select_option(label="Aubière")
    parties.nth(2).get_by_label("Organisation").select_option(label="Aubière")
    page.get_by_role("button", name="Enregistrer").click()

    fieldset = page.locator("fieldset", has=page.locator("legend", has_text="Parties"))
    alert = fieldset.get_by_role("alert").first
    assert "Cette organisation est déjà partie à la convention." in alert.inner_text()
    legend = fieldset.locator("legend")
    heading, error = legend.bounding_box(), alert.bounding_box()
    assert heading["y"] + heading["height"] <= error["y"]
    # Nothing is drawn over the heading: it is what a person sees at its place.
    legend.scroll_into_view_if_needed()
    assert legend.evaluate(
        """legend => {
            const box = legend.getBoundingClientRect();
            const seen = document.elementFromPoint(box.left + 5, box.top + box.height / 2);
            return legend.contains(seen);
        }"""
    )
    assert_accessible(page, "parties refusées")
    screenshot(page, "convention-form-parties-refused")
