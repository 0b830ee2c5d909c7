"""The schéma de mutualisation (L5211-39-1): consultation of the municipal councils for three
months, approval by the EPCI's council, progress of its actions."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError

from conventions.models import (
    ActionStatus,
    Horizon,
    Opinion,
    Scheme,
    SchemeOpinion,
    SchemeStatus,
    Status,
)
from conventions.services import TransitionRefused
from conventions.services import scheme as schemes
from tests.factories import (
    ConventionFactory,
    EpciFactory,
    EpciMembershipFactory,
    OrganisationFactory,
    SchemeActionFactory,
    SchemeFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted(territory):
    plan = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=plan)
    return schemes.scheme_submit(plan, on=date(2026, 7, 3))


def test_a_scheme_without_actions_cannot_be_submitted(territory):
    plan = SchemeFactory(territory=territory.epci)
    with pytest.raises(TransitionRefused) as refused:
        schemes.scheme_submit(plan, on=date(2026, 7, 3))
    assert refused.value.missing == ["Le projet de schéma ne prévoit aucune action."]
    plan.refresh_from_db()
    assert plan.status == SchemeStatus.DRAFT


def test_a_draft_scheme_cannot_be_adopted_before_the_communes_are_consulted(territory):
    plan = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=plan)
    with pytest.raises(TransitionRefused) as refused:
        schemes.scheme_adopt(plan, on=date(2026, 10, 15), number="42")
    assert "transmis aux conseils municipaux" in refused.value.missing[0]


def test_adoption_within_three_months_is_refused_naming_every_commune_still_awaited(
    territory, submitted
):
    SchemeOpinion.objects.create(
        scheme=submitted,
        commune=territory.commune_a,
        date=date(2026, 9, 1),
        opinion=Opinion.FAVOURABLE,
    )
    with pytest.raises(TransitionRefused) as refused:
        schemes.scheme_adopt(submitted, on=date(2026, 10, 1), number="")
    missing = refused.value.missing
    assert "Avis attendu des conseils municipaux de : Commune B" in missing[0]
    assert "Commune A" not in missing[0]
    assert "03/10/2026" in missing[0]  # three months after the transmission of 3 July
    assert missing[1] == "Indiquez le numéro de la délibération d'approbation."
    submitted.refresh_from_db()
    assert submitted.status == SchemeStatus.CONSULTATION


def test_after_three_months_a_silent_council_is_deemed_favourable_and_the_scheme_adopted(
    territory, submitted
):
    on = date(2026, 10, 4)
    opinions = {entry.commune.name: entry.opinion for entry in schemes.consultation(submitted, on)}
    assert opinions == {"Commune A": schemes.DEEMED, "Commune B": schemes.DEEMED}
    adopted = schemes.scheme_adopt(submitted, on=on, number="2026-042")
    assert (adopted.status, adopted.adopted_on, adopted.deliberation_number) == (
        SchemeStatus.ADOPTED,
        on,
        "2026-042",
    )


def test_every_opinion_given_lets_the_council_adopt_before_the_three_months(territory, submitted):
    for commune in (territory.commune_a, territory.commune_b):
        SchemeOpinion.objects.create(
            scheme=submitted, commune=commune, date=date(2026, 9, 1), opinion=Opinion.UNFAVOURABLE
        )
    assert schemes.scheme_adopt(submitted, on=date(2026, 9, 2), number="7").status == (
        SchemeStatus.ADOPTED
    )


def test_the_consultation_asks_the_communes_members_on_the_day_of_transmission(territory):
    late = OrganisationFactory(name="Commune entrée en 2027")
    EpciMembershipFactory(member=late, epci=territory.epci, valid_from=date(2027, 1, 1))
    plan = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=plan)
    plan = schemes.scheme_submit(plan, on=date(2026, 7, 3))
    names = [e.commune.name for e in schemes.consultation(plan, date(2026, 8, 1))]
    assert names == ["Commune A", "Commune B"]


def test_a_commune_gives_one_opinion_per_scheme(territory, submitted):
    SchemeOpinion.objects.create(
        scheme=submitted,
        commune=territory.commune_a,
        date=date(2026, 9, 1),
        opinion=Opinion.FAVOURABLE,
    )
    with pytest.raises(IntegrityError):
        SchemeOpinion.objects.create(
            scheme=submitted,
            commune=territory.commune_a,
            date=date(2026, 9, 2),
            opinion=Opinion.UNFAVOURABLE,
        )


def test_the_database_refuses_a_mandate_ending_before_it_starts(territory):
    with pytest.raises(IntegrityError):
        Scheme.objects.create(territory=territory.epci, title="x", first_year=2032, last_year=2026)


def test_progress_counts_actions_by_horizon_and_the_communes_a_signed_convention_realises(
    territory,
):
    plan = SchemeFactory(territory=territory.epci)
    done = SchemeActionFactory(
        scheme=plan,
        status=ActionStatus.DONE,
        expected_fte_change=Decimal("-1.50"),
        expected_cost_change=Decimal("-40000.00"),
    )
    done.communes.set([territory.commune_a, territory.commune_b])
    convention = ConventionFactory(territory=territory.epci, status=Status.IN_FORCE)
    convention.parties.create(organisation=territory.commune_a, role="BENEFICIARY")
    done.conventions.set([convention])
    SchemeActionFactory(
        scheme=plan,
        horizon=Horizon.LONG,
        target_year=2031,
        status=ActionStatus.ABANDONED,
        expected_cost_change=Decimal("-99999.00"),
    )
    progress = schemes.scheme_progress(plan)
    short, medium, long = progress.horizons
    assert [p.realised_communes for p in short.actions] == [1]
    assert short.counts[ActionStatus.DONE] == 1
    assert not medium.actions
    assert long.counts[ActionStatus.ABANDONED] == 1
    # an abandoned action's expected effect no longer counts
    assert (progress.expected_fte_change, progress.expected_cost_change) == (
        Decimal("-1.50"),
        Decimal("-40000.00"),
    )
    # a commune reader's view: the actions concerning their commune, and only it
    mine = schemes.scheme_progress(plan, communes={territory.commune_b.pk})
    assert [[c.name for c in p.communes] for p in mine.horizons[0].actions] == [["Commune B"]]
    assert mine.horizons[2].actions == []


def test_the_demo_territory_has_an_adopted_scheme_with_actions_at_every_horizon():
    from tests.conftest import run_seed_demo

    run_seed_demo()
    plan = Scheme.objects.get()
    assert plan.status == SchemeStatus.ADOPTED
    assert {a.horizon for a in plan.actions.all()} == set(Horizon.values)
    assert {a.status for a in plan.actions.all()} == set(ActionStatus.values)
    run_seed_demo()
    assert Scheme.objects.count() == 1


def test_the_consultation_lists_the_communes_in_french_order(territory):
    for name in ("Cournon-d'Auvergne", "Cébazat", "Ceyrat"):
        EpciMembershipFactory(
            member=OrganisationFactory(name=name), epci=territory.epci, valid_from=date(2020, 1, 1)
        )
    plan = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=plan)
    plan = schemes.scheme_submit(plan, on=date(2026, 7, 3))
    names = [e.commune.name for e in schemes.consultation(plan, date(2026, 8, 1))]
    assert names == [
        "Cébazat",
        "Ceyrat",
        "Commune A",
        "Commune B",
        "Cournon-d'Auvergne",
    ]


# --- defects found by the review of issue 14 ----------------------------------------------------


def test_an_approval_cannot_rest_on_opinions_given_after_its_date(territory):
    plan = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=plan)
    plan = schemes.scheme_submit(plan, on=date(2026, 1, 5))
    for commune in (territory.commune_a, territory.commune_b):
        SchemeOpinion.objects.create(
            scheme=plan, commune=commune, date=date(2026, 3, 20), opinion=Opinion.FAVOURABLE
        )
    with pytest.raises(TransitionRefused) as refused:
        schemes.scheme_adopt(plan, on=date(2026, 2, 1), number="12")
    assert "Commune A, Commune B" in refused.value.missing[0]
    assert schemes.scheme_adopt(plan, on=date(2026, 3, 21), number="12").status == (
        SchemeStatus.ADOPTED
    )


def test_an_opinion_given_after_the_three_months_leaves_the_council_deemed_favourable(territory):
    plan = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=plan)
    plan = schemes.scheme_submit(plan, on=date(2026, 1, 5))
    SchemeOpinion.objects.create(
        scheme=plan,
        commune=territory.commune_a,
        date=date(2026, 11, 1),
        opinion=Opinion.UNFAVOURABLE,
    )
    entry = next(
        e for e in schemes.consultation(plan, date(2026, 11, 2)) if e.commune == territory.commune_a
    )
    assert entry.opinion == schemes.DEEMED
    assert "hors délai" in entry.label


@pytest.mark.parametrize(
    ("on", "expected"),
    [
        (date(1900, 1, 1), "date"),
        (date(2025, 12, 31), "avant le début du mandat"),
    ],
)
def test_a_transmission_before_the_mandate_is_refused(territory, on, expected):
    plan = SchemeFactory(territory=territory.epci)
    SchemeActionFactory(scheme=plan)
    with pytest.raises(TransitionRefused) as refused:
        schemes.scheme_submit(plan, on=on)
    assert expected in " ".join(refused.value.missing)
    plan.refresh_from_db()
    assert plan.submitted_on is None


def test_a_transmission_on_a_day_the_territory_had_no_member_is_refused(territory):
    from conventions.models import Scheme as SchemeModel

    plan = SchemeModel.objects.create(
        territory=EpciFactory(name="EPCI sans membre"),
        title="x",
        first_year=2026,
        last_year=2032,
    )
    SchemeActionFactory(scheme=plan)
    with pytest.raises(TransitionRefused) as refused:
        schemes.scheme_submit(plan, on=date(2026, 7, 1))
    assert "aucune commune membre" in refused.value.missing[0]


def test_the_report_follows_the_approved_scheme_over_a_draft_of_the_same_years(territory):
    adopted = SchemeFactory(territory=territory.epci, first_year=2026, last_year=2032)
    Scheme.objects.filter(pk=adopted.pk).update(
        status=SchemeStatus.ADOPTED, submitted_on=date(2026, 7, 1), adopted_on=date(2026, 10, 1)
    )
    SchemeFactory(territory=territory.epci, first_year=2027, last_year=2032)
    assert schemes.current_scheme(territory.epci, 2027) == adopted


def test_the_communes_of_an_action_read_in_french_order(territory):
    plan = SchemeFactory(territory=territory.epci)
    action = SchemeActionFactory(scheme=plan)
    action.communes.set(
        [OrganisationFactory(name=n) for n in ("Ceyrat", "Cébazat", "Cournon-d'Auvergne")]
    )
    [entry] = schemes.scheme_progress(plan).horizons[0].actions
    assert [c.name for c in entry.communes] == ["Cébazat", "Ceyrat", "Cournon-d'Auvergne"]


def test_a_commune_a_draft_avenant_would_bring_in_is_not_yet_realised(territory):
    """« sous convention signée » : the commune an avenant not signed yet would add to the
    convention is a project; the one a signed avenant brings in counts, even before its date."""
    from conventions.models import Amendment, Party

    plan = SchemeFactory(territory=territory.epci)
    action = SchemeActionFactory(scheme=plan, status=ActionStatus.PREPARING)
    action.communes.set([territory.commune_a, territory.commune_b])
    convention = ConventionFactory(territory=territory.epci, status=Status.IN_FORCE)
    draft = Amendment.objects.create(
        convention=convention, number=1, object="Entrée de A", effective_from=date(2026, 1, 1)
    )
    Party.objects.create(
        convention=convention,
        organisation=territory.commune_a,
        role="BENEFICIARY",
        joined_by=draft,
    )
    action.conventions.set([convention])
    [entry] = schemes.scheme_progress(plan).horizons[0].actions
    assert entry.realised_communes == 0

    Amendment.objects.filter(pk=draft.pk).update(
        status=Amendment.AmendmentStatus.SIGNED, effective_from=date(2099, 1, 1)
    )
    [entry] = schemes.scheme_progress(plan).horizons[0].actions
    assert entry.realised_communes == 1
