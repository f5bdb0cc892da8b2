"""The numbered clauses of ``CONTRACT.md``, parsed into data.

A clause is a heading ``### ID: title`` followed by a ``- **MUST**`` or
``- **SHOULD**`` line, then ``- Why: ...`` (what the clause protects, the text
a failing clause is reported with) and ``- Source: ...``, each item running
on over indented lines. MUST clauses are level ``core``; SHOULD clauses are
level ``strict``.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CLAUSE_ID",
    "CONTRACT_PATH",
    "LEVELS",
    "Clause",
    "ContractError",
    "cross_check",
    "load_contract",
    "parse_contract",
]

CONTRACT_PATH = Path(__file__).parent.parent / "CONTRACT.md"

#: Levels, weakest first: ``--level=core`` gates on core clauses only.
LEVELS = ("core", "strict")

#: How a clause id is spelled (``TRUNC-3``), as regular-expression text.
CLAUSE_ID = r"[A-Z]+-\d+"

_HEADING = re.compile(rf"^### (?P<id>{CLAUSE_ID}): (?P<title>.+?)\s*$")
_LEVEL = re.compile(r"^- \*\*(?P<keyword>MUST|SHOULD)\*\*")
_SECTION = re.compile(r"^## (?P<section>[A-Z]+)\b")
_ITEM = re.compile(r"^- (?P<name>Why|Source): (?P<text>.*)$")


class ContractError(ValueError):
    """CONTRACT.md does not have the expected shape."""


@dataclass(frozen=True)
class Clause:
    """One numbered clause of the contract."""

    id: str
    title: str
    keyword: str  # "MUST" or "SHOULD"
    section: str
    #: Why the clause matters, on one line (its "Why:" item).
    why: str = ""
    #: Where the behaviour is specified (its "Source:" item).
    source: str = ""

    @property
    def level(self) -> str:
        """``core`` for MUST, ``strict`` for SHOULD."""
        return "core" if self.keyword == "MUST" else "strict"


def parse_contract(text: str) -> dict[str, Clause]:
    """Parse contract markdown into clauses keyed by id, in document order."""
    clauses: dict[str, Clause] = {}
    section = ""
    pending: tuple[str, str] | None = None
    last: str | None = None  # the clause whose items are being read
    items: dict[str, list[str]] = {}
    item: list[str] | None = None  # the item being continued
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _SECTION.match(line):
            section, last, item = match["section"], None, None
        elif match := _HEADING.match(line):
            if pending is not None:
                raise ContractError(f"clause {pending[0]} has no MUST/SHOULD line")
            pending, last, item = (match["id"], match["title"]), None, None
            if pending[0] in clauses:
                raise ContractError(f"line {number}: clause {pending[0]} defined twice")
        elif pending is not None and (match := _LEVEL.match(line)):
            clause_id, title = pending
            clauses[clause_id] = Clause(clause_id, title, match["keyword"], section)
            pending, last, items = None, clause_id, {}
        elif last is not None and (match := _ITEM.match(line)):
            item = items.setdefault(match["name"], [match["text"]])
            clauses[last] = _with_items(clauses[last], items)
        elif last is not None and item is not None and line.startswith("  "):
            item.append(line.strip())
            clauses[last] = _with_items(clauses[last], items)
        else:
            item = None
    if pending is not None:
        raise ContractError(f"clause {pending[0]} has no MUST/SHOULD line")
    return clauses


def _with_items(clause: Clause, items: dict[str, list[str]]) -> Clause:
    """``clause`` with its Why and Source items, each joined into one line."""
    return dataclasses.replace(
        clause,
        why=" ".join(items.get("Why", [])),
        source=" ".join(items.get("Source", [])),
    )


@functools.cache
def load_contract() -> dict[str, Clause]:
    """Return the clauses of the packaged CONTRACT.md."""
    return parse_contract(CONTRACT_PATH.read_text(encoding="utf-8"))


def cross_check(
    clauses: dict[str, Clause], tests: Iterable[tuple[str, tuple[str, ...]]], complete: bool
) -> list[str]:
    """Where the tests and the contract disagree, one message each.

    ``tests`` are (test id, clause ids) pairs. Every test must name at least
    one clause, every named clause must exist, and, when the whole suite was
    collected (``complete``), every clause must have a test.
    """
    problems = []
    covered: set[str] = set()
    for test_id, ids in tests:
        if not ids:
            problems.append(f"{test_id}: no @pytest.mark.clause")
        problems.extend(f"{test_id}: unknown clause {cid}" for cid in ids if cid not in clauses)
        covered.update(ids)
    if complete:
        problems.extend(f"clause {cid} has no test" for cid in clauses if cid not in covered)
    return problems
