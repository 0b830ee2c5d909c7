import pytest

from conventions.models import Convention, ConventionKind, Status
from tests.conftest import run_seed_demo

pytestmark = pytest.mark.django_db


def test_demo_conventions_pass_their_legal_gates_and_load_once():
    run_seed_demo()
    run_seed_demo()
    statuses = dict(Convention.objects.values_list("title", "status"))
    assert len(statuses) == 8
    assert statuses["Mise à disposition du service systèmes d'information"] == Status.IN_FORCE
    assert (
        statuses["Service commun d'instruction des autorisations du droit des sols"]
        == Status.IN_FORCE
    )
    assert statuses["Mise à disposition du service de la paie"] == Status.CONSULTATION
    assert statuses["Service commun des archives"] == Status.DELIBERATED
    kinds = set(Convention.objects.values_list("kind", flat=True))
    assert {
        ConventionKind.MISE_A_DISPOSITION,
        ConventionKind.SERVICE_COMMUN,
        ConventionKind.PRESTATION,
    } <= kinds
    amended = Convention.objects.get(title="Mise à disposition du service systèmes d'information")
    assert amended.amendments.get().status == "SIGNED"


def test_demo_costing_data_loads_once():
    from costing.models import CostBase, UnitCost, UsageRecord

    run_seed_demo()
    counts = (CostBase.objects.count(), UnitCost.objects.count(), UsageRecord.objects.count())
    run_seed_demo()
    assert (
        CostBase.objects.count(),
        UnitCost.objects.count(),
        UsageRecord.objects.count(),
    ) == counts
    assert counts[0] == 21
    assert counts[2] > 500
