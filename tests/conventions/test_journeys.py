"""Issue 12, journeys 1 and 2: a manager of the Métropole carries a convention from the login
page to « En vigueur » in a real Chromium, only as a person would (clicks and typing); the
database seeds the territory before and is read after, never to move the convention forward.

1. A mise à disposition descendante: the Métropole puts its archives service at the disposal
   of Aubière and Beaumont; a missing deliberation, then a missing transmission, are refused
   with links to where they are entered; the signed convention's PDF says who and what.
2. A service commun: the form offers only what the type allows; the fiche d'impact and the
   opinions of the comités sociaux territoriaux are asked for and entered until « En vigueur »."""

import re
import subprocess
from datetime import timedelta

import pypdfium2
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conventions.models import Convention, ConventionKind, PartyRole, Status
from mutualisation.models import Organisation, OrganisationKind
from tests.conftest import SCREENSHOTS, assert_accessible, screenshot, seed_territory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]
PASSWORD = "demo-mutualis-2026"
METROPOLE = "Clermont Auvergne Métropole"


def day(offset: int) -> str:
    """Today shifted by ``offset`` days, as a date field takes it."""
    return (timezone.localdate() + timedelta(days=offset)).isoformat()


def short(iso: str) -> str:
    """A date as the pages show it (31/12/2026)."""
    year, month, day_ = iso.split("-")
    return f"{day_}/{month}/{year}"


def log_in(page, live_server, name: str) -> None:
    page.goto(live_server.url + "/connexion/")
    assert_accessible(page, f"{name} : connexion")
    page.get_by_label("Identifiant").fill("gestionnaire")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server.url + "/")
    assert_accessible(page, f"{name} : accueil")


def back_on(page, url: str) -> None:
    """Wait for the page at ``url``, whatever fragment the browser carried over."""
    page.wait_for_url(re.compile(re.escape(url) + "(#.*)?$"))


def rows_of(table) -> list[list[str]]:
    """The cells of a table's body, row by row, as the person reads them."""
    return [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in table.locator("tbody tr").all()
    ]


def described(section, term: str):
    """The description of a term in a section's list (« Exécutoire le » → its date)."""
    return section.locator("dt", has_text=term).locator("xpath=following-sibling::dd[1]")


def status_badge(page):
    return page.locator(".lead .badge")


def expect_status(page, label: str) -> None:
    expect(status_badge(page)).to_have_text(label)


def flash(page):
    """The message the last action left (« La convention est désormais … »)."""
    return page.get_by_role("status").first


def transition(page, button: str, status: str, name: str) -> None:
    """Press a step's button and see the convention reach ``status``."""
    page.get_by_role("button", name=button).click()
    expect(flash(page)).to_contain_text(f"La convention est désormais « {status} ».")
    expect_status(page, status)
    assert_accessible(page, name)


def refused(page, button: str, target: str):
    """Press a step's button and see it refused; the refusal."""
    page.get_by_role("button", name=button).click()
    refusal = page.locator("#refus")
    expect(refusal).to_contain_text(f"Passage à « {target} » refusé. Il manque :")
    return refusal


def fill_deliberation(group, *, assembly, date, number, votes_for, votes_against):
    group.get_by_label("Assemblée").fill(assembly)
    group.get_by_label("Date de séance").fill(date)
    group.get_by_label("Numéro").fill(number)
    group.get_by_label("Objet").fill("Approbation de la convention et autorisation de signer")
    group.get_by_label("Voix pour").fill(str(votes_for))
    group.get_by_label("Voix contre").fill(str(votes_against))


def record_transmission(page, number: str, *, sent: str, published: str, name: str) -> None:
    """From the convention's page (or a link to the form), the deliberation's transmission to
    the préfecture and its publication."""
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Transmission et publication : Délibération n° {number}"
    )
    assert_accessible(page, name)
    page.get_by_label("Transmise au contrôle de légalité le").fill(sent)
    page.get_by_label("N° d'accusé de réception (préfecture)").fill(f"063-AR-{number}")
    page.get_by_label("Publiée le").fill(published)
    page.get_by_role("button", name="Enregistrer").click()
    expect(flash(page)).to_have_text("Transmission et publication enregistrées.")


def transmission_link(page, number: str):
    """The « Transmission » button of a deliberation in the convention's table."""
    return page.get_by_role("link", name=re.compile(rf"^Transmission Délibération n° {number} "))


def pdf_text(content: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=content, capture_output=True, check=True
    ).stdout.decode()


def render_first_page(content: bytes, name: str):
    """Page 1 of a PDF as a PNG next to the screenshots, for a person to look at."""
    document = pypdfium2.PdfDocument(content)
    try:
        image = document[0].render(scale=1.5).to_pil()
    finally:
        document.close()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SCREENSHOTS / f"{name}.png")
    return image


def test_journey_1_a_mise_a_disposition_descendante_from_login_to_its_signed_pdf(live_server, page):
    seed_territory()
    page.set_default_timeout(10_000)
    log_in(page, live_server, "parcours 1")

    # --- The convention, as the manager types it -------------------------------------------
    page.get_by_role("link", name="Conventions", exact=True).click()
    page.wait_for_url(live_server.url + "/conventions/")
    assert_accessible(page, "parcours 1 : liste des conventions")
    page.get_by_role("link", name="Nouvelle convention").click()
    page.wait_for_url(live_server.url + "/conventions/nouvelle/")
    assert_accessible(page, "parcours 1 : nouvelle convention")

    start = day(0)
    page.get_by_label("Intitulé").fill("Mise à disposition du service des archives")
    page.get_by_label("Type de convention").select_option(label="Mise à disposition de services")
    page.get_by_label("Objet").fill(
        "Le service des archives de la Métropole traite les archives d'Aubière et de Beaumont."
    )
    page.get_by_label("Préambule").fill(
        "Dans le cadre d'une bonne organisation des services, la Métropole met son service des "
        "archives à la disposition d'Aubière et de Beaumont, qui n'en disposent pas."
    )
    page.get_by_label("Date de prise d'effet").fill(start)
    page.get_by_label("Modalité de règlement").select_option(label="Titre de recettes")
    page.get_by_label("Périodicité des remboursements (mois)").fill("12")
    page.get_by_label("Méthode de détermination du coût unitaire").fill(
        "Coût de fonctionnement du service au dernier compte administratif, divisé par les "
        "mètres linéaires traités."
    )
    parties = page.locator("[role=group][aria-label^='Parties']")
    # The Métropole comes pre-filled as the first party; the manager gives it its role.
    expect(parties.nth(0).get_by_label("Organisation").locator("option:checked")).to_have_text(
        METROPOLE
    )
    parties.nth(0).get_by_label("Rôle").select_option(label="Prestataire")
    for row, commune in ((1, "Aubière"), (2, "Beaumont")):
        parties.nth(row).get_by_label("Organisation").select_option(label=commune)
        parties.nth(row).get_by_label("Rôle").select_option(label="Bénéficiaire")
    page.locator("[role=group][aria-label^='Services couverts']").first.get_by_label(
        "Service"
    ).select_option(label="Archives")
    screenshot(page, "journey1-1-creation")
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(re.compile(r"/conventions/CONV-\d{4}-\d{3,}/$"))
    reference = page.url.rstrip("/").rsplit("/", 1)[1]
    detail = page.url
    expect(flash(page)).to_have_text(f"Convention {reference} créée.")
    expect(page.locator(".lead")).to_contain_text(
        "Mise à disposition de services descendante (EPCI → communes, L. 5211-4-1 III)"
    )
    expect_status(page, "Brouillon")
    assert_accessible(page, "parcours 1 : brouillon")

    # --- Forecasts, asked for before the consultation and linked from what is missing -------
    steps = page.locator("section[aria-labelledby=titre-etapes]")
    expect(steps).to_contain_text(
        "Prévision d'utilisation en unités manquante pour le service « Archives » : "
        "Aubière, Beaumont (D5211-16)."
    )
    steps.get_by_role("link", name="Saisir les prévisions d'utilisation").click()
    page.wait_for_url(f"{detail}modifier/#previsions")
    assert_accessible(page, "parcours 1 : prévisions")
    forecasts = page.locator("[role=group][aria-label^='Prévisions']")
    year = str(timezone.localdate().year + 1)
    for row, (commune, units) in enumerate((("Aubière", "85"), ("Beaumont", "42,5"))):
        forecasts.nth(row).get_by_label("Service").select_option(index=1)
        forecasts.nth(row).get_by_label("Bénéficiaire").select_option(label=commune)
        forecasts.nth(row).get_by_label("Année").fill(year)
        forecasts.nth(row).get_by_label("Unités prévues").fill(units)
    page.get_by_role("button", name="Enregistrer").click()
    # (the browser keeps the form's « #previsions » through the redirect)
    back_on(page, detail)
    expect(flash(page)).to_have_text("Convention enregistrée.")
    forecast_table = page.get_by_role("region", name="Prévisions d'utilisation")
    assert rows_of(forecast_table) == [
        [year, "Archives", "Aubière", "85", "—"],
        [year, "Archives", "Beaumont", "42,5", "—"],
    ]

    transition(page, "Mettre en consultation", "En consultation", "parcours 1 : consultation")

    # --- Two of the three assemblies' deliberations, and their transmission ----------------
    page.get_by_role("link", name="Ajouter une délibération").click()
    page.wait_for_url(f"{detail}deliberations/ajouter/")
    assert_accessible(page, "parcours 1 : délibérations")
    expect(page.locator("fieldset legend")).to_have_text(
        ["Délibération d'Aubière", "Délibération de Beaumont", f"Délibération de {METROPOLE}"]
    )
    fill_deliberation(
        page.get_by_role("group", name=f"Délibération de {METROPOLE}"),
        assembly="Conseil métropolitain",
        date=day(-40),
        number="CM-2026-118",
        votes_for=72,
        votes_against=4,
    )
    fill_deliberation(
        page.get_by_role("group", name="Délibération d'Aubière"),
        assembly="Conseil municipal",
        date=day(-36),
        number="AUB-2026-57",
        votes_for=24,
        votes_against=3,
    )
    # Beaumont's council has not met yet: its row is left as it came.
    screenshot(page, "journey1-2-deliberations")
    page.get_by_role("button", name="Enregistrer les délibérations").click()
    page.wait_for_url(detail)
    expect(flash(page)).to_have_text("2 délibérations enregistrées.")
    for number, sent in (("CM-2026-118", day(-38)), ("AUB-2026-57", day(-34))):
        transmission_link(page, number).click()
        record_transmission(
            page, number, sent=sent, published=sent, name=f"parcours 1 : transmission {number}"
        )
    acts = page.locator("section[aria-labelledby=titre-deliberations]")
    expect(acts).to_contain_text(f"transmise le {short(day(-38))} (AR n° 063-AR-CM-2026-118)")

    # --- Refused while Beaumont has not deliberated: the refusal says so and links to it ----
    refusal = refused(page, "Constater les délibérations", "Délibérée")
    expect(refusal).to_contain_text(
        "Délibération approuvant la convention manquante pour : Beaumont."
    )
    assert_accessible(page, "parcours 1 : refus, délibération manquante")
    screenshot(page, "journey1-3-refus-deliberation")
    expect_status(page, "En consultation")
    refusal.get_by_role("link", name="Saisir la délibération de Beaumont").click()
    page.wait_for_url(re.compile(re.escape(f"{detail}deliberations/ajouter/?organisation=")))
    assert_accessible(page, "parcours 1 : délibération de Beaumont")
    expect(page.locator("fieldset legend")).to_have_text(["Délibération de Beaumont"])
    fill_deliberation(
        page.get_by_role("group", name="Délibération de Beaumont"),
        assembly="Conseil municipal",
        date=day(-33),
        number="BMT-2026-31",
        votes_for=19,
        votes_against=0,
    )
    page.get_by_role("button", name="Enregistrer les délibérations").click()
    page.wait_for_url(detail)
    expect(flash(page)).to_have_text("1 délibération enregistrée.")

    transition(page, "Constater les délibérations", "Délibérée", "parcours 1 : délibérée")
    page.get_by_label("Date de signature").fill(day(-20))
    page.get_by_role("button", name="Enregistrer la signature").click()
    expect(flash(page)).to_contain_text("La convention est désormais « Signée ».")
    expect_status(page, "Signée")
    assert_accessible(page, "parcours 1 : signée")
    screenshot(page, "journey1-4-signee")

    # --- Not in force while Beaumont's deliberation and the convention are not transmitted --
    refusal = refused(page, "Constater l'entrée en vigueur", "En vigueur")
    expect(refusal).to_contain_text(
        "Délibération n° BMT-2026-31 de Beaumont : indiquez sa date de transmission au "
        "contrôle de légalité, le n° de l'accusé de réception de la préfecture, sa date de "
        "publication."
    )
    expect(refusal).to_contain_text(
        "Convention signée : indiquez sa date de transmission au contrôle de légalité, le n° "
        "de l'accusé de réception de la préfecture, sa date de notification aux parties."
    )
    expect(refusal).not_to_contain_text("CM-2026-118")
    assert_accessible(page, "parcours 1 : refus, transmissions manquantes")
    screenshot(page, "journey1-5-refus-transmission")
    refusal.get_by_role(
        "link",
        name="Enregistrer la transmission et la publication de la délibération n° BMT-2026-31",
    ).click()
    record_transmission(
        page,
        "BMT-2026-31",
        sent=day(-30),
        published=day(-29),
        name="parcours 1 : transmission de Beaumont",
    )
    page.wait_for_url(detail)
    steps = page.locator("section[aria-labelledby=titre-etapes]")
    expect(steps).not_to_contain_text("BMT-2026-31")
    steps.get_by_role(
        "link", name="Enregistrer la transmission et la notification de la convention"
    ).click()
    page.wait_for_url(f"{detail}transmission/")
    assert_accessible(page, "parcours 1 : transmission de la convention")
    page.get_by_label("Transmise au contrôle de légalité le").fill(day(-15))
    page.get_by_label("N° d'accusé de réception (préfecture)").fill("063-246300701-CONV")
    page.get_by_label("Notifiée aux parties le").fill(day(-12))
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(detail)
    expect(flash(page)).to_have_text("Transmission et notification de la convention enregistrées.")
    enforceability = page.locator("section[aria-labelledby=titre-executoire]")
    expect(described(enforceability, "Exécutoire le")).to_have_text(short(day(-12)))

    transition(page, "Constater l'entrée en vigueur", "En vigueur", "parcours 1 : en vigueur")
    screenshot(page, "journey1-6-en-vigueur")

    # --- The signed convention, downloaded as the parties signed it -------------------------
    # The link opens the PDF in the browser (« inline »), which offers to save it.
    with page.expect_response(f"{detail}pdf/") as response_info:
        page.get_by_role("link", name="Convention signée (PDF)").click()
    response = response_info.value
    assert response.status == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == f'inline; filename="{reference}-signee.pdf"'
    # What « Enregistrer » in the browser's viewer saves: the same address, in the same session
    # (the viewer's own page is what the navigation's body holds).
    saved = page.context.request.get(page.url)
    assert saved.ok
    content = saved.body()
    assert content.startswith(b"%PDF-")
    text = re.sub(r"\s+", " ", pdf_text(content))
    for expected in (
        reference,
        "Mise à disposition du service des archives",
        "descendante",
        METROPOLE,
        "Aubière",
        "Beaumont",
        "Archives",
        "CM-2026-118",
        "AUB-2026-57",
        "BMT-2026-31",
    ):
        assert expected in text, expected
    assert "PROJET" not in text
    # The forecasts, as typed (D5211-16: the convention carries them).
    assert re.search(rf"{year} Archives Aubière 85 {year} Archives Beaumont 42,5(?![0-9])", text)
    image = render_first_page(content, "journey1-7-pdf-page1")
    # An A4 page in portrait, with text on it (not a blank render).
    assert image.height > image.width
    assert image.convert("L").getextrema()[0] < 64

    convention = Convention.objects.get(reference=reference)
    assert convention.status == Status.IN_FORCE
    assert convention.kind == ConventionKind.MISE_A_DISPOSITION
    assert sorted(convention.parties.values_list("organisation__name", "role")) == [
        ("Aubière", PartyRole.BENEFICIARY),
        ("Beaumont", PartyRole.BENEFICIARY),
        (METROPOLE, PartyRole.PROVIDER),
    ]
    assert sorted(convention.deliberations.values_list("number", "acknowledgement_number")) == [
        ("AUB-2026-57", "063-AR-AUB-2026-57"),
        ("BMT-2026-31", "063-AR-BMT-2026-31"),
        ("CM-2026-118", "063-AR-CM-2026-118"),
    ]
    # What was downloaded is the act frozen at signature, byte for byte.
    assert bytes(convention.signed_documents.get().pdf) == content


def options(select) -> list[str]:
    """The choices a select offers the person (those the page hides are not offered)."""
    return [
        text.strip()
        for text in select.locator("option:not([hidden]):not([value=''])").all_inner_texts()
    ]


def record_opinion(page, *, body: str, body_name: str = "", date: str, opinion: str) -> None:
    page.get_by_label(re.compile(r"^\s*Instance\W*$")).select_option(label=body)
    if body_name:
        page.get_by_label("Instance ayant rendu l'avis").fill(body_name)
    page.get_by_label("Date de l'avis").fill(date)
    page.get_by_label(re.compile(r"^\s*Avis\W*$")).select_option(label=opinion)
    page.get_by_role("button", name="Enregistrer").click()


def test_journey_2_a_service_commun_guided_by_its_type_to_en_vigueur(live_server, page):
    from tests.factories import OrganisationFactory

    seed_territory()
    # A commune outside the Métropole, which a service commun of the Métropole cannot take in.
    OrganisationFactory(name="Riom")
    page.set_default_timeout(10_000)
    log_in(page, live_server, "parcours 2")

    page.get_by_role("link", name="Conventions", exact=True).click()
    page.wait_for_url(live_server.url + "/conventions/")
    assert_accessible(page, "parcours 2 : liste des conventions")
    page.get_by_role("link", name="Nouvelle convention").click()
    page.wait_for_url(live_server.url + "/conventions/nouvelle/")
    assert_accessible(page, "parcours 2 : nouvelle convention")

    # --- The form shaped by the type -------------------------------------------------------
    page.get_by_label("Type de convention").select_option(label="Service commun")
    parties = page.locator("[role=group][aria-label^='Parties']")
    expect(parties).to_have_count(3)
    for row in range(3):
        # Only the role the law gives a service commun's parties: no provider, no beneficiary.
        assert options(parties.nth(row).get_by_label("Rôle")) == ["Membre du service commun"]
    first = parties.nth(0)
    expect(first.get_by_label("Organisation").locator("option:checked")).to_have_text(METROPOLE)
    expect(first.get_by_label("Rôle")).to_have_value("MEMBER")
    managing = page.get_by_label("Organisation gestionnaire")
    expect(managing).to_be_visible()
    expect(managing.locator("option:checked")).to_have_text(METROPOLE)
    # Only the Métropole and its communes are offered, not a commune outside it.
    offered = options(first.get_by_label("Organisation"))
    assert {METROPOLE, "Aubière", "Durtol"} <= set(offered)
    assert "Riom" not in offered
    assert "Riom" not in options(managing)
    assert_accessible(page, "parcours 2 : service commun")

    page.get_by_label("Intitulé").fill("Service commun d'instruction du droit des sols")
    page.get_by_label("Objet").fill(
        "Instruction des autorisations d'urbanisme d'Aubière et de Durtol par le service ADS "
        "de la Métropole."
    )
    page.get_by_label("Date de prise d'effet").fill(day(0))
    page.get_by_label("Modalité de règlement").select_option(label="Titre de recettes")
    page.get_by_label("Périodicité des remboursements (mois)").fill("6")
    page.get_by_label("Méthode de détermination du coût unitaire").fill(
        "Coût du service ADS au dernier compte administratif, réparti entre les communes "
        "membres au prorata de leur population légale."
    )
    page.get_by_label("Participation du gestionnaire").select_option(
        label="Aucune part : tout le coût est réparti entre les autres membres"
    )
    for row, commune in ((1, "Aubière"), (2, "Durtol")):
        parties.nth(row).get_by_label("Organisation").select_option(label=commune)
        expect(parties.nth(row).get_by_label("Rôle")).to_have_value("MEMBER")
    service = page.locator("[role=group][aria-label^='Services couverts']").first
    service.get_by_label("Service").select_option(
        label="Instruction des autorisations du droit des sols (ADS)"
    )
    service.get_by_label("Clé de répartition").select_option(label="Population (millésime nommé)")
    service.get_by_label("Millésime de population").fill("2023")
    # A commune that is not among the members cannot manage the service commun.
    managing.select_option(label="Beaumont")
    page.get_by_role("button", name="Enregistrer").click()
    errors = page.locator("#erreurs")
    expect(errors).to_contain_text(
        "L'organisation gestionnaire doit être membre du service commun : ajoutez Beaumont aux "
        "parties ou choisissez un des membres."
    )
    # The summary links to the field chosen, which says why; the parties say nothing.
    errors.get_by_role("link", name="Organisation gestionnaire du service commun").click()
    expect(managing).to_be_focused()
    expect(managing).to_have_class(re.compile(r"\bis-invalid\b"))
    expect(page.locator("#champ-gestionnaire")).to_contain_text("ajoutez Beaumont aux parties")
    expect(
        page.locator("fieldset", has=page.locator("legend", has_text="Parties"))
    ).not_to_contain_text("ajoutez Beaumont")
    assert_accessible(page, "parcours 2 : gestionnaire non membre")
    screenshot(page, "journey2-1-gestionnaire-non-membre")
    assert not Convention.objects.exists()
    # Everything typed is kept, and the roles offered are still those of a service commun.
    expect(page.get_by_label("Intitulé")).to_have_value(
        "Service commun d'instruction du droit des sols"
    )
    for row in range(3):
        assert options(parties.nth(row).get_by_label("Rôle")) == ["Membre du service commun"]
    managing.select_option(label=METROPOLE)
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(re.compile(r"/conventions/CONV-\d{4}-\d{3,}/$"))
    reference = page.url.rstrip("/").rsplit("/", 1)[1]
    detail = page.url
    expect(flash(page)).to_have_text(f"Convention {reference} créée.")
    expect(page.locator(".lead")).to_contain_text(f"{reference} · Service commun")
    expect_status(page, "Brouillon")
    expect(page.locator("#titre-objet ~ p").last).to_have_text(
        f"Organisation gestionnaire : {METROPOLE}"
    )
    assert_accessible(page, "parcours 2 : brouillon")
    screenshot(page, "journey2-2-brouillon")

    transition(page, "Mettre en consultation", "En consultation", "parcours 2 : consultation")

    # --- What the law asks before the assemblies deliberate, and where to enter it ----------
    refusal = refused(page, "Constater les délibérations", "Délibérée")
    expect(refusal).to_contain_text(
        "Fiche d'impact manquante (obligatoire pour un service commun, L5211-4-2)."
    )
    expect(refusal).to_contain_text(
        f"Avis du comité social territorial manquant pour : Aubière, {METROPOLE}, Durtol."
    )
    expect(refusal).to_contain_text(
        f"Délibération approuvant la convention manquante pour : Aubière, {METROPOLE}, Durtol."
    )
    # In the order they are done: the sheet, the opinions on it, then the deliberations.
    expect(refusal.locator(":scope > ul > li")).to_have_text(
        [
            re.compile("^Fiche d'impact manquante"),
            re.compile("^Avis du comité social territorial manquant"),
            re.compile("^Délibération approuvant la convention manquante"),
        ]
    )
    expect_status(page, "En consultation")
    assert_accessible(page, "parcours 2 : refus")
    screenshot(page, "journey2-3-refus")

    refusal.get_by_role("link", name="Saisir la fiche d'impact").click()
    page.wait_for_url(f"{detail}ajouter/fiche-impact/")
    assert_accessible(page, "parcours 2 : fiche d'impact")
    page.get_by_label("Établie le").fill(day(-70))
    page.get_by_label("Effets sur l'organisation et les conditions de travail").fill(
        "Les deux instructeurs d'Aubière rejoignent le service ADS de la Métropole, sur son site."
    )
    page.get_by_label("Effets sur la rémunération").fill(
        "Maintien du régime indemnitaire antérieur, s'ils y ont intérêt."
    )
    page.get_by_label("Effets sur les droits acquis").fill(
        "Avantages acquis conservés à titre individuel."
    )
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(detail)
    expect(flash(page)).to_have_text("Enregistré : Fiche d'impact.")
    expect(
        described(page.locator("section[aria-labelledby=titre-fiche]"), "Établie le")
    ).to_have_text(short(day(-70)))

    # Each member's staff body, from the links of what is still missing.
    steps = page.locator("section[aria-labelledby=titre-etapes]")
    expect(steps).not_to_contain_text("Fiche d'impact manquante")
    for organisation, of_organisation, body, body_name, date in (
        (METROPOLE, f"de {METROPOLE}", "Comité social territorial", "", day(-60)),
        ("Aubière", "d'Aubière", "Comité social territorial", "", day(-58)),
        # Durtol has fewer than 50 agents: the CST of the centre de gestion gives its opinion.
        (
            "Durtol",
            "de Durtol",
            "Comité social territorial du centre de gestion",
            "CST du centre de gestion du Puy-de-Dôme",
            day(-57),
        ),
    ):
        steps.get_by_role("link", name=f"Saisir l'avis de l'instance {of_organisation}").click()
        page.wait_for_url(re.compile(re.escape(f"{detail}ajouter/avis/?organisation=")))
        expect(page.get_by_label("Organisation").locator("option:checked")).to_have_text(
            organisation
        )
        assert_accessible(page, f"parcours 2 : avis {of_organisation}")
        record_opinion(page, body=body, body_name=body_name, date=date, opinion="Favorable")
        page.wait_for_url(detail)
        expect(flash(page)).to_have_text("Enregistré : Avis d'une instance paritaire.")
    expect(steps).not_to_contain_text("Avis du comité social territorial manquant")
    screenshot(page, "journey2-4-avis")

    # --- The three assemblies deliberate, and their acts are transmitted and published -----
    steps.get_by_role("link", name="Saisir la délibération d'Aubière").click()
    page.wait_for_url(re.compile(re.escape(f"{detail}deliberations/ajouter/?organisation=")))
    expect(page.locator("fieldset legend")).to_have_text(["Délibération d'Aubière"])
    fill_deliberation(
        page.get_by_role("group", name="Délibération d'Aubière"),
        assembly="Conseil municipal",
        date=day(-45),
        number="AUB-2026-71",
        votes_for=25,
        votes_against=2,
    )
    page.get_by_role("button", name="Enregistrer les délibérations").click()
    page.wait_for_url(detail)
    expect(flash(page)).to_have_text("1 délibération enregistrée.")
    page.get_by_role("link", name="Ajouter une délibération").click()
    page.wait_for_url(f"{detail}deliberations/ajouter/")
    assert_accessible(page, "parcours 2 : délibérations")
    expect(page.locator("fieldset legend")).to_have_text(
        ["Délibération de Clermont Auvergne Métropole", "Délibération de Durtol"]
    )
    fill_deliberation(
        page.get_by_role("group", name=f"Délibération de {METROPOLE}"),
        assembly="Conseil métropolitain",
        date=day(-44),
        number="CM-2026-140",
        votes_for=70,
        votes_against=5,
    )
    fill_deliberation(
        page.get_by_role("group", name="Délibération de Durtol"),
        assembly="Conseil municipal",
        date=day(-42),
        number="DUR-2026-19",
        votes_for=15,
        votes_against=0,
    )
    page.get_by_role("button", name="Enregistrer les délibérations").click()
    page.wait_for_url(detail)
    expect(flash(page)).to_have_text("2 délibérations enregistrées.")
    for number, sent in (
        ("AUB-2026-71", day(-40)),
        ("CM-2026-140", day(-40)),
        ("DUR-2026-19", day(-39)),
    ):
        transmission_link(page, number).click()
        record_transmission(
            page, number, sent=sent, published=sent, name=f"parcours 2 : transmission {number}"
        )
        page.wait_for_url(detail)

    transition(page, "Constater les délibérations", "Délibérée", "parcours 2 : délibérée")
    page.get_by_label("Date de signature").fill(day(-25))
    page.get_by_role("button", name="Enregistrer la signature").click()
    expect(flash(page)).to_contain_text("La convention est désormais « Signée ».")
    expect_status(page, "Signée")
    assert_accessible(page, "parcours 2 : signée")

    page.get_by_role("link", name="Enregistrer la transmission et la notification").first.click()
    page.wait_for_url(f"{detail}transmission/")
    assert_accessible(page, "parcours 2 : transmission de la convention")
    page.get_by_label("Transmise au contrôle de légalité le").fill(day(-20))
    page.get_by_label("N° d'accusé de réception (préfecture)").fill("063-246300701-ADS")
    page.get_by_label("Notifiée aux parties le").fill(day(-18))
    page.get_by_role("button", name="Enregistrer").click()
    page.wait_for_url(detail)
    expect(flash(page)).to_have_text("Transmission et notification de la convention enregistrées.")
    expect(page.locator("section[aria-labelledby=titre-etapes]")).not_to_contain_text("il manque")

    transition(page, "Constater l'entrée en vigueur", "En vigueur", "parcours 2 : en vigueur")
    screenshot(page, "journey2-5-en-vigueur")

    convention = Convention.objects.get(reference=reference)
    assert convention.status == Status.IN_FORCE
    assert convention.kind == ConventionKind.SERVICE_COMMUN
    assert convention.managing_organisation.name == METROPOLE
    assert sorted(convention.parties.values_list("organisation__name", "role")) == [
        ("Aubière", PartyRole.MEMBER),
        (METROPOLE, PartyRole.MEMBER),
        ("Durtol", PartyRole.MEMBER),
    ]
    assert convention.impact_sheet.established_on.isoformat() == day(-70)
    assert sorted(convention.opinions.values_list("organisation__name", "body", "body_name")) == [
        ("Aubière", "CST", ""),
        (METROPOLE, "CST", ""),
        ("Durtol", "CDG", "CST du centre de gestion du Puy-de-Dôme"),
    ]
    assert not Organisation.objects.filter(name="Riom", parties__isnull=False).exists()
    assert Organisation.objects.get(name="Riom").kind == OrganisationKind.COMMUNE
