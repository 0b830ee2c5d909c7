"""A party's or a service line's presence read once from its avenants (``in_force.presence``)
says, for every day, what ``present_on`` says day by day: the year's computation asks it for
each usage total instead of reading the avenants again."""

from datetime import date, timedelta

import pytest

from conventions.models import Amendment, ConventionService, Party
from conventions.services.in_force import ALWAYS, presence, present_on

SIGNED = Amendment.AmendmentStatus.SIGNED
DRAFT = Amendment.AmendmentStatus.DRAFT

JOINING = date(2026, 4, 1)
LEAVING = date(2026, 10, 1)


def avenant(status, effective_from):
    return Amendment(status=status, effective_from=effective_from, object="Avenant")


def days():
    day = date(2025, 12, 30)
    while day <= date(2027, 1, 2):
        yield day
        day += timedelta(days=1)


@pytest.mark.parametrize("joined", [None, SIGNED, DRAFT])
@pytest.mark.parametrize("left", [None, SIGNED, DRAFT])
def test_a_partys_presence_is_present_on_for_every_day(joined, left):
    party = Party(
        joined_by=avenant(joined, JOINING) if joined else None,
        left_by=avenant(left, LEAVING) if left else None,
    )
    span = presence(party, start="joined_by", end="left_by")
    for day in days():
        assert span.on(day) == present_on(party, day, start="joined_by", end="left_by"), day


@pytest.mark.parametrize("added", [None, SIGNED, DRAFT])
@pytest.mark.parametrize("removed", [None, SIGNED, DRAFT])
def test_a_service_lines_presence_is_present_on_for_every_day(added, removed):
    line = ConventionService(
        added_by=avenant(added, JOINING) if added else None,
        removed_by=avenant(removed, LEAVING) if removed else None,
    )
    span = presence(line, start="added_by", end="removed_by")
    for day in days():
        assert span.on(day) == present_on(line, day, start="added_by", end="removed_by"), day


def test_a_party_joining_by_a_signed_avenant_is_present_from_its_effective_date_only():
    party = Party(joined_by=avenant(SIGNED, JOINING), left_by=avenant(SIGNED, LEAVING))
    span = presence(party, start="joined_by", end="left_by")
    assert not span.on(JOINING - timedelta(days=1))
    assert span.on(JOINING)
    assert span.on(LEAVING - timedelta(days=1))
    assert not span.on(LEAVING)
    assert span != ALWAYS


def test_an_original_party_is_always_present_and_a_draft_avenants_never():
    assert presence(Party(), start="joined_by", end="left_by") == ALWAYS
    drafted = presence(Party(joined_by=avenant(DRAFT, JOINING)), start="joined_by", end="left_by")
    assert not any(drafted.on(day) for day in days())
