"""The contract parser and the clause/test cross-check."""

from __future__ import annotations

import pytest

from fdsend_conformance.plumbing.contract import (
    ContractError,
    cross_check,
    load_contract,
    parse_contract,
)

SAMPLE = """\
## ABC: a section

### ABC-1: First
- **MUST**
- Why: because.

### ABC-2: Second
- **SHOULD**
"""


def test_parse_levels_and_sections():
    clauses = parse_contract(SAMPLE)
    assert list(clauses) == ["ABC-1", "ABC-2"]
    assert clauses["ABC-1"].level == "core"
    assert clauses["ABC-2"].level == "strict"
    assert clauses["ABC-2"].section == "ABC"
    assert clauses["ABC-1"].title == "First"


def test_clause_without_level_is_an_error():
    with pytest.raises(ContractError, match="ABC-3 has no MUST/SHOULD"):
        parse_contract(SAMPLE + "\n### ABC-3: Third\n- Why: forgot the level\n")


def test_duplicate_clause_is_an_error():
    with pytest.raises(ContractError, match="defined twice"):
        parse_contract(SAMPLE + "\n### ABC-1: Again\n- **MUST**\n")


def test_packaged_contract_parses_with_unique_ids():
    clauses = load_contract()
    assert len(clauses) >= 30
    assert {c.keyword for c in clauses.values()} == {"MUST", "SHOULD"}


def test_cross_check_finds_each_kind_of_disagreement():
    clauses = parse_contract(SAMPLE)
    tests = [("t1", ("ABC-1",)), ("t2", ()), ("t3", ("ABC-9",))]
    problems = cross_check(clauses, tests, complete=True)
    assert problems == [
        "t2: no @pytest.mark.clause",
        "t3: unknown clause ABC-9",
        "clause ABC-2 has no test",
    ]


def test_cross_check_of_a_partial_run_ignores_uncovered_clauses():
    clauses = parse_contract(SAMPLE)
    assert cross_check(clauses, [("t1", ("ABC-1",))], complete=False) == []
