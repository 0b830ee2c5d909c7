"""Writes to the reference data: loading the demo territory."""

import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F

from mutualisation.models import (
    DEFAULT_PREFIXES,
    EpciMembership,
    Membership,
    Organisation,
    OrganisationKind,
    PopulationRecord,
    Service,
    UnitType,
    UnitWeight,
)

DEMO_TERRITORY_FILE = Path(__file__).resolve().parent / "data" / "demo_territory.json"
# The demo Métropole numbers with the defaults (CONV-…, EA-…), unless another EPCI of the
# database already does: one EPCI only may (Organisation's constraints). Then it takes these.
DEMO_OWN_PREFIXES = {"reference_prefix": "CAM", "statement_prefix": "EACAM"}


@dataclass
class SeedReport:
    """What a seeding run created (an idempotent re-run creates nothing)."""

    created: dict[str, int] = field(default_factory=dict)
    demo_users: list[str] = field(default_factory=list)

    def count(self, label: str, created: bool) -> None:
        self.created[label] = self.created.get(label, 0) + int(created)


def _upsert(model, lookup: dict, values: dict, report: SeedReport, label: str):
    """update_or_create, with the model's validation run before anything is written."""
    instance = model.objects.filter(**lookup).first()
    created = instance is None
    if created:
        instance = model(**lookup)
    for name, value in values.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    report.count(label, created)
    return instance


def demo_prefixes(siren: str) -> dict[str, str]:
    """The demo EPCI's prefixes: blank (the defaults) unless another EPCI numbers with them."""
    return {
        field: own
        if Organisation.objects.numbering_with(field, DEFAULT_PREFIXES[field])
        .exclude(siren=siren)
        .exists()
        else ""
        for field, own in DEMO_OWN_PREFIXES.items()
    }


@transaction.atomic
def seed_demo_territory(*, with_users: bool, password: str | None = None) -> SeedReport:
    """Load Clermont Auvergne Métropole, its 21 communes with their legal populations, the demo
    services and units of use, and (if ``with_users``) one demo account per role.

    Idempotent: records are matched on their natural keys (SIREN, code, millésime) and brought
    back to the reference values; demo users keep the password they already have.
    """
    data = json.loads(DEMO_TERRITORY_FILE.read_text(encoding="utf-8"))
    report = SeedReport()

    epci_data = {**data["epci"], **demo_prefixes(data["epci"]["siren"])}
    epci = _upsert(
        Organisation,
        {"siren": epci_data["siren"]},
        {**epci_data, "kind": OrganisationKind.EPCI},
        report,
        "organisations",
    )
    valid_from = date.fromisoformat(data["membership_valid_from"])
    by_siren = {epci.siren: epci}
    for commune_data in data["communes"]:
        commune = _upsert(
            Organisation,
            {"siren": commune_data["siren"]},
            {
                "kind": OrganisationKind.COMMUNE,
                "name": commune_data["name"],
                "insee_code": commune_data["insee_code"],
                "seat": commune_data["name"],
                **data["communes_defaults"],
            },
            report,
            "organisations",
        )
        by_siren[commune.siren] = commune
        _upsert(
            EpciMembership,
            {"member": commune, "epci": epci, "valid_from": valid_from},
            {},
            report,
            "epci_memberships",
        )
        for population in commune_data["populations"]:
            _upsert(
                PopulationRecord,
                {"organisation": commune, "vintage": population["vintage"]},
                {k: v for k, v in population.items() if k != "vintage"},
                report,
                "population_records",
            )

    unit_types = {}
    for unit_data in data["unit_types"]:
        weights = unit_data.get("weights", [])
        fields = {k: v for k, v in unit_data.items() if k not in ("code", "weights")}
        unit_type = _upsert(UnitType, {"code": unit_data["code"]}, fields, report, "unit_types")
        unit_types[unit_type.code] = unit_type
        for weight in weights:
            _upsert(
                UnitWeight,
                {"unit_type": unit_type, "code": weight["code"]},
                {"label": weight["label"], "weight": Decimal(weight["weight"])},
                report,
                "unit_weights",
            )

    for service_data in data["services"]:
        _upsert(
            Service,
            {"code": service_data["code"], "territory": epci},
            {
                "name": service_data["name"],
                "provider": by_siren[service_data["provider"]],
                "kind": service_data["kind"],
                "unit_type": unit_types[service_data["unit_type"]],
                "description": service_data["description"],
            },
            report,
            "services",
        )

    if with_users:
        _seed_demo_users(data["demo_users"], by_siren, password, report)
    return report


def _seed_demo_users(users, by_siren, password, report: SeedReport) -> None:
    if not password:
        raise ValueError("A demo password is required to create the demo users.")
    user_model = get_user_model()
    for user_data in users:
        user = user_model.objects.filter(username=user_data["username"]).first()
        created = user is None
        if created:
            superuser = user_data.get("superuser", False)
            user = user_model(
                username=user_data["username"],
                first_name=user_data["first_name"],
                last_name=user_data["last_name"],
                is_staff=superuser,
                is_superuser=superuser,
                email=f"{user_data['username']}@demo.invalid",
            )
            user.set_password(password)
            user.save()
        report.count("users", created)
        _upsert(
            Membership,
            {
                "user": user,
                "organisation": by_siren[user_data["organisation"]],
                "role": user_data["role"],
            },
            {},
            report,
            "user_memberships",
        )
        report.demo_users.append(user.username)


# --- sequences ---------------------------------------------------------------------------------


def locked_counter(model, **key):
    """The counter row of ``key`` (a model with a unique key and ``last_number``), created if
    missing and locked until the transaction ends. A concurrent creation is absorbed (INSERT …
    ON CONFLICT DO NOTHING / INSERT OR IGNORE), so the first number of a year never fails."""
    model.objects.bulk_create([model(**key)], ignore_conflicts=True)
    return model.objects.select_for_update().get(**key)


def next_in_sequence(model, **key) -> int:
    """The next number of a gapless sequence (convention references, statement numbers):
    consecutive even when two people take one at once. Call inside a transaction."""
    counter = locked_counter(model, **key)
    counter.last_number = F("last_number") + 1
    counter.save(update_fields=["last_number"])
    counter.refresh_from_db(fields=["last_number"])
    return counter.last_number


# --- audit of document downloads ---------------------------------------------------------------


def record_document_access(request, document: str) -> None:
    """Note that the signed-in person downloaded or exported ``document``."""
    from mutualisation.models import DocumentAccess

    DocumentAccess.objects.create(
        user=request.user if request.user.is_authenticated else None,
        username=request.user.get_username() if request.user.is_authenticated else "",
        document=str(document)[:300],
        path=request.get_full_path()[:500],
    )


def purge_document_accesses(*, now=None) -> int:
    """Delete the accesses older than the retention period; returns how many."""
    from datetime import timedelta

    from django.conf import settings
    from django.utils import timezone

    from mutualisation.models import DocumentAccess

    days = getattr(settings, "MUTUALIS_AUDIT_RETENTION_DAYS", 365)
    limit = (now or timezone.now()) - timedelta(days=days)
    deleted, _ = DocumentAccess.objects.filter(at__lt=limit).delete()
    return deleted


# --- optimistic locking ------------------------------------------------------------------------


def last_change(instance) -> tuple[str, str]:
    """(who, when) of the latest saved change of a model with simple-history, for the message
    that refuses a save made from an older version."""
    from django.utils import timezone
    from django.utils.formats import date_format
    from django.utils.translation import gettext as _

    latest = instance.history.select_related("history_user").first()
    who = str(latest.history_user) if latest and latest.history_user else _("un autre utilisateur")
    when = (
        date_format(timezone.localtime(latest.history_date), "SHORT_DATETIME_FORMAT")
        if latest
        else ""
    )
    return who, when
