"""Measure the year's computation and the pages that show it on a synthetic territory (issue 11):
each figure beside its floor, measured in the same run. Nothing is timed in the test suite; this
command reports.

    DATABASE_URL=postgres://…/mutualis_bench DJANGO_DEBUG=true \\
        python manage.py benchmark_year --build --conventions 600 --communes 8

``--build`` adds the synthetic territory (bulk inserts, references BENCH-…) to the database
named by DATABASE_URL when it is not there yet: never point it at a real one."""

import statistics
import time
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Sum
from django.test import Client
from django.test.utils import CaptureQueriesContext, override_settings
from django.urls import reverse

from conventions.models import (
    Convention,
    ConventionKind,
    ConventionService,
    Party,
    PartyRole,
    SettlementMode,
    Status,
    Terms,
    UsageForecast,
)
from costing import engine, services
from costing.models import UnitCost, UsageRecord, UsageSource
from mutualisation.models import (
    EpciNature,
    Membership,
    Organisation,
    OrganisationKind,
    Role,
    Service,
    ServiceKind,
    TaxRegime,
    Unit,
    UnitType,
)

PREFIX = "BENCH"


def luhn_siren(seed: int) -> str:
    stem = f"{seed % 10**8:08d}"
    for digit in range(10):
        candidate = stem + str(digit)
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError


def timed(function, runs: int = 3):
    """(median seconds, last result) over ``runs`` calls."""
    durations, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations), result


class Command(BaseCommand):
    help = (
        "Mesure le calcul de l'exercice et les pages remboursements et tableau de bord sur un "
        "territoire synthétique (--build le crée)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--year", type=int, default=2026)
        parser.add_argument("--build", action="store_true")
        parser.add_argument("--conventions", type=int, default=600)
        parser.add_argument("--communes", type=int, default=8, help="communes per convention")
        parser.add_argument("--pool", type=int, default=400, help="communes of the territory")
        parser.add_argument("--runs", type=int, default=3)

    def handle(self, *args, **options):
        year = options["year"]
        if (
            options["build"]
            and not Convention.objects.filter(reference__startswith=PREFIX).exists()
        ):
            self.build(year, options["conventions"], options["communes"], options["pool"])
        if not Convention.objects.filter(reference__startswith=PREFIX).exists():
            raise CommandError("Pas de territoire synthétique : relancez avec --build.")
        runs = options["runs"]
        out = self.stdout.write
        records = UsageRecord.objects.filter(period_start__year=year)
        out(
            f"base {connection.vendor} ; {Convention.objects.count()} conventions, "
            f"{records.count()} recours {year}"
        )
        floor, _ = timed(
            lambda: list(
                records.order_by()
                .values_list("beneficiary_id", "service_id")
                .annotate(Sum("units"))
            ),
            runs,
        )
        out(f"plancher SUM(units) GROUP BY bénéficiaire, service : {floor * 1000:.0f} ms")
        objects, _ = timed(lambda: list(records.select_related("service", "weight")), runs)
        out(f"objets UsageRecord (select_related service, weight) : {objects * 1000:.0f} ms")
        computation, computed = timed(lambda: services.compute_reimbursements(year), runs)
        out(
            f"compute_reimbursements({year}) : {computation * 1000:.0f} ms "
            f"({computation / floor:.1f}× le plancher) ; {len(computed.result.lines)} lignes, "
            f"total {computed.result.total} €"
        )
        self.engine_scaling(year, out)
        self.pages(year, runs, out)

    def engine_scaling(self, year, out):
        sizes = {}
        for reference in (f"{PREFIX}-SMALL", f"{PREFIX}-LARGE"):
            inputs = services.year_inputs(year, Convention.objects.filter(reference=reference))
            if not inputs.conventions:
                return
            [convention_in] = inputs.conventions
            seconds, _ = timed(lambda c=convention_in: engine.compute_year(year, [c]), 3)
            sizes[reference] = (len(convention_in.payers), seconds)
        (small_n, small_s), (large_n, large_s) = sizes.values()
        out(
            f"moteur, une convention : {small_n} communes {small_s * 1000:.1f} ms, "
            f"{large_n} communes {large_s * 1000:.1f} ms ({large_s / small_s:.0f}× pour "
            f"{large_n / small_n:.0f}× les communes)"
        )

    def pages(self, year, runs, out):
        user = get_user_model().objects.get(username=f"{PREFIX.lower()}.finances")
        client = Client()
        client.force_login(user)
        with override_settings(ALLOWED_HOSTS=["*"], SECURE_SSL_REDIRECT=False):
            for name in ("costing:reimbursements", "costing:dashboard"):
                url = reverse(name, args=[year])
                client.get(url)  # a first view stores the year where results are stored
                durations = []
                for _ in range(runs):
                    with CaptureQueriesContext(connection) as queries:
                        start = time.perf_counter()
                        response = client.get(url)
                        durations.append(time.perf_counter() - start)
                assert response.status_code == 200, response.status_code
                out(
                    f"{url} : {statistics.median(durations) * 1000:.0f} ms, "
                    f"{len(response.content) / 1024:.0f} Kio, {len(queries)} requêtes"
                )

    @transaction.atomic
    def build(self, year, count, per_convention, pool):
        unit_type = UnitType.objects.create(
            code=f"{PREFIX.lower()}-heure", label="Heure (banc d'essai)", unit=Unit.HOUR
        )
        epci = Organisation.objects.create(
            kind=OrganisationKind.EPCI,
            name="Métropole du banc d'essai",
            siren=luhn_siren(97000000),
            epci_nature=EpciNature.METRO,
            tax_regime=TaxRegime.FPU,
            public_accountant="SGC du banc d'essai",
            # Beside the deployment's EPCI, which may number with the defaults (CONV, EA).
            reference_prefix=PREFIX,
            statement_prefix=f"EA{PREFIX}",
        )
        communes = Organisation.objects.bulk_create(
            Organisation(
                kind=OrganisationKind.COMMUNE,
                name=f"Commune {i:04d} du banc",
                siren=luhn_siren(97100000 + i),
                insee_code=f"{97000 + i % 1000:05d}",
                representative_title="Le Maire",
            )
            for i in range(max(pool, 112))
        )
        services_pool = Service.objects.bulk_create(
            Service(
                code=f"{PREFIX.lower()}-service-{i}",
                name=f"Service {i} du banc",
                provider=epci,
                kind=ServiceKind.FUNCTIONAL,
                unit_type=unit_type,
            )
            for i in range(20)
        )
        UnitCost.objects.bulk_create(
            UnitCost(
                service=service,
                year=year,
                version=1,
                amount=Decimal("37.45") + i,
                notification_deadline=date(year, 4, 15),
                notified_on=date(year, 3, 2),
            )
            for i, service in enumerate(services_pool)
        )
        plans = [
            (f"{PREFIX}-{n:05d}", [communes[(n * 7 + k) % pool] for k in range(per_convention)])
            for n in range(count)
        ]
        plans.append((f"{PREFIX}-SMALL", communes[:7]))
        plans.append((f"{PREFIX}-LARGE", communes[:112]))
        conventions = Convention.objects.bulk_create(
            Convention(
                reference=reference,
                title=f"Mise à disposition {reference}",
                kind=ConventionKind.MISE_A_DISPOSITION,
                object="Mise à disposition de services (banc d'essai).",
                status=Status.IN_FORCE,
                start_date=date(year - 1, 1, 1),
                signature_date=date(year - 2, 12, 1),
            )
            for reference, _members in plans
        )
        Party.objects.bulk_create(
            [Party(convention=c, organisation=epci, role=PartyRole.PROVIDER) for c in conventions]
            + [
                Party(convention=c, organisation=m, role=PartyRole.BENEFICIARY)
                for c, (_ref, members) in zip(conventions, plans, strict=True)
                for m in members
            ]
        )
        terms = Terms.objects.bulk_create(
            Terms(
                convention=c,
                effective_from=c.start_date,
                settlement_mode=SettlementMode.TITRE,
                periodicity_months=3,
                instalment_count=4,
                unit_cost_method="Coût du dernier compte financier unique divisé par les unités.",
                end_date=date(year + 2, 12, 31),
            )
            for c in conventions
        )
        lines = ConventionService.objects.bulk_create(
            ConventionService(
                convention=c, service=services_pool[(n + k) % 20], unit_type=unit_type
            )
            for n, c in enumerate(conventions)
            for k in range(2)
        )
        lines_of = {}
        for line in lines:
            lines_of.setdefault(line.convention_id, []).append(line)
        UsageForecast.objects.bulk_create(
            UsageForecast(terms=t, service=line, beneficiary=m, year=year, units=Decimal("120"))
            for t, (_ref, members) in zip(terms, plans, strict=True)
            for line in lines_of[t.convention_id]
            for m in members
        )
        batch = []
        for c, (_ref, members) in zip(conventions, plans, strict=True):
            for line in lines_of[c.pk]:
                for m in members:
                    for month in range(1, 13):
                        start = date(year, month, 1)
                        end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
                        quantity = Decimal(5 + (m.pk + month) % 11) + Decimal("0.125")
                        batch.append(
                            UsageRecord(
                                convention=c,
                                beneficiary=m,
                                service=line.service,
                                unit_type=unit_type,
                                period_start=start,
                                period_end=end - timedelta(days=1),
                                quantity=quantity,
                                units=quantity,
                                reference=f"{month:02d}",
                                source=UsageSource.IMPORT,
                            )
                        )
            if len(batch) > 20000:
                UsageRecord.objects.bulk_create(batch)
                batch = []
        UsageRecord.objects.bulk_create(batch)
        user = get_user_model().objects.create(username=f"{PREFIX.lower()}.finances")
        Membership.objects.create(user=user, organisation=epci, role=Role.FINANCE)
