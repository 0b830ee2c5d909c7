"""Test data builders (factory_boy). Identifiers are valid: SIRENs pass the Luhn check."""

from datetime import date
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from conventions.models import (
    Convention,
    ConventionKind,
    Horizon,
    Scheme,
    SchemeAction,
    SettlementMode,
    Terms,
)
from mutualisation.models import (
    DEFAULT_PREFIXES,
    EpciMembership,
    EpciNature,
    Membership,
    Organisation,
    OrganisationKind,
    PopulationRecord,
    Service,
    ServiceKind,
    TaxRegime,
    Unit,
    UnitType,
)
from mutualisation.validators import luhn_is_valid


def siren_from(seed: int) -> str:
    """A valid SIREN built from 8 digits of ``seed`` plus the Luhn check digit."""
    stem = f"{seed % 10**8:08d}"
    return next(stem + str(d) for d in range(10) if luhn_is_valid(stem + str(d)))


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    kind = OrganisationKind.COMMUNE
    name = factory.Sequence(lambda n: f"Commune {n}")
    # Fictitious identifiers (département 99), far from the demo territory's real ones.
    siren = factory.Sequence(lambda n: siren_from(99100000 + n))
    insee_code = factory.Sequence(lambda n: f"{99000 + n % 1000:05d}")
    representative_title = "Le Maire"


def prefix_unless_defaults_free(field: str, own: str) -> str:
    """Blank (the platform's numbering, CONV-… and EA-…) for the first EPCI of a test, ``own``
    for the next ones: one EPCI only may number with the defaults."""
    default = DEFAULT_PREFIXES[field]
    return own if Organisation.objects.numbering_with(field, default).exists() else ""


class EpciFactory(OrganisationFactory):
    kind = OrganisationKind.EPCI
    public_accountant = "Service de gestion comptable de test"
    name = factory.Sequence(lambda n: f"Métropole {n}")
    siren = factory.Sequence(lambda n: siren_from(99200000 + n))
    insee_code = None
    epci_nature = EpciNature.METRO
    tax_regime = TaxRegime.FPU
    representative_title = "Le Président"
    reference_prefix = factory.Sequence(
        lambda n: prefix_unless_defaults_free("reference_prefix", f"T{n}")
    )
    statement_prefix = factory.Sequence(
        lambda n: prefix_unless_defaults_free("statement_prefix", f"EAT{n}")
    )


class EpciMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EpciMembership

    member = factory.SubFactory(OrganisationFactory)
    epci = factory.SubFactory(EpciFactory)
    valid_from = factory.Faker("date_between", start_date="-10y", end_date="-1y")


class PopulationRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PopulationRecord

    organisation = factory.SubFactory(OrganisationFactory)
    vintage = 2023
    in_force_year = 2026
    municipal = 1000
    total = 1020
    source = "INSEE"


class UnitTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = UnitType

    code = factory.Sequence(lambda n: f"unite-{n}")
    label = factory.Sequence(lambda n: f"Unité {n}")
    unit = Unit.HOUR


def first_territory():
    """The EPCI a test's convention or service belongs to when the test does not say: the
    first EPCI created (the ``territory`` fixture's), else a new one."""
    return Organisation.objects.epcis().order_by("pk").first() or EpciFactory()


def territory_of(provider):
    """A service's territory: its provider when an EPCI, else the EPCI the provider is a
    member of, else the first EPCI."""
    if provider.is_epci:
        return provider
    membership = provider.epci_memberships.order_by("-valid_from").first()
    return membership.epci if membership else first_territory()


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    code = factory.Sequence(lambda n: f"service-{n}")
    name = factory.Sequence(lambda n: f"Service {n}")
    provider = factory.SubFactory(EpciFactory)
    territory = factory.LazyAttribute(lambda o: territory_of(o.provider))
    kind = ServiceKind.FUNCTIONAL
    unit_type = factory.SubFactory(UnitTypeFactory)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"agent{n}")
    password = factory.PostGenerationMethodCall("set_password", "mot-de-passe-de-test")

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(EpciFactory)


class ConventionFactory(factory.django.DjangoModelFactory):
    """A draft convention with its reference; add parties, services and terms as needed."""

    class Meta:
        model = Convention

    reference = factory.Sequence(lambda n: f"CONV-2026-{n + 1:03d}")
    territory = factory.LazyFunction(first_territory)
    title = factory.Sequence(lambda n: f"Convention {n}")
    kind = ConventionKind.MISE_A_DISPOSITION
    object = "Mise à disposition du service pour l'exercice des compétences du bénéficiaire."
    preamble = "Dans le cadre d'une bonne organisation des services."
    start_date = date(2026, 1, 1)


class TermsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Terms

    convention = factory.SubFactory(ConventionFactory)
    effective_from = factory.SelfAttribute("convention.start_date")
    settlement_mode = SettlementMode.TITRE
    periodicity_months = 12
    instalment_count = 4
    unit_cost_method = (
        "Coût de fonctionnement du dernier compte administratif divisé par les unités."
    )
    end_date = date(2028, 12, 31)
    notice_months = 3


class SchemeFactory(factory.django.DjangoModelFactory):
    """A draft schéma de mutualisation of the first territory for the 2026-2032 mandate."""

    class Meta:
        model = Scheme

    territory = factory.LazyFunction(first_territory)
    title = factory.Sequence(lambda n: f"Schéma de mutualisation {n}")
    first_year = 2026
    last_year = 2032


class SchemeActionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SchemeAction

    scheme = factory.SubFactory(SchemeFactory)
    title = factory.Sequence(lambda n: f"Action {n}")
    horizon = Horizon.SHORT
    target_year = 2027


class UnitCostFactory(factory.django.DjangoModelFactory):
    """A unit cost notified in time for its year (before the budget deadline of 30 April)."""

    class Meta:
        model = "costing.UnitCost"

    service = factory.SubFactory(ServiceFactory)
    year = 2026
    amount = factory.LazyFunction(lambda: Decimal("50.00"))
    notification_deadline = factory.LazyAttribute(lambda o: date(o.year, 4, 30))
    notified_on = factory.LazyAttribute(lambda o: date(o.year, 3, 30))


class UsageRecordFactory(factory.django.DjangoModelFactory):
    """A month of usage of a convention's service by one beneficiary, imported, its quantity
    taken as its units (no weight)."""

    class Meta:
        model = "costing.UsageRecord"

    class Params:
        year = 2026
        month = 3

    convention = factory.SubFactory(ConventionFactory)
    beneficiary = factory.SubFactory(OrganisationFactory)
    service = factory.SubFactory(ServiceFactory)
    unit_type = factory.LazyAttribute(lambda o: o.service.unit_type)
    period_start = factory.LazyAttribute(lambda o: date(o.year, o.month, 1))
    period_end = factory.LazyAttribute(lambda o: date(o.year, o.month, 28))
    quantity = factory.LazyFunction(lambda: Decimal("6"))
    units = factory.LazyAttribute(lambda o: o.quantity)
    source = "IMPORT"
