"""generate_territory: a synthetic France, valid, reproducible, and computable (issue 11)."""

import io
import json
import os
from collections import Counter
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Sum

from conventions.models import (
    Convention,
    ConventionKind,
    ConventionService,
    Deliberation,
    Party,
    Terms,
    UsageForecast,
)
from costing import engine, services, statements, territory
from costing.models import CostBase, UnitCost, UsageRecord
from mutualisation.models import (
    Membership,
    Organisation,
    OrganisationKind,
    PopulationRecord,
    Role,
    Service,
)
from mutualisation.validators import luhn_is_valid

SCALE = 0.001  # one EPCI, 35 communes, about a hundred conventions
YEAR = 2025


def fingerprint() -> dict:
    """What two generations with the same seed must share: counts and sums, not primary keys."""
    return {
        "organisations": sorted(Organisation.objects.values_list("siren", "insee_code", "name")),
        "conventions": Convention.objects.count(),
        "kinds": Counter(Convention.objects.values_list("kind", flat=True)),
        "usage_rows": UsageRecord.objects.count(),
        "units": UsageRecord.objects.aggregate(total=Sum("units"))["total"],
        "unit_costs": UnitCost.objects.aggregate(total=Sum("amount"))["total"],
        "populations": PopulationRecord.objects.aggregate(total=Sum("municipal"))["total"],
        "forecasts": UsageForecast.objects.aggregate(total=Sum("units"))["total"],
    }


class Rollback(Exception):
    pass


def generated_then_rolled_back(seed: int) -> dict:
    try:
        with transaction.atomic():
            territory.generate(scale=SCALE, seed=seed, year=YEAR)
            result = fingerprint()
            raise Rollback
    except Rollback:
        return result


@pytest.fixture
def generated(db):
    out = io.StringIO()
    call_command("generate_territory", "--scale", str(SCALE), "--year", str(YEAR), stdout=out)
    return out.getvalue()


def test_the_same_seed_generates_the_same_territory(db):
    first = generated_then_rolled_back(seed=7)
    assert Organisation.objects.count() == 0
    second = generated_then_rolled_back(seed=7)
    assert first == second
    assert first["usage_rows"] > 0
    assert first["units"] > 0


def test_another_seed_generates_another_territory(db):
    assert (
        generated_then_rolled_back(seed=1)["units"] != generated_then_rolled_back(seed=2)["units"]
    )


def test_identifiers_are_valid_and_unique(generated):
    sirens = list(Organisation.objects.values_list("siren", flat=True))
    assert all(luhn_is_valid(siren) and len(siren) == 9 for siren in sirens)
    assert len(set(sirens)) == len(sirens)
    codes = list(Organisation.objects.communes().values_list("insee_code", flat=True))
    assert len(set(codes)) == len(codes) == round(territory.FRANCE_COMMUNES * SCALE)
    assert Organisation.objects.epcis().count() == 1
    codes = list(Service.objects.values_list("code", flat=True))
    assert len(set(codes)) == len(codes)


def test_a_sample_of_every_model_passes_full_clean(generated):
    samples = [
        *Organisation.objects.epcis(),
        *Organisation.objects.communes()[:5],
        *PopulationRecord.objects.all()[:3],
        *Service.objects.all()[:3],
        *CostBase.objects.all()[:2],
        *UnitCost.objects.all()[:2],
        *Membership.objects.all(),
    ]
    for kind in ConventionKind.values:
        convention = Convention.objects.filter(kind=kind).first()
        if convention is None:
            continue
        samples += [
            convention,
            *Party.objects.filter(convention=convention),
            *ConventionService.objects.filter(convention=convention),
            *Terms.objects.filter(convention=convention),
            *UsageForecast.objects.filter(terms__convention=convention),
            *Deliberation.objects.filter(convention=convention),
            *UsageRecord.objects.filter(convention=convention)[:3],
        ]
    for obj in samples:
        obj.full_clean()


def test_conventions_of_every_kind_are_in_force_with_their_usage(generated):
    kinds = set(Convention.objects.values_list("kind", flat=True))
    assert {ConventionKind.MISE_A_DISPOSITION, ConventionKind.SERVICE_COMMUN} <= kinds
    assert ConventionKind.PRESTATION in kinds
    keys = set(ConventionService.objects.values_list("allocation_key", flat=True))
    assert keys == {"", "UNITS", "POPULATION", "FIXED_SHARES"}
    assert set(Convention.objects.values_list("status", flat=True)) == {"IN_FORCE"}
    ascending = Convention.objects.filter(
        parties__role="BENEFICIARY", parties__organisation__kind=OrganisationKind.EPCI
    )
    assert ascending.exists()  # the central town serves the EPCI
    per_convention = UsageRecord.objects.count() / Convention.objects.count()
    assert 60 < per_convention < 180  # about 120 rows per convention-year (issue 11)


def test_the_year_computes_without_engine_errors(generated):
    computed = services.compute_reimbursements(YEAR)
    assert not [f for f in computed.findings if f.code == "NOT_COMPUTED"]
    assert len(computed.conventions) == Convention.objects.count()
    bases = {line.basis for line in computed.result.lines}
    assert engine.BASIS_UNIT_COST in bases
    assert len(bases) > 1
    units = sum(
        (line.units for line in computed.result.lines if line.basis == engine.BASIS_UNIT_COST),
        start=0,
    )
    unit_cost_rows = UsageRecord.objects.filter(convention__services__allocation_key="").aggregate(
        total=Sum("units")
    )["total"]
    assert units == unit_cost_rows


def test_statements_are_prepared_and_rendered(generated):
    conventions = Convention.objects.filter(
        pk__in=[
            Convention.objects.filter(kind=kind).first().pk
            for kind in ConventionKind.values
            if Convention.objects.filter(kind=kind).exists()
        ]
    )
    drafts = statements.statements_prepare(YEAR, conventions)
    assert drafts
    assert statements.render_statement_pdf(drafts[0]).startswith(b"%PDF")


def test_each_territory_has_a_manager_and_a_finance_agent_without_password(generated):
    epci = Organisation.objects.epcis().get()
    roles = set(Membership.objects.filter(organisation=epci).values_list("role", flat=True))
    assert roles == {Role.MANAGER, Role.FINANCE}
    assert not any(user.has_usable_password() for user in get_user_model().objects.all())


def test_a_password_makes_the_accounts_usable(db):
    call_command(
        "generate_territory", "--scale", "0.0005", "--password", "banc-de-mesure-2026",
        stdout=io.StringIO(),
    )  # fmt: skip
    user = get_user_model().objects.get(username="finances.t0001")
    assert user.check_password("banc-de-mesure-2026")


def test_a_database_already_generated_is_refused(generated):
    with pytest.raises(CommandError, match="déjà"):
        call_command("generate_territory", "--scale", str(SCALE), stdout=io.StringIO())


def test_the_benchmark_probe_reports_the_engine_sums_of_the_generated_year(db):
    """benchmark_scale's year probe (its figures are measured, never asserted): the units it
    reports for the unit-cost lines are those of the usage rows."""
    territory.generate(scale=0.0005, seed=3, year=YEAR)
    out = io.StringIO()
    call_command("benchmark_scale", "--probe", "year", "--year", str(YEAR), stdout=out)
    measured = json.loads(out.getvalue())
    assert measured["not_computed"] == 0
    assert measured["conventions"] == Convention.objects.count()
    reported = sum(Decimal(units) for _payer, _service, units in measured["units"])
    rows = UsageRecord.objects.filter(convention__services__allocation_key="").aggregate(
        total=Sum("units")
    )["total"]
    assert reported == rows


def test_the_benchmarks_peak_memory_is_the_probes_own_not_its_parents():
    """Before: a probe reported ``ru_maxrss``, which Linux carries over a fork and an exec from
    the parent: every probe started after the benchmark's process had grown reported the
    benchmark's own size (a summary PDF « 902 MiB » that measured 209 MiB alone)."""
    import subprocess
    import sys

    from costing.management.commands import benchmark_scale

    grown = bytearray(160 * 1024 * 1024)
    grown[::4096] = b"\x01" * len(grown[::4096])  # the pages touched: resident
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup();"
            "from costing.management.commands.benchmark_scale import peak_memory_kib;"
            "print(peak_memory_kib())",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "mutualisation.settings"},
    )
    assert benchmark_scale.peak_memory_kib() > 160 * 1024
    assert int(child.stdout) < 160 * 1024
    del grown
