"""docs/costing.md is executable: each worked example in it is run (no database)."""

import doctest
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "costing.md"


def test_every_worked_example_of_docs_costing_md_holds():
    result = doctest.testfile(
        str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False
    )
    assert result.attempted >= 15
    assert result.failed == 0
