"""Issue 11: the year's usage is loaded as totals summed in the database (values, not model
objects). Every figure must be the one the record-by-record loading gave, to the cent and to the
thousandth of a unit: compared here on a varied year (the demo territory's weighted acts over
twelve months, several records of one month, negative adjustments, a commune joining and
another leaving by avenant in mid-year), on SQLite and on PostgreSQL alike."""

import dataclasses
from collections import defaultdict
from datetime import date
from decimal import Decimal as D

import pytest
import time_machine
from django.db.models import prefetch_related_objects

from conventions.models import (
    AllocationKey,
    Amendment,
    Convention,
    ConventionService,
    Party,
    PartyRole,
    Terms,
    UsageForecast,
)
from conventions.services import amendments
from conventions.services.in_force import presence
from costing import exports, services
from costing.models import UnitCost, UsageRecord, UsageSource
from mutualisation.models import UnitWeight
from mutualisation.rules import Scope
from tests.conftest import run_seed_demo
from tests.costing.conftest import bill, cost_base
from tests.costing.test_avenant_changes import (  # noqa: F401 (commune_c: a fixture)
    TODAY,
    avenant_terms,
    commune_c,
    complete_and_sign,
    joining_avenant,
)
from tests.factories import (
    ConventionFactory,
    EpciMembershipFactory,
    OrganisationFactory,
    ServiceFactory,
    TermsFactory,
)

pytestmark = pytest.mark.django_db

YEAR = 2026
LOAD_YEAR = services.load_year  # the loading under test, before any patch


def load_record_by_record(year, conventions=None):
    """The loading before issue 11: one engine usage per UsageRecord model object."""
    data = LOAD_YEAR(year, conventions)
    per_record = defaultdict(list)
    for record in UsageRecord.objects.filter(
        convention__in=data.conventions, period_start__year=year
    ).select_related("service"):
        per_record[record.convention_id].append(
            services.UsageTotal(
                record.beneficiary_id,
                record.service_id,
                record.service.code,
                record.period_start,
                record.period_end,
                record.units,
                1,
            )
        )
    return dataclasses.replace(data, usage_totals=dict(per_record), period_usages={})


def year_as_data(monkeypatch, *, record_by_record: bool) -> dict:
    if record_by_record:
        with monkeypatch.context() as patched:
            patched.setattr(services, "load_year", load_record_by_record)
            return exports.year_as_dict(services.compute_reimbursements(YEAR))
    return exports.year_as_dict(services.compute_reimbursements(YEAR))


def use(convention, commune, service, month, quantity, *, weight=None, source=UsageSource.GRID):
    start, end = services.month_bounds(YEAR, month)
    return UsageRecord.objects.create(
        convention=convention,
        beneficiary=commune,
        service=service,
        unit_type=service.unit_type,
        weight=weight,
        period_start=start,
        period_end=end,
        quantity=D(quantity),
        units=services.weighted_units(D(quantity), weight),
        source=source,
        reason="Ajustement" if source == UsageSource.ADJUSTMENT else "",
    )


def notified_unit_cost(service) -> UnitCost:
    """The year's unit cost of ``service``, notified in time."""
    return UnitCost.objects.create(
        service=service,
        year=YEAR,
        amount=D("87.37"),
        notification_deadline=date(YEAR, 4, 15),
        notified_on=date(YEAR, 3, 1),
    )


@pytest.fixture
def varied_year(mad_descendante, service_commun, territory, commune_c):  # noqa: F811
    # The factories' references are the demo's: renamed before it is seeded.
    for fixture, reference in ((mad_descendante, "MAD-VARIED"), (service_commun, "SC-VARIED")):
        Convention.objects.filter(pk=fixture.convention.pk).update(reference=reference)
        fixture.convention.refresh_from_db()
    run_seed_demo()
    t = territory
    # A mise à disposition billed monthly, weighted acts, several records a month, adjustments;
    # commune C joins on 1 July.
    mad = bill(mad_descendante.convention, mode="TITRE")
    mad.terms.update(periodicity_months=1)
    service = mad_descendante.service
    notified_unit_cost(service)
    heavy = UnitWeight.objects.create(unit_type=service.unit_type, code="PC", label="PC", weight=1)
    light = UnitWeight.objects.create(
        unit_type=service.unit_type, code="CU", label="CU", weight=D("0.333")
    )
    with time_machine.travel(TODAY):
        joining = amendments.amendment_create(
            convention=mad,
            amendment=Amendment(object="Entrée de la commune C", effective_from=date(YEAR, 7, 1)),
            terms=Terms(
                settlement_mode="TITRE",
                periodicity_months=3,
                instalment_count=2,
                unit_cost_method="Coût du dernier compte administratif divisé par les unités.",
            ),
            joining=[commune_c],
        )
    UsageForecast.objects.create(
        terms=joining.terms,
        service=mad_descendante.line,
        beneficiary=commune_c,
        year=YEAR,
        units=D("50"),
    )
    complete_and_sign(joining, [t.epci, t.commune_a, t.commune_b, commune_c])
    for month in range(1, 13):
        use(mad, t.commune_a, service, month, f"{month}.5", weight=heavy)
        use(mad, t.commune_a, service, month, "7", weight=light, source=UsageSource.IMPORT)
        use(mad, t.commune_b, service, month, "1.001", weight=light)
        if month >= 7:
            use(mad, commune_c, service, month, "3", weight=light)
            use(mad, commune_c, service, month, "2.25", source=UsageSource.IMPORT)
    use(mad, t.commune_a, service, 5, "-2", weight=light, source=UsageSource.ADJUSTMENT)
    # A service commun shared by the units used; commune B leaves on 1 July.
    common = bill(service_commun.convention)
    ConventionService.objects.filter(pk=service_commun.line.pk).update(
        allocation_key=AllocationKey.UNITS
    )
    cost_base(service_commun.line.service, "48611.11")
    leaving = common.parties.get(organisation=t.commune_b)
    with time_machine.travel(TODAY):
        departure = amendments.amendment_create(
            convention=common,
            amendment=Amendment(object="Sortie de la commune B", effective_from=date(YEAR, 7, 1)),
            terms=avenant_terms(),
            leaving=[leaving],
        )
    complete_and_sign(departure, [t.epci, t.commune_a, t.commune_b])
    shared = service_commun.line.service
    for month in range(1, 13):
        use(common, t.commune_a, shared, month, f"{10 + month}.125")
        use(common, t.epci, shared, month, "4.333")
        if month < 7:
            use(common, t.commune_b, shared, month, "6.667")
            use(common, t.commune_b, shared, month, "0.111", source=UsageSource.IMPORT)
    return {"mad": mad, "common": common, "territory": t}


def test_the_year_from_database_totals_equals_the_year_record_by_record(varied_year, monkeypatch):
    summed = year_as_data(monkeypatch, record_by_record=False)
    one_by_one = year_as_data(monkeypatch, record_by_record=True)
    assert summed == one_by_one
    # The year is as varied as it says: many lines and records, weighted thousandths, records
    # added up within a month, the joining and the leaving commune billed for their half-year.
    lines = summed["lines"]
    assert len(lines) > 30
    assert D(summed["totals"]["amount"]) > 0
    assert any(line["usage_count"] > 1 for line in lines)
    assert any(D(line["units"]) % 1 for line in lines)
    mad, common = varied_year["mad"].reference, varied_year["common"].reference
    # Monthly to June, then quarterly under the avenant's terms.
    months = {line["period_start"][5:7] for line in lines if line["convention"] == mad}
    assert months == {"01", "02", "03", "04", "05", "06", "07", "10"}
    joined = [
        line for line in lines if line["convention"] == mad and line["payer"]["name"] == "Commune C"
    ]
    assert joined
    assert min(line["period_start"] for line in joined) == f"{YEAR}-07-01"
    left = [
        line
        for line in lines
        if line["convention"] == common and line["payer"]["name"] == "Commune B"
    ]
    assert left
    assert max(line["period_end"] for line in left) == f"{YEAR}-06-30"


def test_usage_outside_a_partys_time_gives_the_same_finding_either_way(varied_year, monkeypatch):
    t = varied_year["territory"]
    common = varied_year["common"]
    shared = common.services.get().service
    # Commune B has left on 1 July: two records of September and one of October are outside.
    use(common, t.commune_b, shared, 9, "1")
    use(common, t.commune_b, shared, 9, "2", source=UsageSource.IMPORT)
    use(common, t.commune_b, shared, 10, "1")
    summed = year_as_data(monkeypatch, record_by_record=False)
    assert summed == year_as_data(monkeypatch, record_by_record=True)
    [finding] = [
        f
        for f in summed["findings"]
        if f["convention"] == common.reference and f["code"] == "NOT_COMPUTED"
    ]
    assert finding["message"].startswith("3 recours datés hors de la période")
    assert "Commune B 09/2026, Commune B 09/2026, Commune B 10/2026" in finding["message"]


# --- parties read as values ---------------------------------------------------------------------


def load_parties_as_models(year, conventions=None):
    """The loading before parties were read as values: each convention's parties as model
    objects (``convention.parties.all()``), their presence read through their avenants by
    ``presence``, each organisation made the engine's party by ``services.party``."""
    data = LOAD_YEAR(year, conventions)
    prefetch_related_objects(
        data.conventions, "parties__organisation", "parties__joined_by", "parties__left_by"
    )
    covered = {
        c.pk: services.covered_year(
            c,
            year,
            tuple((p, presence(p, start="joined_by", end="left_by")) for p in c.parties.all()),
        )
        for c in data.conventions
    }
    organisations = [p.organisation for c in data.conventions for p in c.parties.all()]
    organisations += [c.managing_organisation for c in data.conventions]
    return dataclasses.replace(
        data,
        covered=covered,
        engine_parties={o.pk: services.party(o) for o in organisations if o is not None},
    )


def test_the_year_from_parties_read_as_values_equals_the_year_from_their_model_objects(
    varied_year, monkeypatch
):
    # A commune that would join the service commun on 1 October by an avenant still a draft:
    # a party on no day of the year.
    common, t = varied_year["common"], varied_year["territory"]
    commune_d = OrganisationFactory(name="Commune D")
    EpciMembershipFactory(member=commune_d, epci=t.epci, valid_from=date(2020, 1, 1))
    with time_machine.travel(TODAY):
        amendments.amendment_create(
            convention=common,
            amendment=Amendment(object="Entrée de la commune D", effective_from=date(YEAR, 10, 1)),
            terms=avenant_terms(),
            joining=[commune_d],
        )
    values, models = services.load_year(YEAR), load_parties_as_models(YEAR)

    def parties(data):
        return {
            pk: [(p.organisation_id, p.role, span) for p, span in covered.parties]
            for pk, covered in data.covered.items()
            if covered is not None
        }

    assert parties(values) == parties(models)
    assert values.engine_parties == models.engine_parties
    # The parties are as varied as the year needs: joining, leaving, never present, an EPCI.
    spans = [span for found in parties(values).values() for _id, _role, span in found]
    assert any(span.since == date(YEAR, 7, 1) for span in spans)
    assert any(span.until == date(YEAR, 7, 1) for span in spans)
    assert any(span.never for span in spans)
    assert any(p.is_epci for p in values.engine_parties.values())
    # Each convention's parties by role then name, which is not the order of their ids.
    assert any(
        [p[0] for p in found] != sorted(p[0] for p in found) for found in parties(values).values()
    )
    # And the year computed from them is the same, line for line.
    with monkeypatch.context() as patched:
        patched.setattr(services, "load_year", load_parties_as_models)
        from_models = exports.year_as_dict(services.compute_reimbursements(YEAR))
    from_values = exports.year_as_dict(services.compute_reimbursements(YEAR))
    assert from_values == from_models
    assert len(from_values["lines"]) > 30
    assert "Commune D" not in {line["payer"]["name"] for line in from_values["lines"]}


def test_the_years_forecasts_are_each_terms_own_of_the_year_only(varied_year):
    # A service and a commune added last, whose names come first; and a forecast of next year.
    mad = varied_year["mad"]
    initial = mad.terms.get(amendment__isnull=True)
    archives = ServiceFactory(name="Archives", provider=varied_year["territory"].epci)
    line = ConventionService.objects.create(
        convention=mad, service=archives, unit_type=archives.unit_type
    )
    for name, year in (("Zélande", YEAR), ("Abbaye", YEAR), ("Ouest", YEAR + 1)):
        UsageForecast.objects.create(
            terms=initial,
            service=line,
            beneficiary=OrganisationFactory(name=name),
            year=year,
            units=D("3"),
        )
    terms = list(Terms.objects.filter(forecasts__year=YEAR).distinct())
    loaded = services.load_forecasts(YEAR, [t.pk for t in terms])
    for t in terms:
        # At most one per service line, beneficiary and year (UsageForecast's constraint):
        # compared as sets, the order changes nothing for the readers.
        assert len(loaded.get(t.pk, [])) == len(set(loaded.get(t.pk, [])))
        assert set(loaded.get(t.pk, [])) == {
            services.Forecast(
                f.service_id, f.beneficiary_id, f.year, f.units, f.fixed_share_percent
            )
            for f in t.forecasts.filter(year=YEAR)
        }
    assert all(f.year == YEAR for found in loaded.values() for f in found)
    assert (
        sum(len(found) for found in loaded.values())
        == UsageForecast.objects.filter(year=YEAR).count()
    )


def as_data(view: dict) -> dict:
    """What a page shows of the year, as plain data (every Decimal as its string)."""
    return {
        "lines": [exports.line_as_dict(line) for line in view["lines"]],
        "borne": [exports.line_as_dict(line) for line in view["borne"]],
        "settlements": [
            exports.settlement_as_dict(row["settlement"]) for row in view["settlements"]
        ],
        "positions": [
            [p.party, str(p.receivable), str(p.payable), str(p.net), str(p.settled)]
            for p in view["positions"]
        ],
        "findings": sorted((f.convention, f.code, f.message) for f in view["findings"]),
        "total": str(view["total"]),
    }


def stored_view(conventions=None, organisation_ids=None) -> dict:
    view = services.stored_visible_part(services.year_results(YEAR, conventions), organisation_ids)
    return {**view, "lines": list(view["lines"])}


def test_the_stored_year_shows_what_computing_it_gives_for_every_scope(varied_year):
    everything = Scope(roles=frozenset(), organisation_ids=frozenset(), is_superuser=True)
    computed = as_data(services.visible_part(services.compute_reimbursements(YEAR), everything))
    assert as_data(stored_view()) == computed  # computed and stored
    assert as_data(stored_view()) == computed  # read back from the database
    # A commune reader's scope: the conventions it is party to, its own rows in them.
    commune_a = varied_year["territory"].commune_a
    theirs = Convention.objects.filter(parties__organisation=commune_a).distinct()
    assert as_data(stored_view(theirs, {commune_a.pk})) == as_data(
        services.visible_part(
            services.compute_reimbursements(YEAR, theirs),
            Scope(roles=frozenset({"COMMUNE_READER"}), organisation_ids=frozenset({commune_a.pk})),
        )
    )


# --- usage summed per reimbursement period in the database ------------------------------------


def use_days(convention, commune, service, start, end, quantity, *, source=UsageSource.IMPORT):
    """A record over any run of days (an import may date one from mid-month)."""
    return UsageRecord.objects.create(
        convention=convention,
        beneficiary=commune,
        service=service,
        unit_type=service.unit_type,
        period_start=start,
        period_end=end,
        quantity=D(quantity),
        units=D(quantity),
        source=source,
        reason="Ajustement" if source == UsageSource.ADJUSTMENT else "",
    )


@pytest.fixture
def whole_years(mad_descendante, service_commun, territory):
    """Two conventions covering all of 2026 under one set of terms, no avenant (summed per
    period): a mise à disposition billed quarterly, and a service commun shared by the units
    used, billed every five months (periods of five, five and two months). A third one starts
    on 15 March (read per month). Several records a month, weighted thousandths, a record
    starting mid-month, an adjustment leaving a month (not its period) below zero."""
    t = territory
    mad = bill(mad_descendante.convention, mode="TITRE")
    mad.terms.update(periodicity_months=3)
    service = mad_descendante.service
    notified_unit_cost(service)
    light = UnitWeight.objects.create(
        unit_type=service.unit_type, code="CU", label="CU", weight=D("0.333")
    )
    for month in range(1, 13):
        use(mad, t.commune_a, service, month, f"{month}.5")
        use(mad, t.commune_a, service, month, "7", weight=light, source=UsageSource.IMPORT)
        if month % 4:
            use(mad, t.commune_b, service, month, "1.001", weight=light)
    use_days(mad, t.commune_b, service, date(YEAR, 6, 17), date(YEAR, 6, 30), "2.125")
    use(mad, t.commune_a, service, 5, "-9", source=UsageSource.ADJUSTMENT)
    common = bill(service_commun.convention)
    common.terms.update(periodicity_months=5)
    ConventionService.objects.filter(pk=service_commun.line.pk).update(
        allocation_key=AllocationKey.UNITS
    )
    cost_base(service_commun.line.service, "48611.11")
    shared = service_commun.line.service
    for month in range(1, 13):
        use(common, t.commune_a, shared, month, f"{10 + month}.125")
        use(common, t.epci, shared, month, "4.333")
        if month < 11:
            use(common, t.commune_b, shared, month, "6.667", source=UsageSource.IMPORT)
    late = ConventionFactory(reference="MAD-MARCH", start_date=date(YEAR, 3, 15))
    Party.objects.create(convention=late, organisation=t.epci, role=PartyRole.PROVIDER)
    Party.objects.create(convention=late, organisation=t.commune_a, role=PartyRole.BENEFICIARY)
    ConventionService.objects.create(convention=late, service=service, unit_type=service.unit_type)
    TermsFactory(convention=late, periodicity_months=3)
    late = bill(late, mode="TITRE")
    for month in range(2, 13):  # February's record ends before the start: not billed
        use(late, t.commune_a, service, month, f"{month}.25")
    return {"mad": mad, "common": common, "late": late}


def test_a_whole_year_without_avenant_is_summed_per_period_as_its_records_add_up(
    whole_years, monkeypatch
):
    mad, common, late = whole_years["mad"], whole_years["common"], whole_years["late"]
    data = services.load_year(YEAR)

    def summed(convention):
        return services.summed_periods(data.covered[convention.pk])

    assert summed(mad)[0] == 3
    assert summed(common)[0] == 5
    assert summed(late) is None
    # One usage per payer, service and period, dated by the period's first day, ready for the
    # engine; the late one's per month.
    assert {u.day for u in data.period_usages[mad.pk]} == {date(YEAR, m, 1) for m in (1, 4, 7, 10)}
    assert len(data.period_usages[mad.pk]) == 2 * 4
    assert sum(u.count for u in data.period_usages[mad.pk]) == 12 * 2 + 9 + 1 + 1
    assert {u.day for u in data.period_usages[common.pk]} == {
        date(YEAR, 1, 1),
        date(YEAR, 6, 1),
        date(YEAR, 11, 1),
    }
    assert len(data.period_usages[common.pk]) == 3 + 3 + 2
    assert mad.pk not in data.usage_totals
    assert common.pk not in data.usage_totals
    assert late.pk not in data.period_usages
    assert len(data.usage_totals[late.pk]) == 11
    # And the year is the one computed record by record, to the cent and the thousandth.
    summed = year_as_data(monkeypatch, record_by_record=False)
    assert summed == year_as_data(monkeypatch, record_by_record=True)
    lines = summed["lines"]
    assert {line["convention"] for line in lines} == {
        mad.reference,
        common.reference,
        late.reference,
    }
    assert any(line["usage_count"] > 3 for line in lines)
    late_starts = {line["period_start"] for line in lines if line["convention"] == late.reference}
    assert min(late_starts) == f"{YEAR}-03-15"


def test_an_avenant_changing_the_terms_in_the_year_keeps_the_reading_per_month(
    whole_years, monkeypatch
):
    mad = whole_years["mad"]
    with time_machine.travel(TODAY):
        monthly = amendments.amendment_create(
            convention=mad,
            amendment=Amendment(object="Facturation mensuelle", effective_from=date(YEAR, 8, 1)),
            terms=Terms(
                settlement_mode="TITRE",
                periodicity_months=1,
                instalment_count=2,
                unit_cost_method="Coût du dernier compte administratif divisé par les unités.",
            ),
        )
    complete_and_sign(monthly, [p.organisation for p in mad.parties.all()])
    data = services.load_year(YEAR)
    assert services.summed_periods(data.covered[mad.pk]) is None
    # Per month: commune A's records of a month are one total (May's adjustment included),
    # commune B's from 17 June stands apart from its month.
    assert len(data.usage_totals[mad.pk]) == 12 + 9 + 1
    summed = year_as_data(monkeypatch, record_by_record=False)
    assert summed == year_as_data(monkeypatch, record_by_record=True)
    starts = {
        line["period_start"] for line in summed["lines"] if line["convention"] == mad.reference
    }
    assert starts == {
        f"{YEAR}-{m}"
        for m in ("01-01", "04-01", "07-01", "08-01", "09-01", "10-01", "11-01", "12-01")
    }
