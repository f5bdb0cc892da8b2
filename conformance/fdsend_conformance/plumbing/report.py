"""The per-clause conformance report: verdicts from test outcomes.

Each test outcome is filed under every clause the test names. A clause is

- ``PASS``: at least one of its tests passed and none failed;
- ``FAIL``: a test of a MUST clause failed, or of a SHOULD clause in a
  ``--level strict`` run;
- ``NON-STRICT``: a test of a SHOULD clause failed in a ``core`` run;
- ``UNSUPPORTED``: every test was skipped because the backend declares it
  lacks a feature the clause needs;
- ``SKIPPED``: every test was skipped for another reason (e.g. the kernel
  lacks memfd);
- ``NOT-RUN``: no test of the clause ran (deselected).

A failure listed in the backend's expected-failure file (or a known bug
the test names itself) still makes its clause FAIL or NON-STRICT, marked
*expected*, and does not fail the run. The terminal's rendering is in
:mod:`~fdsend_conformance.plumbing.terminal`.

The JSON report (``--conformance-report``) has the shape of
``report.schema.json`` (its version is :data:`SCHEMA_VERSION`, in the
report's ``schema`` field): the verdict of every clause and, under
``tests``, every test with its clauses, its outcome and the reason given.
"""

from __future__ import annotations

import json
import platform
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdsend_conformance.backend import Backend
from fdsend_conformance.outcome import Outcome, Status
from fdsend_conformance.plumbing.contract import Clause
from fdsend_conformance.plumbing.expected import id_in_suite

__all__ = ["SCHEMA_FILE", "SCHEMA_VERSION", "ClauseReport", "TestResult", "Verdict"]

#: The version of the JSON report's shape; raised when a field changes meaning or goes.
SCHEMA_VERSION = 1
#: The JSON Schema of the report, shipped in the package.
SCHEMA_FILE = Path(__file__).parent.parent / "report.schema.json"


@dataclass(frozen=True)
class TestResult:
    """What one test came to: the clauses it names, its outcome, the reason it gave."""

    __test__ = False  # not a pytest test class

    clauses: tuple[str, ...]
    outcome: Outcome
    reason: str | None = None

    def then(self, later: TestResult) -> TestResult:
        """The result once a later phase came to ``later``: the worse of the two."""
        return later if later.outcome.rank > self.outcome.rank else self

    def as_json(self, nodeid: str) -> dict[str, Any]:
        return {
            "nodeid": nodeid,
            "id": id_in_suite(nodeid),
            "clauses": list(self.clauses),
            "outcome": self.outcome,
            "reason": self.reason,
        }


@dataclass
class Verdict:
    """The status of one clause with the outcomes behind it."""

    clause: Clause
    status: Status
    expected: bool
    counts: dict[Outcome, int]
    failures: list[str]
    unexpected_passes: list[str]
    #: Why each skipped (or UNSUPPORTED) test was skipped, by test id.
    skips: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.clause.id,
            "title": self.clause.title,
            "keyword": self.clause.keyword,
            "level": self.clause.level,
            "section": self.clause.section,
            "status": self.status,
            "expected": self.expected,
            "tests": self.counts,
            "failures": self.failures,
            "unexpected_passes": self.unexpected_passes,
            "skips": self.skips,
        }


def _status(clause: Clause, outcomes: list[Outcome]) -> Status:
    if not outcomes:
        return Status.NOT_RUN
    if any(o.is_failure for o in outcomes):
        # A SHOULD clause's failures are NON_STRICT outcomes at level core,
        # FAILED ones at level strict, where they fail the run.
        failed = clause.level == "core" or Outcome.FAILED in outcomes
        return Status.FAIL if failed else Status.NON_STRICT
    if any(o.is_pass for o in outcomes):
        return Status.PASS
    if all(o == Outcome.UNSUPPORTED for o in outcomes):
        return Status.UNSUPPORTED
    return Status.SKIPPED


@dataclass
class ClauseReport:
    """Collects test outcomes and turns them into one verdict per clause."""

    clauses: dict[str, Clause]
    #: Every test that reported, by node id, in the order they first reported.
    tests: dict[str, TestResult] = field(default_factory=dict)

    def record(self, nodeid: str, result: TestResult) -> None:
        """File ``result`` for the test ``nodeid``; of two phases' results the worse wins."""
        previous = self.tests.get(nodeid)
        self.tests[nodeid] = result if previous is None else previous.then(result)

    @property
    def active(self) -> bool:
        """Whether any conformance test reported at all."""
        return bool(self.tests)

    def verdicts(self) -> list[Verdict]:
        by_clause: dict[str, list[tuple[str, TestResult]]] = {cid: [] for cid in self.clauses}
        for nodeid, result in self.tests.items():
            for cid in result.clauses:
                by_clause.setdefault(cid, []).append((nodeid, result))
        verdicts = []
        for cid, clause in self.clauses.items():
            entries = by_clause[cid]
            outcomes = [r.outcome for _, r in entries]
            failures = sorted(t for t, r in entries if r.outcome.is_failure)
            verdicts.append(
                Verdict(
                    clause=clause,
                    status=_status(clause, outcomes),
                    expected=bool(failures)
                    and all(o == Outcome.EXPECTED for o in outcomes if o.is_failure),
                    counts=dict(Counter(outcomes)),
                    failures=failures,
                    unexpected_passes=sorted(
                        t for t, r in entries if r.outcome == Outcome.UNEXPECTEDLY_PASSED
                    ),
                    skips={
                        t: r.reason
                        for t, r in entries
                        if r.outcome.is_skip and r.reason is not None
                    },
                )
            )
        return verdicts

    def as_json(self, backend: Backend, level: str) -> dict[str, Any]:
        verdicts = self.verdicts()
        return {
            "schema": SCHEMA_VERSION,
            "backend": {
                "name": backend.name,
                "version": backend.version,
                "origin": backend.origin,
                "truncation": backend.truncation,
                "unsupported": sorted(backend.unsupported),
            },
            "environment": environment(),
            "level": level,
            "clauses": [v.as_json() for v in verdicts],
            "tests": [self.tests[nodeid].as_json(nodeid) for nodeid in sorted(self.tests)],
            "totals": dict(Counter(v.status for v in verdicts)),
            "conforming": conforming(verdicts, level),
        }

    def write_json(self, path: Path, backend: Backend, level: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.as_json(backend, level)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def conforming(verdicts: Iterable[Verdict], level: str) -> bool:
    """No unexpected failure at ``level``: core only, or core and strict."""
    gated = {Status.FAIL} if level == "core" else {Status.FAIL, Status.NON_STRICT}
    return not any(v.status in gated and not v.expected for v in verdicts)


def environment() -> dict[str, str]:
    """Python and kernel versions, for comparing two runs."""
    uname = platform.uname()
    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": f"{uname.system} {uname.release}",
        "machine": uname.machine,
        "executable": sys.executable,
    }
