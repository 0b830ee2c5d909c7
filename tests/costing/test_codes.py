"""The engine's codes and the Django choices come from one source: the engine may not import
Django, so this test keeps them equal (a new choice without its engine code fails here)."""

import re
from pathlib import Path

from conventions.models import AllocationKey, ManagingShare, SettlementMode
from costing import engine
from costing.models import BalanceChannel, CostCategory


def test_allocation_keys_are_the_engines():
    assert tuple(AllocationKey.values) == engine.ALLOCATION_KEYS


def test_settlement_modes_are_the_engines():
    assert tuple(SettlementMode.values) == engine.SETTLEMENT_MODES


def test_managing_shares_are_the_engines():
    assert tuple(ManagingShare.values) == engine.MANAGING_SHARES


def test_balance_channels_are_the_engines():
    assert tuple(BalanceChannel.values) == engine.CHANNELS


def test_cost_categories_are_the_engines():
    assert tuple(CostCategory.values) == engine.COST_CATEGORIES


def test_no_settlement_code_is_written_as_a_literal_outside_its_definitions():
    root = Path(__file__).resolve().parents[2]
    literal = re.compile(r"""["'](TITRE|AC_IMPUTATION|MIXED)["']""")
    definitions = {root / "costing" / "engine.py", root / "conventions" / "models.py"}
    offenders = [
        str(path.relative_to(root))
        for folder in ("costing", "conventions", "mutualisation", "templates")
        for path in (root / folder).rglob("*")
        if path.suffix in (".py", ".html")
        and "migrations" not in path.parts
        and path not in definitions
        and literal.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
