"""Many territories, one deployment: each EPCI numbers its conventions and its statements in its
own series, consecutive from 1 each year, and locks only its own year. At most one EPCI numbers
with the platform's defaults (CONV-…, EA-…); the others have their own prefixes."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from conventions.models import Convention, Terms
from conventions.services import records
from costing import statements
from mutualisation.models import Organisation
from tests.factories import EpciFactory, siren_from

pytestmark = pytest.mark.django_db


def new_convention(territory, year=2031):
    return records.convention_create(
        convention=Convention(
            territory=territory,
            title="Nouvelle convention",
            kind="MISE_A_DISPOSITION",
            object="Objet",
            start_date=date(year, 1, 1),
        ),
        terms=Terms(settlement_mode="TITRE", periodicity_months=12),
    )


def test_two_territories_creating_alternately_each_number_their_conventions_from_one(territory):
    val = EpciFactory(name="Communauté d'agglomération du Val")
    references = [new_convention(t).reference for t in (territory.epci, val, territory.epci, val)]
    prefix = Organisation.objects.get(pk=val.pk).reference_prefix
    assert prefix
    assert references == [
        "CONV-2031-001",
        f"{prefix}-2031-001",
        "CONV-2031-002",
        f"{prefix}-2031-002",
    ]


def test_one_territorys_year_lock_leaves_another_territory_free(territory):
    val = EpciFactory(name="Communauté d'agglomération du Val")
    assert statements.year_lock_prefixes([territory.epci]) == {"EA"}
    assert not statements.year_lock_prefixes([territory.epci]) & statements.year_lock_prefixes(
        [val]
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("statement_prefix", ""),
        ("statement_prefix", "EA"),
        ("reference_prefix", ""),
        ("reference_prefix", "CONV"),
    ],
)
def test_the_database_refuses_a_second_territory_numbering_with_the_defaults(
    territory, field, value
):
    val = EpciFactory(reference_prefix="VAL", statement_prefix="EAVAL")
    with pytest.raises(IntegrityError), transaction.atomic():
        Organisation.objects.filter(pk=val.pk).update(**{field: value})


def test_a_territory_may_take_the_defaults_again_once_no_other_uses_them(territory):
    Organisation.objects.filter(pk=territory.epci.pk).update(
        reference_prefix="MET", statement_prefix="EAMET"
    )
    val = EpciFactory(reference_prefix="", statement_prefix="")
    val.full_clean()
    assert new_convention(val).reference == "CONV-2031-001"


def test_validation_names_the_territory_whose_numbering_is_taken(territory):
    val = EpciFactory.build(name="Communauté du Val", reference_prefix="", statement_prefix="EA")
    with pytest.raises(ValidationError) as refused:
        val.full_clean()
    assert refused.value.message_dict["reference_prefix"] == [
        "Sans préfixe, ce territoire prendrait la numérotation par défaut « CONV », déjà celle "
        "de Métropole de test : choisissez-en un pour ce territoire."
    ]
    assert refused.value.message_dict["statement_prefix"] == [
        "Le préfixe « EA » est déjà celui de Métropole de test : choisissez-en un pour ce "
        "territoire."
    ]


def test_the_admin_refuses_a_second_territory_without_prefixes_in_french(client, personas):
    client.force_login(personas.admin)
    response = client.post(
        reverse("admin:mutualisation_organisation_add"),
        {
            "kind": "EPCI",
            "name": "Communauté du Val",
            "siren": siren_from(99300000),
            "epci_nature": "CA",
            "tax_regime": "FPU",
            "budget_nomenclature": "M57",
            "epci_memberships-TOTAL_FORMS": "0",
            "epci_memberships-INITIAL_FORMS": "0",
            "population_records-TOTAL_FORMS": "0",
            "population_records-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    page = response.content.decode().replace("&#x27;", "'").replace("&laquo;", "«")
    assert "déjà celle de Métropole de test : choisissez-en un pour ce territoire." in page
    assert not Organisation.objects.filter(name="Communauté du Val").exists()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_gives_territories_sharing_the_defaults_their_own_prefixes():
    """An existing database where three EPCIs left their prefixes blank (and one wrote the
    default EA itself): the oldest keeps the defaults, each other one gets the default followed
    by its id; an EPCI with its own prefixes keeps them."""
    before = [("mutualisation", "0008_service_code_per_territory")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps.get_model("mutualisation", "Organisation")

        def epci(n, **prefixes):
            return old.objects.create(
                kind="EPCI",
                name=f"EPCI {n}",
                siren=f"20000000{n}",
                epci_nature="CA",
                tax_regime="FPU",
                **prefixes,
            ).pk

        oldest = epci(1)
        own = epci(2, reference_prefix="VAL", statement_prefix="EAVAL")
        second = epci(3)
        third = epci(4, statement_prefix="EA")
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    prefixes = (
        dict(Organisation.objects.values_list("pk", "reference_prefix").filter(kind="EPCI")),
        dict(Organisation.objects.values_list("pk", "statement_prefix").filter(kind="EPCI")),
    )
    assert prefixes == (
        {oldest: "", own: "VAL", second: f"CONV{second}", third: f"CONV{third}"},
        {oldest: "", own: "EAVAL", second: f"EA{second}", third: f"EA{third}"},
    )


def test_a_territory_cannot_change_the_reference_prefix_it_has_numbered_with(territory):
    """CONV-2031-001 given, the territory may not number its next convention VAL-2031-001: a
    second series would start for the same territory, and its first numbers would repeat."""
    given = new_convention(territory.epci).reference
    epci = Organisation.objects.get(pk=territory.epci.pk)
    epci.reference_prefix = "VAL"
    with pytest.raises(ValidationError) as refused:
        epci.full_clean()
    assert refused.value.message_dict["reference_prefix"] == [
        f"Ce territoire numérote déjà avec « CONV » (dernier numéro attribué : {given}) : "
        "changer de préfixe ouvrirait une seconde série de numéros. Le préfixe ne peut plus "
        "changer."
    ]


def test_a_territory_may_change_a_prefix_it_has_not_numbered_with_yet(territory):
    val = EpciFactory(reference_prefix="VAL", statement_prefix="EAVAL")
    new_convention(territory.epci)  # another territory's numbers do not bind this one
    val.reference_prefix = "VALX"
    val.statement_prefix = "EAVALX"
    val.full_clean()
    val.save()
    assert new_convention(val).reference == "VALX-2031-001"


def test_the_admin_keeps_a_numbered_prefix_and_says_why_in_french(client, personas, territory):
    given = new_convention(territory.epci).reference
    client.force_login(personas.admin)
    url = reverse("admin:mutualisation_organisation_change", args=[territory.epci.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields
    }
    data.update(
        {
            "reference_prefix": "AUTRE",
            "epci_memberships-TOTAL_FORMS": "0",
            "epci_memberships-INITIAL_FORMS": "0",
            "population_records-TOTAL_FORMS": "0",
            "population_records-INITIAL_FORMS": "0",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 200
    page = response.content.decode().replace("&#x27;", "'").replace("&laquo;", "«")
    assert f"(dernier numéro attribué : {given})" in page
    assert Organisation.objects.get(pk=territory.epci.pk).reference_prefix == ""
