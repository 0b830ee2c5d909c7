"""Screens of the schéma de mutualisation: who reads what, the managers' forms, the consultation
and the refused approval listing every commune still awaited."""

from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from conventions.models import (
    ActionStatus,
    Horizon,
    Opinion,
    Party,
    PartyRole,
    Scheme,
    SchemeAction,
    SchemeOpinion,
    SchemeStatus,
)
from conventions.services import scheme as schemes
from mutualisation.models import Role
from tests.factories import (
    ConventionFactory,
    EpciFactory,
    EpciMembershipFactory,
    MembershipFactory,
    OrganisationFactory,
    SchemeActionFactory,
    SchemeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft_plan(territory):
    """The territory's scheme, a project still: an action for A only, one for B only, one for
    both; a convention of A realising A's."""
    scheme = SchemeFactory(territory=territory.epci, title="Schéma 2026-2032")
    only_a = SchemeActionFactory(
        scheme=scheme,
        title="Instruction ADS pour A",
        expected_fte_change=Decimal("-1.50"),
        expected_cost_change=Decimal("-40000.00"),
    )
    only_a.communes.set([territory.commune_a])
    convention_a = ConventionFactory(territory=territory.epci, title="Convention ADS de A")
    Party.objects.create(
        convention=convention_a, organisation=territory.commune_a, role=PartyRole.BENEFICIARY
    )
    only_a.conventions.set([convention_a])
    only_b = SchemeActionFactory(
        scheme=scheme,
        title="Voirie mutualisée pour B",
        horizon=Horizon.MEDIUM,
        target_year=2029,
        expected_cost_change=Decimal("12500.00"),
    )
    only_b.communes.set([territory.commune_b])
    both = SchemeActionFactory(
        scheme=scheme,
        title="Archives communes",
        horizon=Horizon.LONG,
        target_year=2031,
        status=ActionStatus.ABANDONED,
        expected_cost_change=Decimal("-99999.00"),
    )
    both.communes.set([territory.commune_a, territory.commune_b])
    return scheme


@pytest.fixture
def plan(territory, draft_plan):
    """The project transmitted ten days ago, commune A having answered."""
    sent = timezone.localdate() - timedelta(days=10)
    scheme = schemes.scheme_submit(draft_plan, on=sent)
    SchemeOpinion.objects.create(
        scheme=scheme,
        commune=territory.commune_a,
        date=sent + timedelta(days=5),
        deliberation_number="A-2026-12",
        opinion=Opinion.FAVOURABLE,
    )
    return scheme


def action(title):
    return SchemeAction.objects.get(title=title)


ROUTES = {
    # name: (args of the world, GET answers per persona)
    "schemes": lambda p: [],
    "scheme": lambda p: [p.pk],
    "scheme-create": lambda p: [],
    "scheme-edit": lambda p: [p.pk],
    "scheme-action-add": lambda p: [p.pk],
    "scheme-action-edit": lambda p: [action("Instruction ADS pour A").pk],
    "scheme-opinion-add": lambda p: [p.pk],
}
#                     schemes scheme create edit add-action edit-action opinion
GET_MATRIX = {
    # A transmitted scheme's text no longer changes: its edit and new action send back to it.
    "manager": (200, 200, 200, 302, 302, 200, 200),
    "admin": (200, 200, 200, 302, 302, 200, 200),
    "finance": (200, 200, 403, 403, 403, 403, 403),
    "reader_a": (200, 200, 403, 403, 403, 403, 403),
    # B's reader does not see the action concerning A only.
    "reader_b": (200, 200, 403, 403, 403, 404, 403),
    "outsider": (403, 404, 403, 404, 404, 404, 404),
}


@pytest.mark.parametrize("persona", GET_MATRIX)
def test_each_screen_answers_each_persona(client, personas, plan, persona):
    client.force_login(getattr(personas, persona))
    answers = tuple(
        client.get(reverse(f"conventions:{name}", args=args(plan))).status_code
        for name, args in ROUTES.items()
    )
    assert answers == GET_MATRIX[persona]


POST_ONLY = ("scheme-action-delete", "scheme-submit", "scheme-adopt")


@pytest.mark.parametrize(
    ("persona", "expected"),
    # (delete A's action, adopt the scheme): B's reader does not see A's action at all
    [
        ("finance", [403, 403]),
        ("reader_a", [403, 403]),
        ("reader_b", [404, 403]),
        ("outsider", [404, 404]),
    ],
)
def test_those_who_only_read_change_nothing(client, personas, plan, persona, expected):
    client.force_login(getattr(personas, persona))
    target = action("Instruction ADS pour A")
    answers = [
        client.post(reverse("conventions:scheme-action-delete", args=[target.pk])).status_code,
        client.post(
            reverse("conventions:scheme-adopt", args=[plan.pk]),
            {"approbation-on": timezone.localdate(), "approbation-number": "42"},
        ).status_code,
    ]
    assert answers == expected
    assert SchemeAction.objects.filter(pk=target.pk).exists()
    plan.refresh_from_db()
    assert plan.status == SchemeStatus.CONSULTATION


@pytest.mark.parametrize("name", POST_ONLY)
def test_the_transitions_and_the_deletion_answer_a_post_only(client, personas, plan, name):
    client.force_login(personas.manager)
    args = [action("Instruction ADS pour A").pk] if name == "scheme-action-delete" else [plan.pk]
    assert client.get(reverse(f"conventions:{name}", args=args)).status_code == 405


def test_anonymous_visitor_is_sent_to_login(client, plan):
    response = client.get(reverse("conventions:scheme", args=[plan.pk]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_manager_reads_every_action_by_horizon_and_the_totals_without_the_abandoned(
    client, personas, plan
):
    client.force_login(personas.manager)
    page = unescape(client.get(reverse("conventions:scheme", args=[plan.pk])).content.decode())
    for title in ("Instruction ADS pour A", "Voirie mutualisée pour B", "Archives communes"):
        assert title in page
    assert page.index("Court terme") < page.index("Instruction ADS pour A")
    assert page.index("Moyen terme") < page.index("Voirie mutualisée pour B")
    assert page.index("Long terme") < page.index("Archives communes")
    # -40 000 + 12 500 (the abandoned -99 999 left out), French formatting, no-break spaces
    assert "-27\u00a0500,00\u00a0€ par an" in page
    assert "-1,5 ETP" in page
    assert "Abandonnée" in page
    # every member's opinion: A's given, B's awaited, and the deadline three months on
    assert "Favorable" in page
    assert "Avis attendu" in page
    deadline = schemes.opinion_deadline(plan).strftime("%d/%m/%Y")
    assert f"avis attendus jusqu'au {deadline}" in page
    assert "Convention ADS de A" not in page  # the reference is shown, with its status
    assert action("Instruction ADS pour A").conventions.get().reference in page


def test_reader_a_does_not_see_an_action_concerning_only_commune_b(client, personas, plan):
    client.force_login(personas.reader_a)
    page = unescape(client.get(reverse("conventions:scheme", args=[plan.pk])).content.decode())
    assert "Instruction ADS pour A" in page
    assert "Archives communes" in page  # concerns A too
    assert "Voirie mutualisée pour B" not in page
    assert "Commune B" not in page  # neither B's opinion nor B among the communes concerned
    assert "Commune A" in page
    assert "12\u00a0500" not in page  # the totals are those of A's actions
    assert "Modifier" not in page
    assert "Enregistrer l'approbation" not in page


def test_reader_b_reads_its_commune_s_row_of_the_consultation_only(client, personas, plan):
    client.force_login(personas.reader_b)
    page = unescape(client.get(reverse("conventions:scheme", args=[plan.pk])).content.decode())
    assert "Voirie mutualisée pour B" in page
    assert "Instruction ADS pour A" not in page
    assert "Commune A" not in page
    assert "Avis attendu" in page


def test_a_commune_reader_is_not_shown_another_commune_s_convention(client, personas, plan):
    """An action concerning A and B realised by A's convention: B's reader reads the action,
    not the reference of a convention they may not open."""
    target = action("Archives communes")
    convention_a = action("Instruction ADS pour A").conventions.get()
    target.conventions.set([convention_a])
    client.force_login(personas.reader_b)
    page = client.get(reverse("conventions:scheme", args=[plan.pk])).content.decode()
    assert "Archives communes" in page
    assert convention_a.reference not in page


def test_the_list_shows_the_schemes_visible_per_territory_and_the_button_to_managers(
    client, personas, plan
):
    other = SchemeFactory(territory=EpciFactory(name="Autre EPCI"), title="Schéma d'ailleurs")
    client.force_login(personas.manager)
    page = unescape(client.get(reverse("conventions:schemes")).content.decode())
    assert "Schéma 2026-2032" in page
    assert other.title not in page
    assert "Nouveau schéma" in page
    client.force_login(personas.finance)
    page = unescape(client.get(reverse("conventions:schemes")).content.decode())
    assert "Schéma 2026-2032" in page
    assert "Nouveau schéma" not in page


def test_the_manager_creates_a_scheme_of_their_territory(client, personas, territory):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-create"),
        {"title": "Schéma du mandat", "first_year": "2026", "last_year": "2032", "summary": "x"},
    )
    scheme = Scheme.objects.get(title="Schéma du mandat")
    assert response["Location"] == scheme.get_absolute_url()
    assert (scheme.territory, scheme.status) == (territory.epci, SchemeStatus.DRAFT)


def test_a_mandate_ending_before_it_starts_is_refused_in_french(client, personas, territory):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-create"),
        {"title": "Schéma", "first_year": "2032", "last_year": "2026"},
    )
    assert response.status_code == 200
    assert "La dernière année du mandat précède la première." in unescape(response.content.decode())
    assert not Scheme.objects.exists()


def test_shortening_the_mandate_is_refused_while_an_action_targets_a_year_outside(
    client, personas, draft_plan
):
    plan = draft_plan
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-edit", args=[plan.pk]),
        {"title": plan.title, "first_year": "2026", "last_year": "2030"},
    )
    assert "Archives communes (2031)" in unescape(response.content.decode())
    plan.refresh_from_db()
    assert plan.last_year == 2032


def action_data(**changes):
    data = {
        "title": "Commande publique",
        "horizon": Horizon.MEDIUM,
        "target_year": "2028",
        "expected_fte_change": "-0,5",
        "expected_cost_change": "-15000,00",
        "status": ActionStatus.PLANNED,
    }
    data.update(changes)
    return data


def test_the_manager_adds_an_action_with_french_decimals(client, personas, draft_plan, territory):
    plan = draft_plan
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-action-add", args=[plan.pk]),
        action_data(communes=[territory.commune_a.pk, territory.commune_b.pk]),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    added = action("Commande publique")
    assert added.scheme == plan
    assert (added.expected_fte_change, added.expected_cost_change) == (
        Decimal("-0.50"),
        Decimal("-15000.00"),
    )
    assert set(added.communes.all()) == {territory.commune_a, territory.commune_b}


def test_a_target_year_outside_the_mandate_is_refused_in_french(client, personas, draft_plan):
    plan = draft_plan
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-action-add", args=[plan.pk]),
        action_data(target_year="2035"),
    )
    assert response.status_code == 200
    assert "L'année visée doit être comprise dans le mandat (2026-2032)." in unescape(
        response.content.decode()
    )
    assert not SchemeAction.objects.filter(title="Commande publique").exists()


def test_an_action_concerns_member_communes_and_territory_conventions_only(
    client, personas, draft_plan
):
    plan = draft_plan
    elsewhere = EpciFactory(name="Autre EPCI")
    stranger = OrganisationFactory(name="Commune étrangère")
    EpciMembershipFactory(member=stranger, epci=elsewhere)
    foreign = ConventionFactory(territory=elsewhere, reference="AUTRE-2026-001")
    client.force_login(personas.manager)
    url = reverse("conventions:scheme-action-add", args=[plan.pk])
    page = client.get(url).content.decode()
    assert "Commune A" in page
    assert "Commune étrangère" not in page
    assert "AUTRE-2026-001" not in page
    response = client.post(url, action_data(communes=[stranger.pk], conventions=[foreign.pk]))
    assert response.status_code == 200
    assert not SchemeAction.objects.filter(title="Commande publique").exists()


def test_the_manager_edits_then_deletes_an_action(client, personas, draft_plan):
    plan = draft_plan
    client.force_login(personas.manager)
    target = action("Voirie mutualisée pour B")
    response = client.post(
        reverse("conventions:scheme-action-edit", args=[target.pk]),
        action_data(
            title=target.title,
            target_year="2029",
            status=ActionStatus.PREPARING,
            progress_note="Étude lancée",
        ),
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert (target.status, target.progress_note) == (ActionStatus.PREPARING, "Étude lancée")
    response = client.post(reverse("conventions:scheme-action-delete", args=[target.pk]))
    assert response["Location"] == plan.get_absolute_url()
    assert not SchemeAction.objects.filter(pk=target.pk).exists()


def test_the_manager_records_a_commune_s_opinion_once(client, personas, plan, territory):
    client.force_login(personas.manager)
    url = reverse("conventions:scheme-opinion-add", args=[plan.pk])
    page = client.get(url).content.decode()
    assert "Commune B" in page
    assert "Commune A" not in page  # A has answered
    data = {
        "commune": territory.commune_b.pk,
        "date": timezone.localdate().isoformat(),
        "deliberation_number": "B-12",
        "opinion": Opinion.UNFAVOURABLE,
    }
    assert client.post(url, data).status_code == 302
    assert plan.opinions.get(commune=territory.commune_b).opinion == Opinion.UNFAVOURABLE
    again = client.post(url, data)
    assert again.status_code == 200
    assert plan.opinions.filter(commune=territory.commune_b).count() == 1


def test_an_opinion_cannot_predate_the_transmission(client, personas, plan, territory):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-opinion-add", args=[plan.pk]),
        {
            "commune": territory.commune_b.pk,
            "date": (plan.submitted_on - timedelta(days=1)).isoformat(),
            "opinion": Opinion.FAVOURABLE,
        },
    )
    assert "avant la transmission du projet" in unescape(response.content.decode())
    assert not plan.opinions.filter(commune=territory.commune_b).exists()


def test_the_refused_adoption_lists_the_awaited_communes_and_keeps_the_input(
    client, personas, plan
):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-adopt", args=[plan.pk]),
        {"approbation-on": timezone.localdate().isoformat(), "approbation-number": "2026-12-042"},
    )
    assert response.status_code == 409
    page = unescape(response.content.decode())
    refusal = page[page.index('id="refus"') : page.index("</div>", page.index('id="refus"'))]
    assert "Avis attendu des conseils municipaux de : Commune B." in refusal
    assert "Commune A" not in refusal
    assert 'value="2026-12-042"' in page
    plan.refresh_from_db()
    assert plan.status == SchemeStatus.CONSULTATION


def test_an_adoption_without_date_nor_number_lists_every_missing_item(client, personas, plan):
    client.force_login(personas.manager)
    response = client.post(reverse("conventions:scheme-adopt", args=[plan.pk]), {})
    assert response.status_code == 409
    page = unescape(response.content.decode())
    assert "Date de la délibération d'approbation : Ce champ est obligatoire." in page
    assert "N° de la délibération : Ce champ est obligatoire." in page
    assert "Avis attendu des conseils municipaux de : Commune B." in page


def test_once_every_commune_answered_the_council_s_approval_is_recorded(
    client, personas, plan, territory
):
    SchemeOpinion.objects.create(
        scheme=plan,
        commune=territory.commune_b,
        date=timezone.localdate(),
        opinion=Opinion.UNFAVOURABLE,
    )
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-adopt", args=[plan.pk]),
        {"approbation-on": timezone.localdate().isoformat(), "approbation-number": "42"},
    )
    assert response.status_code == 302
    plan.refresh_from_db()
    assert (plan.status, plan.deliberation_number) == (SchemeStatus.ADOPTED, "42")
    page = client.get(plan.get_absolute_url()).content.decode()
    assert "délibération n° 42" in unescape(page)


def test_a_draft_without_actions_is_not_transmitted_then_is_once_it_has_one(
    client, personas, territory
):
    draft = SchemeFactory(territory=territory.epci)
    client.force_login(personas.manager)
    url = reverse("conventions:scheme-submit", args=[draft.pk])
    today = timezone.localdate().isoformat()
    refused = client.post(url, {"transmission-on": today})
    assert refused.status_code == 409
    assert "Le projet de schéma ne prévoit aucune action." in unescape(refused.content.decode())
    SchemeActionFactory(scheme=draft)
    assert client.post(url, {"transmission-on": today}).status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.submitted_on) == (SchemeStatus.CONSULTATION, timezone.localdate())


def test_opinions_are_recorded_during_the_consultation_only(client, personas, territory):
    draft = SchemeFactory(territory=territory.epci)
    client.force_login(personas.manager)
    response = client.get(reverse("conventions:scheme-opinion-add", args=[draft.pk]))
    assert response["Location"] == draft.get_absolute_url()


def test_another_territory_s_manager_gets_404_on_every_screen_of_the_scheme(client, plan):
    other_manager = UserFactory(username="gestionnaire.ailleurs")
    MembershipFactory(user=other_manager, organisation=EpciFactory(), role=Role.MANAGER)
    client.force_login(other_manager)
    for name, args in ROUTES.items():
        if name in ("schemes", "scheme-create"):
            continue
        assert client.get(reverse(f"conventions:{name}", args=args(plan))).status_code == 404
    target = action("Instruction ADS pour A")
    assert (
        client.post(reverse("conventions:scheme-action-delete", args=[target.pk])).status_code
        == 404
    )
    assert client.post(reverse("conventions:scheme-adopt", args=[plan.pk])).status_code == 404
    assert "Schéma 2026-2032" not in client.get(reverse("conventions:schemes")).content.decode()
    assert SchemeAction.objects.filter(pk=target.pk).exists()


def test_after_three_months_a_silent_council_reads_as_deemed_favourable(
    client, personas, territory
):
    old = SchemeFactory(territory=territory.epci, title="Schéma consulté")
    SchemeActionFactory(scheme=old)
    schemes.scheme_submit(old, on=timezone.localdate() - timedelta(days=120))
    client.force_login(personas.reader_b)
    page = unescape(client.get(reverse("conventions:scheme", args=[old.pk])).content.decode())
    assert "Réputé favorable" in page
    assert "aucune dans les trois mois" in page
    assert "Avis attendu" not in page


def test_the_transmission_says_until_when_the_councils_may_answer(client, personas, territory):
    draft = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=draft)
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-submit", args=[draft.pk]),
        {"transmission-on": "2026-07-03"},
        follow=True,
    )
    assert "rendre leur avis, soit jusqu'au 03/10/2026." in unescape(response.content.decode())


def test_a_second_scheme_for_the_same_mandate_is_refused_in_french(client, personas, plan):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-create"),
        {"title": "Doublon", "first_year": "2026", "last_year": "2032"},
    )
    assert response.status_code == 200
    assert "Ce territoire a déjà un schéma de mutualisation pour ce mandat." in unescape(
        response.content.decode()
    )
    assert not Scheme.objects.filter(title="Doublon").exists()


# --- defects found by the review of issue 14 ----------------------------------------------------


def test_an_opinion_after_the_three_months_is_refused_as_deemed_favourable(
    client, personas, territory, draft_plan
):
    sent = timezone.localdate() - timedelta(days=150)
    scheme = schemes.scheme_submit(draft_plan, on=sent)
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-opinion-add", args=[scheme.pk]),
        {
            "commune": territory.commune_b.pk,
            "date": timezone.localdate().isoformat(),
            "opinion": Opinion.UNFAVOURABLE,
        },
    )
    assert response.status_code == 200
    assert "postérieure au délai de trois mois" in unescape(response.content.decode())
    assert not scheme.opinions.filter(commune=territory.commune_b).exists()


def test_a_second_opinion_of_a_commune_is_refused_saying_why(client, personas, plan, territory):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-opinion-add", args=[plan.pk]),
        {
            "commune": territory.commune_a.pk,
            "date": timezone.localdate().isoformat(),
            "opinion": Opinion.UNFAVOURABLE,
        },
    )
    assert "qui n'a pas encore rendu son avis (une commune donne un seul avis)" in unescape(
        response.content.decode()
    )
    assert plan.opinions.get(commune=territory.commune_a).opinion == Opinion.FAVOURABLE


def test_a_council_opinion_is_favourable_or_not_never_split(client, personas, plan, territory):
    client.force_login(personas.manager)
    page = client.get(reverse("conventions:scheme-opinion-add", args=[plan.pk])).content.decode()
    assert 'value="UNFAVOURABLE"' in page
    assert 'value="SPLIT"' not in page


def test_a_transmitted_scheme_keeps_its_text_and_actions_but_its_progress_moves(
    client, personas, plan
):
    client.force_login(personas.manager)
    edit = client.post(
        reverse("conventions:scheme-edit", args=[plan.pk]),
        {"title": "Autre titre", "first_year": "2026", "last_year": "2032"},
    )
    assert edit["Location"] == plan.get_absolute_url()
    added = client.post(
        reverse("conventions:scheme-action-add", args=[plan.pk]), action_data(title="Ajout")
    )
    assert added["Location"] == plan.get_absolute_url()
    target = action("Voirie mutualisée pour B")
    deleted = client.post(reverse("conventions:scheme-action-delete", args=[target.pk]))
    assert deleted["Location"] == plan.get_absolute_url()
    refused = unescape(client.get(plan.get_absolute_url()).content.decode())
    assert "Suppression refusée" in refused
    plan.refresh_from_db()
    assert plan.title == "Schéma 2026-2032"
    assert not SchemeAction.objects.filter(title="Ajout").exists()
    assert SchemeAction.objects.filter(pk=target.pk).exists()
    # its progress is updated; its expected effect is not
    response = client.post(
        reverse("conventions:scheme-action-edit", args=[target.pk]),
        action_data(
            title="Changé",
            expected_cost_change="-1000000,00",
            status=ActionStatus.PREPARING,
            progress_note="Étude lancée",
        ),
    )
    assert response.status_code == 302
    target.refresh_from_db()
    assert (target.title, target.status, target.progress_note) == (
        "Voirie mutualisée pour B",
        ActionStatus.PREPARING,
        "Étude lancée",
    )
    assert target.expected_cost_change == Decimal("12500.00")


def test_a_mandate_overlapping_another_schemes_is_refused_in_french(client, personas, plan):
    client.force_login(personas.manager)
    response = client.post(
        reverse("conventions:scheme-create"),
        {"title": "Chevauchement", "first_year": "2027", "last_year": "2032"},
    )
    assert response.status_code == 200
    assert "chevauche celui du schéma « Schéma 2026-2032 »" in unescape(response.content.decode())
    assert not Scheme.objects.filter(title="Chevauchement").exists()


def test_a_commune_reader_sees_no_draft_and_no_scheme_of_an_epci_their_commune_had_left(
    client, personas, territory, draft_plan
):
    client.force_login(personas.reader_a)
    assert client.get(draft_plan.get_absolute_url()).status_code == 404
    assert "Schéma 2026-2032" not in client.get(reverse("conventions:schemes")).content.decode()
    older = SchemeFactory(
        territory=territory.epci, title="Schéma 2020-2025", first_year=2020, last_year=2025
    )
    SchemeActionFactory(scheme=older, target_year=2021)
    Scheme.objects.filter(pk=older.pk).update(status=SchemeStatus.ADOPTED)
    left = OrganisationFactory(name="Commune partie")
    from datetime import date

    EpciMembershipFactory(
        member=left,
        epci=territory.epci,
        valid_from=date(1999, 1, 1),
        valid_until=date(2005, 12, 31),
    )
    reader = UserFactory(username="lecteur.partie")
    MembershipFactory(user=reader, organisation=left, role=Role.COMMUNE_READER)
    client.force_login(reader)
    assert client.get(older.get_absolute_url()).status_code == 404
    client.force_login(personas.reader_a)
    assert client.get(older.get_absolute_url()).status_code == 200  # A was a member then
