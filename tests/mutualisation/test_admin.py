"""Every model is administrable: each changelist and add page answers for an administrator."""

import pytest
from django.contrib import admin
from django.urls import reverse

from tests.conftest import seed_territory
from tests.conventions.conftest import (  # noqa: F401 (fixtures shared with these tests)
    mad_descendante,
    service_commun,
)

pytestmark = pytest.mark.django_db

REGISTERED = sorted(
    (model._meta.app_label, model._meta.model_name) for model in admin.site._registry
)


@pytest.fixture
def admin_client_with_data(client, personas):
    seed_territory(with_users=False)
    client.force_login(personas.admin)
    return client


def test_every_reference_model_is_registered():
    for name in [
        "organisation",
        "epcimembership",
        "populationrecord",
        "service",
        "unittype",
        "unitweight",
        "membership",
    ]:
        assert ("mutualisation", name) in REGISTERED


# Records the application produces or guards (statements, batches, acomptes, usage) are never
# added by hand in the admin.
PRODUCED_BY_THE_APPLICATION = {
    ("costing", "statement"),
    ("costing", "batchjob"),
    ("costing", "instalment"),
    ("costing", "usagerecord"),
    ("costing", "usageimport"),
    # A commune's remark is left on its draft, through the statement's page only.
    ("costing", "statementremark"),
    # Login attempts and lockouts are recorded by django-axes, never entered.
    ("axes", "accessattempt"),
    ("axes", "accessfailurelog"),
    ("axes", "accesslog"),
    ("mutualisation", "documentaccess"),
}


@pytest.mark.parametrize(("app_label", "model_name"), REGISTERED)
def test_changelist_and_add_pages_answer(admin_client_with_data, app_label, model_name):
    client = admin_client_with_data
    changelist = client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    assert changelist.status_code == 200
    add = client.get(reverse(f"admin:{app_label}_{model_name}_add"))
    expected = 403 if (app_label, model_name) in PRODUCED_BY_THE_APPLICATION else 200
    assert add.status_code == expected


@pytest.mark.parametrize(("app_label", "model_name"), REGISTERED)
def test_changelist_search_answers(admin_client_with_data, app_label, model_name):
    response = admin_client_with_data.get(
        reverse(f"admin:{app_label}_{model_name}_changelist"), {"q": "Clermont"}
    )
    assert response.status_code == 200


def test_admin_refuses_an_invalid_siren_in_french(admin_client_with_data):
    response = admin_client_with_data.post(
        reverse("admin:mutualisation_organisation_add"),
        {
            "kind": "COMMUNE",
            "name": "Commune fictive",
            "siren": "216301134",
            "insee_code": "63999",
            "budget_nomenclature": "M57",
            "epci_memberships-TOTAL_FORMS": "0",
            "epci_memberships-INITIAL_FORMS": "0",
            "population_records-TOTAL_FORMS": "0",
            "population_records-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "Le SIREN « 216301134 » est invalide" in response.content.decode()


def test_admin_is_in_french(admin_client_with_data):
    html = admin_client_with_data.get(reverse("admin:index")).content.decode()
    assert "Territoire et référentiels" in html
    assert "Populations légales" in html


def test_non_administrators_cannot_enter_the_admin(client, personas):
    client.force_login(personas.manager)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302


@pytest.fixture
def admin_with_conventions(client, personas, mad_descendante, service_commun, territory):  # noqa: F811
    """Conventions with terms, forecasts, deliberations, an opinion and an avenant: one object
    of each convention model for its change page."""
    from datetime import date

    from conventions.models import (
        Amendment,
        Convention,
        ImpactSheet,
        Opinion,
        StaffBody,
        StaffBodyOpinion,
        Status,
        Terms,
    )
    from conventions.services import amendments
    from tests.conventions.conftest import add_deliberations

    convention = mad_descendante.convention
    add_deliberations(convention, [territory.epci, territory.commune_a])
    StaffBodyOpinion.objects.create(
        convention=service_commun.convention,
        organisation=territory.commune_a,
        body=StaffBody.CST,
        date=date(2025, 11, 1),
        opinion=Opinion.FAVOURABLE,
    )
    ImpactSheet.objects.create(
        convention=service_commun.convention,
        established_on=date(2025, 10, 1),
        organisation_and_working_conditions="x",
        pay="x",
        acquired_rights="x",
    )
    Convention.objects.filter(pk=convention.pk).update(status=Status.IN_FORCE)
    amendments.amendment_create(
        convention=Convention.objects.get(pk=convention.pk),
        amendment=Amendment(object="Avenant", effective_from=date(2026, 7, 1)),
        terms=Terms(settlement_mode="TITRE", periodicity_months=6, unit_cost_method="x"),
    )
    client.force_login(personas.admin)
    return client


@pytest.mark.parametrize(("app_label", "model_name"), REGISTERED)
def test_the_change_page_of_an_object_answers(admin_with_conventions, app_label, model_name):
    """Before: nine admin URLs failed with a 500 (``Terms.__str__`` returned a lazy
    translation), among them a convention's change page and the Terms and UsageForecast ones."""
    from django.apps import apps

    model = apps.get_model(app_label, model_name)
    instance = model.objects.order_by("pk").first()
    if instance is None:
        pytest.skip(f"no {model_name} in this data")
    assert isinstance(str(instance), str)
    response = admin_with_conventions.get(
        reverse(f"admin:{app_label}_{model_name}_change", args=[instance.pk])
    )
    assert response.status_code == 200


def test_the_admin_is_the_platforms_operators_only_not_a_territorys_staff(client, personas):
    """One deployment hosts many territories: the admin lists every territory's records (and
    every account), so a territory's staff account, even with every model permission, is sent to
    the admin's login page; superusers (the platform's operators) use it."""
    from django.contrib.auth.models import Permission

    staff = personas.manager
    staff.is_staff = True
    staff.save()
    staff.user_permissions.set(Permission.objects.all())
    client.force_login(staff)
    for url in (reverse("admin:index"), reverse("admin:auth_user_changelist")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert not staff.has_perm("mutualisation.use_admin")
    client.force_login(personas.admin)
    assert client.get(reverse("admin:index")).status_code == 200
