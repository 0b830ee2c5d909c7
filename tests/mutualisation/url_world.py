"""The "world" the URL matrix requests: one Métropole, communes A and B each with their own
conventions, statements and acomptes, and one object of every kind an URL or an admin page names.

Built once per test module (tests/mutualisation/test_url_matrix.py), through the services where
they exist, so the objects are those the application really produces.
"""

import hashlib
import io
import zipfile
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import time_machine
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from rest_framework.authtoken.models import Token, TokenProxy

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
    ImpactSheet,
    ManagingShare,
    Opinion,
    Party,
    PartyRole,
    ReferenceCounter,
    SchemeOpinion,
    StaffBody,
    StaffBodyOpinion,
    Termination,
    Terms,
    UsageForecast,
)
from conventions.services import amendments, transitions
from conventions.services import scheme as schemes
from costing import statements
from costing.demo import ensure_account_mapping
from costing.models import (
    AccountMapping,
    BatchJob,
    Instalment,
    UnitCost,
    UsageImport,
    UsageRecord,
    UsageSource,
)
from mutualisation.models import DocumentAccess, Role, UnitWeight
from tests.conventions.conftest import add_deliberations, make_enforceable
from tests.costing.conftest import cost_base
from tests.factories import (
    ConventionFactory,
    EpciFactory,
    EpciMembershipFactory,
    MembershipFactory,
    OrganisationFactory,
    PopulationRecordFactory,
    SchemeActionFactory,
    SchemeFactory,
    ServiceFactory,
    TermsFactory,
    UserFactory,
)

PERSONAS = ("anonymous", "outsider", "reader_a", "reader_b", "manager", "finance", "admin")
PARIS = ZoneInfo("Europe/Paris")
# The 2026 statements are issued and a correction is under review: early March 2027.
NOW = datetime(2027, 3, 1, 10, 0, tzinfo=PARIS)
YEAR = 2026
# A minimal, well-formed PDF for the signed scan (the upload form checks real PDFs; here the
# file is stored as the form would have stored it).
SCAN = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _mad(epci, commune, service, title, **convention):
    """A mise à disposition descendante from the Métropole to one commune, with its forecast."""
    convention = ConventionFactory(title=title, **convention)
    Party.objects.create(convention=convention, organisation=epci, role=PartyRole.PROVIDER)
    Party.objects.create(convention=convention, organisation=commune, role=PartyRole.BENEFICIARY)
    line = ConventionService.objects.create(
        convention=convention, service=service, unit_type=service.unit_type
    )
    terms = TermsFactory(convention=convention)
    UsageForecast.objects.create(
        terms=terms, service=line, beneficiary=commune, year=YEAR, units=Decimal("100")
    )
    return convention


def _in_force(convention, organisations):
    """Submit, deliberate and sign (in late 2026, as the costing fixtures do), then record the
    transmission and notification that make it enforceable, and enter into force."""
    convention = transitions.convention_transition(convention, "submit")
    add_deliberations(convention, organisations)
    with time_machine.travel(date(2026, 11, 28)):
        convention = transitions.convention_transition(convention, "deliberate")
        convention = transitions.convention_transition(
            convention, "sign", signature_date=date(2025, 12, 20)
        )
        make_enforceable(convention)
        return transitions.convention_transition(convention, "enter_into_force")


def _usage(convention, commune, service, quantities):
    records = []
    for month, quantity in enumerate(quantities, start=3):
        records.append(
            UsageRecord.objects.create(
                convention=convention,
                beneficiary=commune,
                service=service,
                unit_type=service.unit_type,
                period_start=date(YEAR, month, 1),
                period_end=date(YEAR, month, 28),
                quantity=Decimal(quantity),
                units=Decimal(quantity),
                source=UsageSource.IMPORT,
            )
        )
    return records


def build_world():
    """Every object the matrix names; the caller runs it at ``NOW`` inside a transaction."""
    ensure_account_mapping()
    epci = EpciFactory(name="Métropole de test")
    commune_a = OrganisationFactory(name="Commune A")
    commune_b = OrganisationFactory(name="Commune B")
    for commune in (commune_a, commune_b):
        EpciMembershipFactory(member=commune, epci=epci, valid_from=date(2020, 1, 1))
        PopulationRecordFactory(organisation=commune)

    def member(username, organisation, role, **extra):
        user = UserFactory(username=username, **extra)
        MembershipFactory(user=user, organisation=organisation, role=role)
        return user

    users = SimpleNamespace(
        outsider=UserFactory(username="exterieur"),
        reader_a=member("lecteur.a", commune_a, Role.COMMUNE_READER),
        reader_b=member("lecteur.b", commune_b, Role.COMMUNE_READER),
        manager=member("gestionnaire", epci, Role.MANAGER),
        finance=member("finances", epci, Role.FINANCE),
        admin=member("admin", epci, Role.ADMINISTRATOR, is_staff=True, is_superuser=True),
    )

    # Two services of the Métropole: one billed by unit, one shared by population.
    service = ServiceFactory(provider=epci, code="informatique", name="Informatique")
    shared = ServiceFactory(provider=epci, code="ads", name="Instruction ADS")
    weight = UnitWeight.objects.create(
        unit_type=service.unit_type, code="standard", label="Standard", weight=Decimal("1")
    )

    # A's convention, in force, billed; B's own, in force, billed: neither sees the other's.
    convention_a = _in_force(
        _mad(epci, commune_a, service, "Mise à disposition informatique A"), [epci, commune_a]
    )
    convention_b = _in_force(
        _mad(epci, commune_b, service, "Mise à disposition informatique B"), [epci, commune_b]
    )

    # A draft service commun of the Métropole and commune A, its file under way: what a
    # manager still edits (fiche d'impact, avis, délibérations, agents).
    draft = ConventionFactory(
        title="Service commun ADS",
        kind=ConventionKind.SERVICE_COMMUN,
        managing_organisation=epci,
    )
    for organisation in (epci, commune_a):
        Party.objects.create(convention=draft, organisation=organisation, role=PartyRole.MEMBER)
    ConventionService.objects.create(
        convention=draft,
        service=shared,
        unit_type=shared.unit_type,
        allocation_key=AllocationKey.POPULATION,
        population_vintage=2023,
    )
    TermsFactory(convention=draft, managing_share_mode=ManagingShare.NONE)
    impact_sheet = ImpactSheet.objects.create(
        convention=draft,
        established_on=date(2026, 10, 1),
        organisation_and_working_conditions="Regroupement des instructeurs sur un site.",
        pay="Maintien du régime indemnitaire.",
        acquired_rights="Droits acquis conservés.",
    )
    opinion = StaffBodyOpinion.objects.create(
        convention=draft,
        organisation=commune_a,
        body=StaffBody.CST,
        date=date(2026, 11, 15),
        opinion="FAVOURABLE",
    )
    deliberation = Deliberation.objects.create(
        convention=draft,
        organisation=commune_a,
        assembly="Conseil municipal",
        date=date(2026, 12, 10),
        number="SC-ADS-1",
        object="Approbation du service commun",
    )
    agent = AgentAssignment.objects.create(
        convention=draft,
        agent_ref="AG-001",
        job_title="Instructeur",
        employer=commune_a,
        regime=AgentRegime.TRANSFER,
        share_percent=Decimal("100"),
        functional_authority="Président de la Métropole",
        hierarchical_authority="Président de la Métropole",
        start_date=date(2027, 1, 1),
    )

    # A draft avenant on A's convention, a signed scan, and a termination of B's convention.
    amendment = amendments.amendment_create(
        convention=convention_a,
        amendment=Amendment(object="Hausse des prévisions", effective_from=date(2026, 7, 1)),
        terms=Terms(
            settlement_mode=convention_a.terms.get().settlement_mode,
            periodicity_months=12,
            instalment_count=4,
            unit_cost_method="Coût / unités.",
            end_date=date(2028, 12, 31),
            notice_months=3,
        ),
    )
    attachment = Attachment.objects.create(
        convention=convention_a,
        title="Convention signée (scan)",
        file=ContentFile(SCAN, name="scan.pdf"),
        size=len(SCAN),
        sha256=hashlib.sha256(SCAN).hexdigest(),
        uploaded_by=users.manager,
    )
    termination = Termination.objects.create(
        convention=convention_b,
        notified_on=date(2027, 2, 1),
        effective_on=date(2028, 12, 31),
        requested_by=commune_b,
        reason="Reprise du service en régie.",
        notice_respected=True,
        agents_outcome="Aucun agent concerné.",
    )

    # Costs: the 2026 cost base and its notified unit cost; usage of both communes.
    base = cost_base(service, year=YEAR)
    # The shared service is used by A's service commun only: commune B has no business with
    # its cost base.
    base_a_only = cost_base(shared, year=YEAR)
    unit_cost = UnitCost.objects.create(
        service=service,
        year=YEAR,
        amount=Decimal("242.31"),
        notification_deadline=date(YEAR, 4, 30),
        notified_on=date(YEAR, 3, 30),
    )
    usage_a = _usage(convention_a, commune_a, service, ("20", "17"))
    _usage(convention_b, commune_b, service, ("12.5",))

    # Statements: A's approved and issued, then under correction (a draft citing it, with a
    # remark from A); B's a draft.
    drafts = {
        s.payer_id: s
        for s in statements.statements_prepare(YEAR, Convention.objects.filter(territory=epci))
    }
    statements.statement_approve(drafts[commune_a.pk], user=users.reader_a)
    issued_a = statements.statement_issue(drafts[commune_a.pk], user=users.finance)
    correction_a = statements.statement_correct(issued_a, reason="Recours de mars erroné.")
    remark = statements.remark_add(correction_a, author=users.reader_a, text="Mars : 17 heures.")
    draft_b = drafts[commune_b.pk]

    instalment_a = Instalment.objects.create(
        convention=convention_a,
        payer=commune_a,
        payee=epci,
        year=YEAR,
        rank=1,
        due_date=date(YEAR, 6, 30),
        amount=Decimal("1000.00"),
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(f"{issued_a.number}.pdf", bytes(issued_a.pdf))
    job = BatchJob(
        year=YEAR,
        territory=epci,
        action=BatchJob.Action.EXPORT,
        status=BatchJob.JobStatus.DONE,
        total=1,
        done=1,
        created_by=users.finance,
        finished_at=NOW,
    )
    job.archive.save(f"etats-{YEAR}.zip", ContentFile(archive.getvalue()), save=False)
    job.save()

    # A usage file the finance officer dropped and has not confirmed yet.
    usage_import = UsageImport(
        filename="recours.csv",
        sha256="0" * 64,
        rows=1,
        done=1,
        status=UsageImport.ImportStatus.CHECKED,
        created_by=users.finance,
    )
    usage_import.file.save(
        "recours.csv",
        ContentFile(
            "convention;beneficiaire;service;mois;quantite\n"
            f"{convention_a.reference};{commune_a.siren};{service.code};{YEAR}-02;1\n".encode()
        ),
        save=False,
    )
    usage_import.save()

    # The account table is seeded by a migration (no history): an administrator relabels one
    # account, which gives it a past version.
    account_mapping = AccountMapping.objects.order_by("pk").first()
    account_mapping.label = f"{account_mapping.label} (libellé revu)"
    account_mapping.save()

    # Records of the framework and of the audit log that the admin lists.
    group = Group.objects.create(name="Lecteurs des communes")
    access = DocumentAccess.objects.create(
        user=users.reader_a, username="lecteur.a", document="scan.pdf", path="/conventions/"
    )
    attempt = AccessAttempt.objects.create(
        username="lecteur.a",
        ip_address="192.0.2.1",
        user_agent="test",
        http_accept="text/html",
        path_info="/connexion/",
        failures_since_start=1,
    )
    access_log = AccessLog.objects.create(
        username="lecteur.a",
        ip_address="192.0.2.1",
        user_agent="test",
        http_accept="text/html",
        path_info="/connexion/",
    )
    failure = AccessFailureLog.objects.create(
        username="lecteur.a",
        ip_address="192.0.2.1",
        user_agent="test",
        http_accept="text/html",
        path_info="/connexion/",
        locked_out=False,
    )

    # The territory's schéma de mutualisation, transmitted to the communes in January: A has
    # answered, B's opinion is awaited (its approval is refused); an action concerns A only.
    scheme = SchemeFactory(territory=epci, title="Schéma de la Métropole de test")
    scheme_action = SchemeActionFactory(scheme=scheme, title="Action du schéma pour A")
    scheme_action.communes.set([commune_a])
    scheme_action.conventions.set([convention_a])
    scheme = schemes.scheme_submit(scheme, on=date(2027, 1, 15))
    SchemeOpinion.objects.create(
        scheme=scheme, commune=commune_a, date=date(2027, 2, 10), opinion=Opinion.FAVOURABLE
    )

    other = build_other_territory(commune_a, users)

    return SimpleNamespace(
        other=other,
        users=users,
        scheme=scheme,
        scheme_action=scheme_action,
        epci=epci,
        commune_a=commune_a,
        commune_b=commune_b,
        service=service,
        weight=weight,
        convention_a=convention_a,
        convention_b=convention_b,
        draft=draft,
        impact_sheet=impact_sheet,
        opinion=opinion,
        deliberation=deliberation,
        agent=agent,
        amendment=amendment,
        attachment=attachment,
        termination=termination,
        base=base,
        base_a_only=base_a_only,
        usage_import=usage_import,
        unit_cost=unit_cost,
        usage=usage_a[0],
        forecast=UsageForecast.objects.filter(beneficiary=commune_a).first(),
        terms=convention_a.terms.order_by("effective_from").first(),
        issued=issued_a,
        correction=correction_a,
        remark=remark,
        draft_b=draft_b,
        instalment=instalment_a,
        job=job,
        group=group,
        access=access,
        attempt=attempt,
        access_log=access_log,
        failure=failure,
        reference_counter=ReferenceCounter.objects.get_or_create(
            prefix="CONV", year=YEAR, defaults={"last_number": 3}
        )[0],
        account_mapping=account_mapping,
        epci_membership=commune_a.epci_memberships.get(),
        population=commune_a.population_records.get(),
        # The API token of the finance officer (revocable in the admin).
        token=TokenProxy.objects.get(pk=Token.objects.create(user=users.finance).pk),
    )


# What only the second territory's people may see: it must never show to the first one's staff.
OTHER_TERRITORY_MARKERS = (
    "VAL-2026-001",
    "Voirie du Val",
    "EAVAL-2026-0001",
    "Schéma du Val",
)


def build_other_territory(commune_a, users):
    """A second EPCI hosted by the same deployment, with its own numbering prefixes, staff, a
    commune C, a service, a convention for C (its statement issued, EAVAL-2026-0001) and one for
    commune A of the first territory (A's reader sees it; the first territory's staff do not)."""
    epci = EpciFactory(
        name="Communauté d'agglomération du Val",
        reference_prefix="VAL",
        statement_prefix="EAVAL",
    )
    commune_c = OrganisationFactory(name="Commune C")
    EpciMembershipFactory(member=commune_c, epci=epci, valid_from=date(2020, 1, 1))

    def member(username, organisation, role):
        user = UserFactory(username=username)
        MembershipFactory(user=user, organisation=organisation, role=role)
        return user

    people = SimpleNamespace(
        manager=member("gestionnaire.val", epci, Role.MANAGER),
        finance=member("finances.val", epci, Role.FINANCE),
        reader_c=member("lecteur.c", commune_c, Role.COMMUNE_READER),
    )
    service = ServiceFactory(provider=epci, code="voirie-val", name="Voirie du Val")
    for_c = _in_force(
        _mad(
            epci,
            commune_c,
            service,
            "Voirie du Val pour C",
            territory=epci,
            reference="VAL-2026-001",
        ),
        [epci, commune_c],
    )
    for_a = _in_force(
        _mad(
            epci,
            commune_a,
            service,
            "Voirie du Val pour A",
            territory=epci,
            reference="VAL-2026-002",
            # Commune A is not a member of this EPCI: a prestation de services (L5111-1).
            kind=ConventionKind.PRESTATION,
        ),
        [epci, commune_a],
    )
    scheme = SchemeFactory(territory=epci, title="Schéma du Val")
    SchemeActionFactory(scheme=scheme, title="Voirie du Val partagée").communes.set([commune_c])
    base = cost_base(service, year=YEAR)
    UnitCost.objects.create(
        service=service,
        year=YEAR,
        amount=Decimal("57.10"),
        notification_deadline=date(YEAR, 4, 30),
        notified_on=date(YEAR, 3, 30),
    )
    _usage(for_c, commune_c, service, ("8",))
    _usage(for_a, commune_a, service, ("3",))
    drafts = {
        s.payer_id: s
        for s in statements.statements_prepare(YEAR, Convention.objects.filter(territory=epci))
    }
    statements.statement_approve(drafts[commune_c.pk], user=people.reader_c)
    issued = statements.statement_issue(drafts[commune_c.pk], user=people.finance)
    return SimpleNamespace(
        epci=epci,
        commune_c=commune_c,
        users=people,
        service=service,
        convention_c=for_c,
        convention_a=for_a,
        base=base,
        issued=issued,
        draft_a=drafts[commune_a.pk],
        scheme=scheme,
    )
