"""No query per row: the conventions pages issue the same number of queries whatever the number
of parties, services, forecasts, deliberations, opinions, avenants, agents and attachments.

Each test builds the same page at two sizes and compares the counts (a query per row shows as
a difference), then bounds the count so a constant but wasteful page shows too."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models.signals import post_init
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conventions.models import (
    AgentAssignment,
    AgentRegime,
    AllocationKey,
    Amendment,
    Attachment,
    Convention,
    ConventionKind,
    ConventionService,
    Deliberation,
    Party,
    PartyRole,
    StaffBody,
    StaffBodyOpinion,
    Status,
    Terms,
    UsageForecast,
)
from conventions.services import overview
from tests.factories import (
    ConventionFactory,
    EpciMembershipFactory,
    OrganisationFactory,
    PopulationRecordFactory,
    ServiceFactory,
    TermsFactory,
)

pytestmark = pytest.mark.django_db

SMALL, LARGE = 2, 6


def grown_convention(territory, personas, size, *, kind=ConventionKind.MISE_A_DISPOSITION):
    """A convention with ``size`` communes, services (forecasts for each pair), deliberations,
    opinions, avenants (each with its terms, forecasts, deliberation, opinion, a commune joining
    and a service added), agents and attachments."""
    epci = territory.epci
    service_commun = kind == ConventionKind.SERVICE_COMMUN
    convention = ConventionFactory(
        kind=kind, managing_organisation=epci if service_commun else None
    )
    communes = [OrganisationFactory() for _ in range(size)]
    for commune in communes:
        EpciMembershipFactory(member=commune, epci=epci)
        PopulationRecordFactory(organisation=commune)
    Party.objects.create(
        convention=convention,
        organisation=epci,
        role=PartyRole.MEMBER if service_commun else PartyRole.PROVIDER,
    )
    for commune in communes:
        Party.objects.create(
            convention=convention,
            organisation=commune,
            role=PartyRole.MEMBER if service_commun else PartyRole.BENEFICIARY,
        )
    terms = TermsFactory(convention=convention)
    lines = []
    for index in range(size):
        service = ServiceFactory(provider=epci)
        lines.append(
            ConventionService.objects.create(
                convention=convention,
                service=service,
                unit_type=service.unit_type,
                allocation_key=AllocationKey.POPULATION if service_commun else "",
                population_vintage=2023 if service_commun else None,
            )
        )
        # A second vintage per line: the population check reads one vintage per line.
        if service_commun:
            lines[-1].population_vintage = 2020 + index
            lines[-1].save()
    for line in lines:
        for commune in communes:
            UsageForecast.objects.create(
                terms=terms, service=line, beneficiary=commune, year=2026, units=Decimal("10")
            )
    for index, organisation in enumerate([epci, *communes]):
        Deliberation.objects.create(
            convention=convention,
            organisation=organisation,
            assembly="Conseil",
            date=date(2025, 12, 10),
            number=f"{convention.reference}-D-{index}",
        )
        StaffBodyOpinion.objects.create(
            convention=convention,
            organisation=organisation,
            body=StaffBody.CST,
            date=date(2025, 11, 15),
            opinion="FAVOURABLE",
        )
    for number in range(1, size + 1):
        amendment = Amendment.objects.create(
            convention=convention,
            number=number,
            object=f"Avenant {number}",
            effective_from=date(2026, 1 + number, 1),
            status=Amendment.AmendmentStatus.SIGNED
            if number < size
            else Amendment.AmendmentStatus.DRAFT,
            signature_date=date(2026, 1, 1) if number < size else None,
        )
        amendment_terms = TermsFactory(
            convention=convention, amendment=amendment, effective_from=amendment.effective_from
        )
        joining = OrganisationFactory()
        EpciMembershipFactory(member=joining, epci=epci)
        Party.objects.create(
            convention=convention,
            organisation=joining,
            role=PartyRole.MEMBER if service_commun else PartyRole.BENEFICIARY,
            joined_by=amendment,
            left_by=None,
        )
        added = ServiceFactory(provider=epci)
        ConventionService.objects.create(
            convention=convention,
            service=added,
            unit_type=added.unit_type,
            added_by=amendment,
            removed_by=amendment if number == 1 else None,
        )
        for line in lines:
            UsageForecast.objects.create(
                terms=amendment_terms,
                service=line,
                beneficiary=communes[0],
                year=2026,
                units=Decimal("5"),
            )
        Deliberation.objects.create(
            convention=convention,
            amendment=amendment,
            organisation=epci,
            assembly="Conseil",
            date=date(2026, 1, 1),
            number=f"{convention.reference}-A-{number}",
        )
        StaffBodyOpinion.objects.create(
            convention=convention,
            amendment=amendment,
            organisation=joining,
            body=StaffBody.CST,
            date=date(2025, 12, 1),
            opinion="FAVOURABLE",
        )
    for index, commune in enumerate(communes):
        AgentAssignment.objects.create(
            convention=convention,
            agent_ref=f"AG-{index}",
            employer=commune,
            regime=AgentRegime.MAD_BY_LAW,
            share_percent=Decimal("50"),
            functional_authority="Le Président",
            hierarchical_authority="Le Maire",
            start_date=date(2026, 1, 1),
        )
        Attachment.objects.create(
            convention=convention,
            title=f"Scan {index}",
            file=f"conventions/{convention.reference}/scan-{index}.pdf",
            size=1000,
            sha256="0" * 64,
            uploaded_by=personas.manager,
        )
    # Changes in its history (the detail page shows the latest ones).
    for index in range(size):
        convention.title = f"{convention.title} ({index})"
        convention.save()
    assert Terms.objects.filter(convention=convention).count() == size + 1
    return convention


def count_queries(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    return len(captured), response


@pytest.mark.parametrize("kind", [ConventionKind.MISE_A_DISPOSITION, ConventionKind.SERVICE_COMMUN])
@pytest.mark.parametrize(
    "status",
    [Status.DRAFT, Status.CONSULTATION, Status.DELIBERATED, Status.SIGNED, Status.IN_FORCE],
)
def test_convention_detail_issues_as_many_queries_whatever_its_size(
    client, territory, personas, kind, status
):
    client.force_login(personas.manager)
    counts = []
    for size in (SMALL, LARGE):
        convention = grown_convention(territory, personas, size, kind=kind)
        Convention.objects.filter(pk=convention.pk).update(
            status=status,
            signature_date=date(2025, 12, 20)
            if status in (Status.SIGNED, Status.IN_FORCE)
            else None,
        )
        count, response = count_queries(client, convention.get_absolute_url())
        # The forecasts of the terms in force are shown, one row each.
        assert response.content.decode().count("<td>2026</td>") >= size
        counts.append(count)
    assert counts[0] == counts[1], counts
    assert counts[1] <= 45, counts


# --- alerts ------------------------------------------------------------------------------------


def signed_convention(start, end, *, notice_months=3, status=Status.IN_FORCE, avenant=None):
    """A signed convention with its initial terms, and optionally an avenant's terms
    ``avenant=(effective_from, end_date, signed)``."""
    convention = ConventionFactory(start_date=start)
    Convention.objects.filter(pk=convention.pk).update(status=status)
    TermsFactory(convention=convention, end_date=end, notice_months=notice_months)
    if avenant:
        effective_from, avenant_end, signed = avenant
        amendment = Amendment.objects.create(
            convention=convention,
            number=1,
            object="Prolongation",
            effective_from=effective_from,
            status=Amendment.AmendmentStatus.SIGNED if signed else Amendment.AmendmentStatus.DRAFT,
        )
        TermsFactory(
            convention=convention,
            amendment=amendment,
            effective_from=effective_from,
            end_date=avenant_end,
            notice_months=notice_months,
        )
    return convention


def alert_world():
    """Conventions near or far from their end, by initial terms or by avenant."""
    return {
        # ends in 2 months: its end and (3 months' notice) nothing else in 90 days
        "ending": signed_convention(date(2024, 1, 1), date(2026, 11, 30)),
        # notice in 1 month (6 months' notice, ends in 7)
        "notice": signed_convention(date(2024, 1, 1), date(2027, 4, 30), notice_months=6),
        # notice date clamped to the end of a shorter month (31 May - 3 months = 28 February)
        "clamped": signed_convention(date(2024, 1, 1), date(2027, 5, 31)),
        # ends long after the horizon
        "far": signed_convention(date(2024, 1, 1), date(2030, 12, 31)),
        # no end date
        "open": signed_convention(date(2024, 1, 1), None),
        # already ended: nothing to warn about
        "past": signed_convention(date(2020, 1, 1), date(2026, 8, 31)),
        # a signed avenant moved the end far away: no alert from the initial terms
        "extended": signed_convention(
            date(2024, 1, 1), date(2026, 10, 31), avenant=(date(2026, 1, 1), date(2031, 1, 1), True)
        ),
        # a draft avenant changes nothing: the initial end stands
        "draft avenant": signed_convention(
            date(2024, 1, 1),
            date(2026, 10, 31),
            avenant=(date(2026, 1, 1), date(2031, 1, 1), False),
        ),
        # not yet started: its initial terms
        "future": signed_convention(date(2026, 10, 1), date(2026, 12, 10), status=Status.SIGNED),
        # a draft is not concerned
        "draft": signed_convention(date(2024, 1, 1), date(2026, 10, 31), status=Status.DRAFT),
    }


TODAY = date(2026, 9, 15)


def test_alerts_follow_the_terms_applicable_today():
    world = alert_world()
    names = {convention.pk: name for name, convention in world.items()}

    def found(days):
        return [
            (names[a.convention.pk], a.kind, a.on)
            for a in overview.alerts(within_days=days, on=TODAY)
        ]

    assert found(90) == [
        ("notice", "notice", date(2026, 10, 30)),
        ("draft avenant", "end", date(2026, 10, 31)),
        ("ending", "end", date(2026, 11, 30)),
        ("future", "end", date(2026, 12, 10)),
    ]
    assert found(170) == [
        *found(90),
        ("clamped", "notice", date(2027, 2, 28)),
    ]


def test_alerts_load_only_the_conventions_they_name(django_assert_max_num_queries):
    """The list page's alerts read the end dates in the database: the conventions far from
    their end are never loaded, whatever their number."""
    alert_world()
    for _ in range(10):
        signed_convention(date(2024, 1, 1), date(2030, 12, 31))
    built = []

    def count(sender, instance, **kwargs):
        built.append(sender)

    post_init.connect(count, sender=Convention)
    post_init.connect(count, sender=Terms)
    try:
        with django_assert_max_num_queries(3):
            found = overview.alerts(within_days=90, on=TODAY)
    finally:
        post_init.disconnect(count, sender=Convention)
        post_init.disconnect(count, sender=Terms)
    assert len(found) == 4
    assert built.count(Convention) <= len(found)
    assert built.count(Terms) <= len(found) + 1


def test_a_convention_without_history_rows_shows_its_detail(client, personas, territory):
    """Conventions bulk-created (an import, a generator) have no history row."""
    (convention,) = Convention.objects.bulk_create(
        [
            Convention(
                territory=territory.epci,
                reference="CONV-2026-900",
                title="Créée en masse",
                kind=ConventionKind.MISE_A_DISPOSITION,
                object="Objet.",
                start_date=date(2026, 1, 1),
            )
        ]
    )
    Terms.objects.bulk_create([TermsFactory.build(convention=convention)])
    assert not convention.history.exists()
    client.force_login(personas.manager)
    response = client.get(reverse("conventions:detail", args=[convention.reference]))
    assert response.status_code == 200
    assert "Créée en masse" in response.content.decode()


# --- the list ----------------------------------------------------------------------------------


def list_conventions(size, territory):
    for _ in range(size):
        convention = ConventionFactory()
        Party.objects.create(
            convention=convention, organisation=territory.epci, role=PartyRole.PROVIDER
        )
        for commune in (territory.commune_a, territory.commune_b):
            Party.objects.create(
                convention=convention, organisation=commune, role=PartyRole.BENEFICIARY
            )
        TermsFactory(convention=convention, end_date=date(2030, 12, 31))
    Convention.objects.update(status=Status.IN_FORCE)


@pytest.mark.parametrize("params", [{}, {"year": "2026"}, {"organisation": "Commune A"}])
def test_the_list_issues_as_many_queries_whatever_the_number_of_conventions(
    client, territory, personas, params
):
    client.force_login(personas.manager)
    counts = []
    for size in (3, 40):
        list_conventions(size, territory)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(reverse("conventions:list"), params)
        assert response.status_code == 200
        assert len(response.context["table"].page.object_list) <= 25
        counts.append(len(captured))
    assert counts[0] == counts[1], counts


def test_the_list_loads_only_the_columns_it_shows(client, territory, personas):
    list_conventions(3, territory)
    client.force_login(personas.manager)
    with CaptureQueriesContext(connection) as captured:
        client.get(reverse("conventions:list"))
    listing = [
        query["sql"]
        for query in captured.captured_queries
        if 'FROM "conventions_convention"' in query["sql"] and "COUNT(" not in query["sql"]
    ]
    assert listing
    for sql in listing:
        for unshown in ('"object"', '"preamble"', '"retroactivity_reason"'):
            assert f'"conventions_convention".{unshown}' not in sql, sql


def test_the_year_filter_follows_the_billing_rule_in_the_database(territory, personas):
    """« Année d'application » keeps the conventions ``in_force.coverage`` covers in the year
    (avenants, tacit renewal, termination), computed by the database."""
    from conventions.filters import ConventionFilter
    from conventions.models import Termination
    from conventions.services.in_force import coverage

    world = alert_world()
    renewed = signed_convention(date(2022, 1, 1), date(2024, 12, 31))
    Terms.objects.filter(convention=renewed).update(tacit_renewal=True)
    terminated = signed_convention(date(2022, 1, 1), date(2030, 12, 31))
    Termination.objects.create(
        convention=terminated,
        notified_on=date(2025, 1, 1),
        effective_on=date(2025, 6, 30),
        requested_by=territory.epci,
        reason="Réorganisation.",
        agents_outcome="Retour dans leur service.",
        notice_respected=True,
    )
    ended_before_start = signed_convention(date(2027, 3, 1), date(2027, 1, 31))
    everyone = [*world.values(), renewed, terminated, ended_before_start]
    for year in range(2019, 2033):
        filterset = ConventionFilter(
            {"year": str(year)}, queryset=Convention.objects.all(), user=personas.manager
        )
        found = set(filterset.qs.values_list("pk", flat=True))
        expected = {
            c.pk
            for c in Convention.objects.filter(pk__in=[c.pk for c in everyone])
            if coverage(c, year)
        }
        assert found == expected, year


def test_the_year_filter_loads_no_convention_outside_the_page(client, territory, personas):
    list_conventions(40, territory)
    built = []

    def count(sender, instance, **kwargs):
        built.append(sender)

    client.force_login(personas.manager)
    post_init.connect(count, sender=Convention)
    try:
        response = client.get(reverse("conventions:list"), {"year": "2026"})
    finally:
        post_init.disconnect(count, sender=Convention)
    assert response.context["table"].page.paginator.count == 40
    assert len(built) <= 25


# --- the other pages of a convention -------------------------------------------------------------


def draft_pages(convention):
    """The pages of a draft convention and of its draft avenant (the last one)."""
    reference = convention.reference
    deliberation = convention.deliberations.filter(amendment__isnull=True).first()
    opinion = convention.opinions.filter(amendment__isnull=True).first()
    number = convention.amendments.order_by("-number").first().number
    return {
        "edit": reverse("conventions:edit", args=[reference]),
        "pdf": reverse("conventions:pdf", args=[reference]),
        "agent": reverse("conventions:add-related", args=[reference, "agent"]),
        "avis": reverse("conventions:add-related", args=[reference, "avis"]),
        "piece-jointe": reverse("conventions:add-related", args=[reference, "piece-jointe"]),
        "deliberation-edit": reverse(
            "conventions:record-edit", args=[reference, "deliberation", deliberation.pk]
        ),
        "opinion-edit": reverse("conventions:record-edit", args=[reference, "avis", opinion.pk]),
        "deliberation-publicity": reverse(
            "conventions:deliberation-publicity", args=[reference, deliberation.pk]
        ),
        "amendment-deliberation": reverse(
            "conventions:amendment-deliberation", args=[reference, number]
        ),
        "amendment-forecasts": reverse("conventions:amendment-forecasts", args=[reference, number]),
        "amendment-opinion": reverse("conventions:amendment-opinion", args=[reference, number]),
        "amendment-pdf": reverse("conventions:amendment-pdf", args=[reference, number]),
    }


def signed_pages(convention):
    reference = convention.reference
    return {
        "amendment-create": reverse("conventions:amendment-create", args=[reference]),
        "terminate": reverse("conventions:terminate", args=[reference]),
        "publicity": reverse("conventions:publicity", args=[reference]),
        "consolidated-pdf": reverse("conventions:pdf", args=[reference]) + "?version=consolidee",
    }


@pytest.mark.parametrize("kind", [ConventionKind.MISE_A_DISPOSITION, ConventionKind.SERVICE_COMMUN])
@pytest.mark.parametrize(
    ("status", "pages"), [(Status.DRAFT, draft_pages), (Status.SIGNED, signed_pages)]
)
def test_the_pages_of_a_convention_issue_as_many_queries_whatever_its_size(
    client, territory, personas, kind, status, pages
):
    client.force_login(personas.manager)
    counts = {}
    for size in (SMALL, LARGE):
        convention = grown_convention(territory, personas, size, kind=kind)
        Convention.objects.filter(pk=convention.pk).update(
            status=status,
            signature_date=date(2025, 12, 20) if status == Status.SIGNED else None,
        )
        for name, url in pages(convention).items():
            counts.setdefault(name, []).append(count_queries(client, url)[0])
    growing = {name: found for name, found in counts.items() if found[0] != found[1]}
    assert growing == {}


def test_the_list_shows_the_first_alerts_and_counts_the_others(client, territory, personas):
    from datetime import timedelta

    from django.utils import timezone

    soon = timezone.localdate() + timedelta(days=30)
    for _ in range(25):
        signed_convention(date(2024, 1, 1), soon)
    client.force_login(personas.manager)
    response = client.get(reverse("conventions:list"))
    html = response.content.decode()
    section = html.split('id="titre-alertes"')[1].split("</section>")[0]
    assert section.count("<li>") == 20
    assert "et 5 autres échéances" in section
