"""Conventions screens: the permission matrix, the list, create/edit with optimistic locking,
transitions, attachments and the PDF."""

import io
import re
from datetime import date
from html import unescape

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pypdf import PdfReader

from conventions.models import Convention, Party, PartyRole, Status
from conventions.services import amendments, in_force, transitions
from mutualisation.documents import render_pdf
from tests.conventions.conftest import add_deliberations
from tests.factories import ConventionFactory, TermsFactory

pytestmark = pytest.mark.django_db


def url(name, convention):
    return reverse(f"conventions:{name}", args=[convention.reference])


# persona → expected status for (list, detail, edit, pdf) on commune A's convention
MATRIX = {
    "manager": (200, 200, 200, 200),
    "finance": (200, 200, 403, 200),
    "reader_a": (200, 200, 403, 200),
    "reader_b": (200, 404, 404, 404),
    "outsider": (403, 404, 404, 404),
    "admin": (200, 200, 200, 200),
}


@pytest.mark.parametrize("persona", MATRIX)
def test_permission_matrix(client, personas, conventions_ab, persona):
    client.force_login(getattr(personas, persona))
    convention = conventions_ab["a"]
    answers = (
        client.get(reverse("conventions:list")).status_code,
        client.get(url("detail", convention)).status_code,
        client.get(url("edit", convention)).status_code,
        client.get(url("pdf", convention)).status_code,
    )
    assert answers == MATRIX[persona]


def test_anonymous_visitor_is_sent_to_login(client, conventions_ab):
    for target in (reverse("conventions:list"), url("detail", conventions_ab["a"])):
        response = client.get(target)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_commune_b_never_sees_commune_a_convention_not_even_its_reference(
    client, personas, conventions_ab
):
    hidden = conventions_ab["a"].reference
    client.force_login(personas.reader_b)
    for params in ({}, {"q": hidden}, {"q": "CONV"}, {"status": "DRAFT"}):
        html = client.get(reverse("conventions:list"), params).content.decode()
        # (the search box and sort links echo what was typed; the rows must not)
        results = html.split('id="table-conventions"')[1]
        assert f">{hidden}<" not in results
        assert "Convention de la commune A" not in results
        assert "Convention de la commune A" not in html
    html = client.get(reverse("conventions:list")).content.decode()
    assert hidden not in html
    assert "1 convention" in html
    assert conventions_ab["b"].reference in html
    # The commune filter offers no organisation (it searches those the reader may see:
    # test_organisation_search.py); forcing commune A in it reveals nothing either.
    assert "Commune A" not in html
    response = client.get(
        reverse("conventions:list"),
        {"organisation": personas.reader_a.memberships.get().organisation.siren},
    )
    assert hidden not in response.content.decode()


def test_finance_and_managers_see_every_convention(client, personas, conventions_ab):
    for persona in ("finance", "manager"):
        client.force_login(getattr(personas, persona))
        html = client.get(reverse("conventions:list")).content.decode()
        assert conventions_ab["a"].reference in html
        assert conventions_ab["b"].reference in html


def test_list_filters_by_commune_type_status_and_year(client, personas, conventions_ab, territory):
    client.force_login(personas.manager)
    html = client.get(
        reverse("conventions:list"), {"organisation": territory.commune_b.siren}
    ).content.decode()
    assert conventions_ab["b"].reference in html
    assert conventions_ab["a"].reference not in html
    html = client.get(reverse("conventions:list"), {"year": 2030}).content.decode()
    assert "Aucune convention ne correspond" in html
    html = client.get(
        reverse("conventions:list"), {"year": 2027, "kind": "MISE_A_DISPOSITION"}
    ).content.decode()
    assert conventions_ab["a"].reference in html


def test_htmx_filtering_returns_only_the_table(client, personas, conventions_ab):
    client.force_login(personas.manager)
    response = client.get(
        reverse("conventions:list"), {"q": "commune A"}, headers={"HX-Request": "true"}
    )
    html = response.content.decode()
    assert "<html" not in html
    assert conventions_ab["a"].reference in html
    assert conventions_ab["b"].reference not in html


def list_queries(client):
    with CaptureQueriesContext(connection) as context:
        assert client.get(reverse("conventions:list")).status_code == 200
    return len(context)


def test_list_runs_a_constant_number_of_queries(client, personas, territory):
    def add_conventions(count):
        for _ in range(count):
            convention = ConventionFactory()
            Party.objects.create(
                convention=convention, organisation=territory.epci, role=PartyRole.PROVIDER
            )
            Party.objects.create(
                convention=convention, organisation=territory.commune_a, role=PartyRole.BENEFICIARY
            )
            TermsFactory(convention=convention)
            Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)

    client.force_login(personas.manager)
    add_conventions(10)
    with_10 = list_queries(client)
    add_conventions(90)
    assert list_queries(client) == with_10
    client.force_login(personas.reader_a)
    assert list_queries(client) == with_10  # a commune reader costs the same


# --- create and edit ---------------------------------------------------------------------------


def management(prefix, total=1, initial=0):
    return {f"{prefix}-TOTAL_FORMS": str(total), f"{prefix}-INITIAL_FORMS": str(initial)}


def creation_data(territory, service, **overrides):
    data = {
        "title": "Mise à disposition de la paie",
        "kind": "MISE_A_DISPOSITION",
        "object": "Production de la paie.",
        "preamble": "Bonne organisation des services.",
        "start_date": "2027-01-01",
        "terms-settlement_mode": "TITRE",
        "terms-periodicity_months": "12",
        "terms-instalment_count": "4",
        "terms-unit_cost_method": "Coût / unités.",
        "terms-end_date": "2029-12-31",
        "terms-notice_months": "3",
        **management("parties", 2),
        "parties-0-organisation": territory.epci.pk,
        "parties-0-role": "PROVIDER",
        "parties-1-organisation": territory.commune_a.pk,
        "parties-1-role": "BENEFICIARY",
        **management("services", 1),
        "services-0-service": service.pk,
    }
    data.update(overrides)
    return data


def test_manager_creates_a_convention_with_parties_and_services(client, personas, territory):
    from tests.factories import ServiceFactory

    service = ServiceFactory(provider=territory.epci)
    client.force_login(personas.manager)
    response = client.post(reverse("conventions:create"), creation_data(territory, service))
    convention = Convention.objects.get(title="Mise à disposition de la paie")
    assert response["Location"] == convention.get_absolute_url()
    assert convention.reference == "CONV-2027-001"
    assert convention.created_by == personas.manager
    assert [p.organisation for p in convention.parties.order_by("role")] == [
        territory.commune_a,
        territory.epci,
    ]
    assert convention.services.get().unit_type == service.unit_type


def test_invalid_creation_is_explained_in_french_and_keeps_the_input(client, personas, territory):
    from tests.factories import ServiceFactory

    client.force_login(personas.manager)
    data = creation_data(
        territory, ServiceFactory(provider=territory.epci), **{"terms-periodicity_months": "18"}
    )
    response = client.post(reverse("conventions:create"), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert "ne peut dépasser 12 mois (D5211-16)" in html
    assert 'value="Mise à disposition de la paie"' in html
    assert not Convention.objects.exists()


def edit_data(convention, **overrides):
    terms = in_force.initial_terms(convention)
    data = {
        "version": str(convention.version),
        "title": convention.title,
        "kind": convention.kind,
        "object": convention.object,
        "preamble": convention.preamble,
        "start_date": convention.start_date.isoformat(),
        "terms-settlement_mode": terms.settlement_mode,
        "terms-periodicity_months": str(terms.periodicity_months),
        "terms-instalment_count": str(terms.instalment_count),
        "terms-unit_cost_method": terms.unit_cost_method,
        "terms-end_date": terms.end_date.isoformat(),
        "terms-notice_months": str(terms.notice_months),
        **management("parties", 0),
        **management("services", 0),
        **management("deliberations", 0),
        **management("forecasts", 0),
    }
    data.update(overrides)
    return data


def test_a_stale_version_save_is_refused_and_the_form_keeps_the_input(
    client, personas, conventions_ab
):
    convention = conventions_ab["a"]
    client.force_login(personas.manager)
    first = edit_data(convention, title="Titre de Camille")
    second = edit_data(convention, title="Titre de Dominique")  # loaded at the same version
    assert client.post(url("edit", convention), first).status_code == 302
    response = client.post(url("edit", convention), second)
    html = unescape(response.content.decode())
    assert response.status_code == 409
    assert "a été modifiée par gestionnaire" in html
    assert "Rien n'a été enregistré" in html
    assert 'value="Titre de Dominique"' in html
    convention.refresh_from_db()
    assert convention.title == "Titre de Camille"


def test_the_form_refused_for_a_conflict_saves_when_sent_again_knowingly(
    client, personas, conventions_ab
):
    """The conflict message invites to save again once the latest version is read: the form
    shown with it carries that version (it used to carry the old one, refused for ever)."""
    convention = conventions_ab["a"]
    client.force_login(personas.manager)
    second = edit_data(convention, title="Titre de Dominique")
    assert (
        client.post(url("edit", convention), edit_data(convention, title="Camille")).status_code
        == 302
    )
    refused = client.post(url("edit", convention), second)
    assert refused.status_code == 409
    again = client.post(
        url("edit", convention), second | {"version": refused.context["form"]["version"].value()}
    )
    assert again.status_code == 302
    convention.refresh_from_db()
    assert convention.title == "Titre de Dominique"


def test_edit_records_who_changed_what_in_the_history(client, personas, conventions_ab):
    convention = conventions_ab["a"]
    client.force_login(personas.manager)
    client.post(url("edit", convention), edit_data(convention, title="Nouveau titre"))
    html = client.get(url("detail", convention)).content.decode()
    assert "intitulé : Convention de la commune A → Nouveau titre" in html
    assert "gestionnaire" in html


def test_deliberated_convention_is_no_longer_editable(client, personas, conventions_ab):
    convention = conventions_ab["a"]
    Convention.objects.filter(pk=convention.pk).update(status=Status.DELIBERATED)
    client.force_login(personas.manager)
    response = client.get(url("edit", convention), follow=True)
    assert "ne se modifie plus que par avenant" in response.content.decode()


# --- transitions -------------------------------------------------------------------------------


def test_refused_transition_lists_what_is_missing(client, personas, mad_descendante, territory):
    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:transition", args=[convention.reference, "deliberate"])
    )
    html = response.content.decode()
    assert response.status_code == 409
    assert "Passage à « Délibérée » refusé" in html
    assert (
        "Délibération approuvant la convention manquante pour : Commune A, Commune B, Métropole de test."
        in html
    )


def test_transition_succeeds_once_supplied(client, personas, mad_descendante, territory):
    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:transition", args=[convention.reference, "deliberate"])
    )
    assert response.status_code == 302
    convention.refresh_from_db()
    assert convention.status == Status.DELIBERATED


def test_finance_cannot_move_a_convention(client, personas, mad_descendante):
    client.force_login(personas.finance)
    response = client.post(
        reverse("conventions:transition", args=[mad_descendante.convention.reference, "submit"])
    )
    assert response.status_code == 403


# --- attachments -------------------------------------------------------------------------------


def small_pdf():
    return render_pdf("pdf/base.html", {})


def upload(client, convention, name, content):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return client.post(
        reverse("conventions:add-related", args=[convention.reference, "piece-jointe"]),
        {
            "title": "Convention signée",
            "file": SimpleUploadedFile(name, content, "application/pdf"),
        },
    )


def test_a_signed_pdf_is_attached_with_its_fingerprint(client, personas, conventions_ab):
    convention = conventions_ab["a"]
    client.force_login(personas.manager)
    content = small_pdf()
    assert upload(client, convention, "signee.pdf", content).status_code == 302
    attachment = convention.attachments.get()
    assert attachment.size == len(content)
    import hashlib

    assert attachment.sha256 == hashlib.sha256(content).hexdigest()
    download = client.get(
        reverse("conventions:attachment-download", args=[convention.reference, attachment.pk])
    )
    assert b"".join(download.streaming_content) == content
    client.force_login(personas.reader_b)
    hidden = client.get(
        reverse("conventions:attachment-download", args=[convention.reference, attachment.pk])
    )
    assert hidden.status_code == 404


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("scan.png", b"%PDF-1.7 whatever", "Seuls les fichiers PDF"),
        ("faux.pdf", b"<html>pas un pdf</html>", "ne commence pas par %PDF"),
        ("casse.pdf", b"%PDF-1.7\n garbage", "illisible"),
    ],
)
def test_bad_attachments_are_refused_in_french(
    client, personas, conventions_ab, name, content, message
):
    client.force_login(personas.manager)
    response = upload(client, conventions_ab["a"], name, content)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not conventions_ab["a"].attachments.exists()


def test_oversized_attachment_is_refused(client, personas, conventions_ab, monkeypatch):
    from conventions import forms

    monkeypatch.setattr(forms, "MAX_ATTACHMENT_BYTES", 100)
    client.force_login(personas.manager)
    response = upload(client, conventions_ab["a"], "gros.pdf", small_pdf())
    assert "la limite est de 100" in response.content.decode()


# --- PDF ---------------------------------------------------------------------------------------


def test_convention_pdf_names_parties_sirens_deliberations_and_articles(
    client, personas, mad_descendante, territory
):
    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    client.force_login(personas.reader_a)
    response = client.get(url("pdf", convention))
    assert response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = " ".join(page.extract_text() for page in reader.pages)
    text = re.sub(r"\s+", " ", text)
    for organisation in (territory.epci, territory.commune_a, territory.commune_b):
        assert organisation.name in text
        assert organisation.siren in text
    for deliberation in convention.deliberations.all():
        assert deliberation.number in text
    for title in (
        "Article 1 – Objet",
        "Article 2 – Services concernés et unités de fonctionnement",
        "Article 3 – Situation des agents",
        "Article 4 – Dispositions financières",
        "Article 5 – Caractère exécutoire et prise d'effet",
        "Article 6 – Durée",
        "Article 7 – Avenants",
        "Article 8 – Résiliation et réversibilité",
        "Article 9 – Litiges",
    ):
        assert title in text
    assert "L. 5211-4-1" in text
    assert "D. 5211-16" in text
    assert re.search(r"Page 1 / \d", text)
    assert reader.metadata.title == f"{convention.reference} — {convention.title}"


def test_signed_avenant_appears_in_the_pdf(client, personas, mad_descendante, territory):
    import time_machine

    from conventions.models import Amendment, Terms

    convention = transitions.convention_transition(mad_descendante.convention, "submit")
    add_deliberations(convention, [territory.epci, territory.commune_a, territory.commune_b])
    with time_machine.travel(date(2026, 11, 28)):
        convention = transitions.convention_transition(convention, "deliberate")
        convention = transitions.convention_transition(
            convention, "sign", signature_date=date(2025, 12, 20)
        )
        amendment = amendments.amendment_create(
            convention=convention,
            amendment=Amendment(object="Trimestrialisation", effective_from=date(2026, 7, 1)),
            terms=Terms(settlement_mode="TITRE", periodicity_months=3, unit_cost_method="x"),
        )
        add_deliberations(
            convention,
            [territory.epci, territory.commune_a, territory.commune_b],
            day=date(2026, 6, 1),
            amendment=amendment,
        )
        amendments.amendment_sign(amendment, signature_date=date(2026, 6, 15))
    client.force_login(personas.manager)
    signed = client.get(url("pdf", convention))
    consolidated = client.get(url("pdf", convention) + "?version=consolidee")
    avenant = client.get(
        reverse("conventions:amendment-pdf", args=[convention.reference, amendment.number])
    )

    def text_of(response):
        pages = PdfReader(io.BytesIO(response.content)).pages
        return re.sub(r"\s+", " ", " ".join(p.extract_text() for p in pages))

    assert "Avenant n° 1, signé le 15 juin 2026" in text_of(consolidated)
    assert "version consolidée au " in text_of(consolidated)
    # The signed convention is served as signed: no avenant, no later deliberation.
    assert "Avenant n° 1" not in text_of(signed)
    assert "1er juin 2026" not in text_of(signed)
    avenant_text = text_of(avenant)
    assert "Avenant n° 1" in avenant_text
    assert "Trimestrialisation" in avenant_text
    assert (
        "Vu la convention " + convention.reference + " signée le 20 décembre 2025" in avenant_text
    )
    assert "À compter du 1er juillet 2026" in avenant_text


def test_the_list_marks_a_party_a_draft_avenant_would_bring_in_and_drops_one_gone(
    client, territory, personas
):
    """The list names a convention's parties as its signed acts made them: the commune a draft
    avenant would add is shown as a project, the one a signed avenant took out is gone."""
    from datetime import date

    from conventions.models import Amendment, Party, PartyRole, Status
    from tests.factories import ConventionFactory, OrganisationFactory

    convention = ConventionFactory(territory=territory.epci, status=Status.IN_FORCE)
    Party.objects.create(
        convention=convention, organisation=territory.epci, role=PartyRole.PROVIDER
    )
    gone = OrganisationFactory(name="Commune sortie")
    signed = Amendment.objects.create(
        convention=convention,
        number=1,
        object="Sortie",
        effective_from=date(2020, 1, 1),
        status=Amendment.AmendmentStatus.SIGNED,
    )
    Party.objects.create(
        convention=convention, organisation=gone, role=PartyRole.BENEFICIARY, left_by=signed
    )
    draft = Amendment.objects.create(
        convention=convention, number=2, object="Entrée", effective_from=date(2030, 1, 1)
    )
    Party.objects.create(
        convention=convention,
        organisation=territory.commune_b,
        role=PartyRole.BENEFICIARY,
        joined_by=draft,
    )
    client.force_login(personas.manager)
    page = client.get(reverse("conventions:list")).content.decode()
    row = next(r for r in page.split("<tr") if convention.reference in r)
    assert "Commune B (avenant en projet)" in row
    assert "Commune sortie" not in row
