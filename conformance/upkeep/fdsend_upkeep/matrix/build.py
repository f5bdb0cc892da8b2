"""The matrix as JSON-ready data: one row per clause, one cell per backend.

Each cell is PASS / FAIL / NON-STRICT / UNSUPPORTED (or SKIPPED / NOT-RUN).
Every FAIL or NON-STRICT cell is explained by the backend's expected-failure
file (``expected/<backend>.txt``): the entries that cover its failing tests.
A failing test that no entry covers is *unexplained*; the matrix counts the
cells that have one (``unexplained_cells``), and the command line answers
them with exit status 1.

The matrix reads the reports as the plugin writes them (schema 1 and
later): each clause's verdict, and each test with the clauses it names.

Clauses of the KERNEL section test the kernel, not the backend: their rows
are marked ``backend_independent`` and shown once, with the result of the
first backend run (the reference when it ran), and any run that disagrees
is named. No backend's expected-failure file explains them: a kernel that
fails one differs from what the contract measured, whatever the backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fdsend_conformance.outcome import Status
from fdsend_conformance.plumbing.contract import Clause
from fdsend_conformance.plumbing.expected import (
    ExpectedFailure,
    builtin_expected_file,
    id_in_suite,
    read_expected,
)
from fdsend_upkeep.matrix.packages import CONSIDERED, NOT_INSTALLABLE, NOT_ON_LINUX

__all__ = [
    "DRIVERS_DIR",
    "EXPLAINED_STATUSES",
    "KERNEL_SECTION",
    "build_matrix",
    "check_schema",
    "explain",
    "ordered_backends",
]

#: The contract section whose clauses check the kernel, whatever the backend.
KERNEL_SECTION = "KERNEL"

#: Statuses that need an explanation from the expected-failure file.
EXPLAINED_STATUSES = frozenset({Status.FAIL, Status.NON_STRICT})

#: The oldest report schema the matrix reads (the first with ``tests``).
_MIN_SCHEMA = 1

#: Backends shown first, in this order; the rest follow by name.
_FIRST = ("reference", "stdlib", "multiprocessing")


# Explaining cells.


def check_schema(report: Mapping[str, Any], source: str) -> None:
    """Refuse a report older than the matrix reads (ValueError, naming ``source``)."""
    schema = report.get("schema", 0)
    if not isinstance(schema, int) or schema < _MIN_SCHEMA:
        raise ValueError(
            f"{source}: report schema {schema}, the matrix needs {_MIN_SCHEMA} or later "
            "(a report with 'tests'): run the suite again"
        )


def explain(
    report: Mapping[str, Any], entries: Sequence[ExpectedFailure]
) -> dict[str, tuple[list[ExpectedFailure], list[str]]]:
    """For each FAIL/NON-STRICT clause: (entries covering it, unexplained tests).

    A failing test is covered by the first entry that matches it, as in the
    run itself; an entry matches by test id or by any clause the test names
    (the report's ``tests``). A test the run itself marked expected by an
    entry that matches neither (an OWN-1 check failed by the change an OWN-1
    entry documents) is covered by that entry, named in the test's reason.
    """
    check_schema(report, f"report of {report['backend']['name']}")
    clauses_of = {test["nodeid"]: tuple(test["clauses"]) for test in report["tests"]}
    run_reasons = {
        test["nodeid"]: test.get("reason") or ""
        for test in report["tests"]
        if test.get("outcome") == "expected-failure"
    }
    result: dict[str, tuple[list[ExpectedFailure], list[str]]] = {}
    for verdict in report["clauses"]:
        if Status(verdict["status"]) not in EXPLAINED_STATUSES:
            continue
        covering: list[ExpectedFailure] = []
        unexplained: list[str] = []
        for nodeid in verdict["failures"]:
            test_id = id_in_suite(nodeid)
            ids = clauses_of.get(nodeid, (verdict["id"],))
            entry = next((e for e in entries if e.matches(test_id, ids)), None)
            if entry is None and nodeid in run_reasons:
                entry = next((e for e in entries if _named_by(run_reasons[nodeid], e)), None)
            if entry is None:
                unexplained.append(test_id)
            elif entry not in covering:
                covering.append(entry)
        if not verdict["failures"]:
            unexplained.append("(no failing test recorded)")
        covering.sort(key=lambda e: e.line)
        result[verdict["id"]] = (covering, unexplained)
    return result


def _named_by(run_reason: str, entry: ExpectedFailure) -> bool:
    """Whether a run's expected-failure reason is ``entry``'s: its reason, then its file:line."""
    return f"{entry.reason} (" in run_reason and run_reason.endswith(f":{entry.line})")


#: The repository's drivers (docs/drivers.md), each a folder with its expected.txt.
DRIVERS_DIR = Path(__file__).resolve().parents[3] / "drivers"


def _expected_entries(backend_name: str) -> tuple[list[ExpectedFailure], str | None]:
    path = builtin_expected_file(backend_name)
    if path is not None:
        return read_expected(path), f"expected/{path.name}"
    driver = DRIVERS_DIR / backend_name / "expected.txt"  # a driver's, named after its folder
    if driver.is_file():
        return read_expected(driver), f"drivers/{backend_name}/expected.txt"
    return [], None


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
            status = Status(verdict["status"]) if verdict else Status.NOT_RUN
            cell: dict[str, Any] = {"status": status}
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
                cell["unexpected_passes"] = [id_in_suite(t) for t in verdict["unexpected_passes"]]
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
        "generated_by": "python -m fdsend_upkeep.matrix",
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
        "not_on_linux": [{"name": n, "what": w, "outcome": why} for n, w, why in NOT_ON_LINUX],
    }


def _tally(statuses: Iterable[Status]) -> dict[Status, int]:
    counts: dict[Status, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))
