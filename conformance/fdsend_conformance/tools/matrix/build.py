"""The matrix as JSON-ready data: one row per clause, one cell per backend.

Each cell is PASS / FAIL / NON-STRICT / UNSUPPORTED (or SKIPPED / NOT-RUN).
Every FAIL or NON-STRICT cell is explained by the backend's expected-failure
file (``expected/<backend>.txt``): the entries that cover its failing tests.
A failing test that no entry covers is *unexplained*; the matrix counts the
cells that have one (``unexplained_cells``), and the command line answers
them with exit status 1.

Clauses of the KERNEL section test the kernel, not the backend: their rows
are marked ``backend_independent`` and shown once, with the result of the
first backend run (the reference when it ran), and any run that disagrees
is named. No backend's expected-failure file explains them: a kernel that
fails one differs from what the contract measured, whatever the backend.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fdsend_conformance.plumbing.contract import Clause
from fdsend_conformance.plumbing.expected import (
    ExpectedFailure,
    builtin_expected_file,
    parse_expected,
)
from fdsend_conformance.tools.matrix.packages import CONSIDERED, NOT_INSTALLABLE

__all__ = [
    "EXPLAINED_STATUSES",
    "KERNEL_SECTION",
    "build_matrix",
    "explain",
    "ordered_backends",
]

#: The contract section whose clauses check the kernel, whatever the backend.
KERNEL_SECTION = "KERNEL"

#: Statuses that need an explanation from the expected-failure file.
EXPLAINED_STATUSES = frozenset({"FAIL", "NON-STRICT"})

#: Backends shown first, in this order; the rest follow by name.
_FIRST = ("reference", "stdlib", "multiprocessing")


# Explaining cells.


def _test_id(nodeid: str) -> str:
    """A report's node id as expected-failure selectors see it."""
    path, _, rest = nodeid.partition("::")
    return f"{os.path.basename(path)}::{rest}"


def explain(
    report: Mapping[str, Any], entries: Sequence[ExpectedFailure]
) -> dict[str, tuple[list[ExpectedFailure], list[str]]]:
    """For each FAIL/NON-STRICT clause: (entries covering it, unexplained tests).

    A failing test is covered by the first entry that matches it, as in the
    run itself; an entry matches by test id or by any clause the test names
    (recovered from the report: a failing test is among the failures of
    every clause it names).
    """
    clauses_of: dict[str, list[str]] = {}
    for verdict in report["clauses"]:
        for nodeid in verdict["failures"]:
            clauses_of.setdefault(nodeid, []).append(verdict["id"])
    result: dict[str, tuple[list[ExpectedFailure], list[str]]] = {}
    for verdict in report["clauses"]:
        if verdict["status"] not in EXPLAINED_STATUSES:
            continue
        covering: list[ExpectedFailure] = []
        unexplained: list[str] = []
        for nodeid in verdict["failures"]:
            test_id = _test_id(nodeid)
            ids = tuple(clauses_of.get(nodeid, [verdict["id"]]))
            entry = next((e for e in entries if e.matches(test_id, ids)), None)
            if entry is None:
                unexplained.append(test_id)
            elif entry not in covering:
                covering.append(entry)
        if not verdict["failures"]:
            unexplained.append("(no failing test recorded)")
        covering.sort(key=lambda e: e.line)
        result[verdict["id"]] = (covering, unexplained)
    return result


def _expected_entries(backend_name: str) -> tuple[list[ExpectedFailure], str | None]:
    path = builtin_expected_file(backend_name)
    if path is None:
        return [], None
    return parse_expected(path.read_text(encoding="utf-8"), str(path)), f"expected/{path.name}"


# Building the matrix.


def ordered_backends(names: Iterable[str]) -> list[str]:
    names = list(names)
    first = [n for n in _FIRST if n in names]
    return first + sorted(n for n in names if n not in first)


def build_matrix(
    clauses: Mapping[str, Clause],
    reports: Mapping[str, Mapping[str, Any]],
    unavailable: Sequence[Mapping[str, str]] = (),
    expected: Mapping[str, Sequence[ExpectedFailure]] | None = None,
    expected_files: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The matrix as JSON-ready data.

    ``reports`` maps backend names to their conformance reports;
    ``expected`` their expected-failure entries (default: each backend's
    built-in file).
    """
    names = ordered_backends(reports)
    entries: dict[str, Sequence[ExpectedFailure]] = {}
    files: dict[str, str | None] = {}
    for name in names:
        backend_name = str(reports[name]["backend"]["name"])
        if expected is not None:
            entries[name] = expected.get(name, ())
            files[name] = (expected_files or {}).get(name)
        else:
            entries[name], files[name] = _expected_entries(backend_name)
    explanations = {name: explain(reports[name], entries[name]) for name in names}
    verdicts = {name: {v["id"]: v for v in reports[name]["clauses"]} for name in names}

    rows = []
    unexplained_cells = 0
    for clause in clauses.values():
        results: dict[str, Any] = {}
        for name in names:
            verdict = verdicts[name].get(clause.id)
            cell: dict[str, Any] = {"status": verdict["status"] if verdict else "NOT-RUN"}
            kernel = clause.section == KERNEL_SECTION
            if clause.id in explanations[name] and not kernel:
                covering, unexplained = explanations[name][clause.id]
                cell["explanations"] = [
                    {"selector": e.selector, "reason": e.reason} for e in covering
                ]
                if unexplained:
                    cell["unexplained"] = unexplained
                    unexplained_cells += 1
            if verdict and verdict.get("unexpected_passes"):
                cell["unexpected_passes"] = [_test_id(t) for t in verdict["unexpected_passes"]]
            results[name] = cell
        row: dict[str, Any] = {
            "id": clause.id,
            "title": clause.title,
            "keyword": clause.keyword,
            "section": clause.section,
            "backend_independent": clause.section == KERNEL_SECTION,
            "results": results,
        }
        rows.append(row)

    backends = []
    for name in names:
        info = reports[name]["backend"]
        statuses = [
            (row["keyword"], row["results"][name]["status"])
            for row in rows
            if not row["backend_independent"]
        ]
        backends.append(
            {
                "name": name,
                "version": info["version"],
                "origin": info["origin"],
                "truncation": info["truncation"],
                "unsupported": list(info["unsupported"]),
                "expected_file": files[name],
                "must": _tally(s for k, s in statuses if k == "MUST"),
                "should": _tally(s for k, s in statuses if k == "SHOULD"),
            }
        )
    first = reports[names[0]]["environment"] if names else {}
    return {
        "generated_by": "python -m fdsend_conformance.tools.matrix",
        "environment": {k: first[k] for k in ("python", "kernel", "machine") if k in first},
        "backends": backends,
        "clauses": rows,
        "kernel_clauses_from": names[0] if names else None,
        "unexplained_cells": unexplained_cells,
        "unavailable": [dict(u) for u in unavailable],
        "not_installable": [
            {"package": u.package, "version": u.version, "outcome": u.outcome, "error": u.error}
            for u in NOT_INSTALLABLE
        ],
        "considered": [{"package": p, "version": v, "outcome": why} for p, v, why in CONSIDERED],
    }


def _tally(statuses: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))
