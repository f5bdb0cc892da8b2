"""The per-clause conformance report: verdicts from test outcomes.

Each test outcome is filed under every clause the test names. A clause is

- ``PASS``: at least one of its tests passed and none failed;
- ``FAIL``: a test of a MUST clause failed;
- ``NON-STRICT``: a test of a SHOULD clause failed (only SHOULDs fail);
- ``UNSUPPORTED``: every test was skipped because the backend declares it
  lacks a feature the clause needs;
- ``SKIPPED``: every test was skipped for another reason (e.g. the kernel
  lacks memfd);
- ``NOT-RUN``: no test of the clause ran (deselected).

A failure listed in the backend's expected-failure file still makes its
clause FAIL or NON-STRICT, marked *expected*, and does not fail the run.
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
from fdsend_conformance.plumbing.contract import Clause

__all__ = ["NON_STRICT_PREFIX", "UNSUPPORTED_PREFIX", "ClauseReport", "Outcome", "Verdict"]

UNSUPPORTED_PREFIX = "UNSUPPORTED: "
NON_STRICT_PREFIX = "NON-STRICT: "
EXPECTED_PREFIX = "expected: "


class Outcome:
    """What one test came to, as far as the report cares."""

    PASSED = "passed"
    FAILED = "failed"
    EXPECTED = "expected-failure"
    NON_STRICT = "non-strict"
    UNEXPECTEDLY_PASSED = "unexpectedly-passed"
    UNSUPPORTED = "unsupported"
    SKIPPED = "skipped"

    FAILURES = frozenset({FAILED, EXPECTED, NON_STRICT})
    PASSES = frozenset({PASSED, UNEXPECTEDLY_PASSED})
    SKIPS = frozenset({UNSUPPORTED, SKIPPED})


@dataclass
class Verdict:
    """The status of one clause with the outcomes behind it."""

    clause: Clause
    status: str
    expected: bool
    counts: dict[str, int]
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


def _status(clause: Clause, outcomes: list[str]) -> str:
    if not outcomes:
        return "NOT-RUN"
    if any(o in Outcome.FAILURES for o in outcomes):
        return "FAIL" if clause.level == "core" else "NON-STRICT"
    if any(o in Outcome.PASSES for o in outcomes):
        return "PASS"
    if all(o == Outcome.UNSUPPORTED for o in outcomes):
        return "UNSUPPORTED"
    return "SKIPPED"


@dataclass
class ClauseReport:
    """Collects test outcomes and turns them into one verdict per clause."""

    clauses: dict[str, Clause]
    outcomes: dict[str, tuple[tuple[str, ...], str]] = field(default_factory=dict)
    skip_reasons: dict[str, str] = field(default_factory=dict)

    def record(
        self, test_id: str, clause_ids: Iterable[str], outcome: str, reason: str | None = None
    ) -> None:
        """File ``outcome`` for ``test_id`` (with a skip's ``reason``); a worse phase wins."""
        ids = tuple(clause_ids)
        previous = self.outcomes.get(test_id)
        if previous is not None and _rank(previous[1]) >= _rank(outcome):
            return
        self.outcomes[test_id] = (ids, outcome)
        if reason is not None and outcome in Outcome.SKIPS:
            self.skip_reasons[test_id] = reason
        else:
            self.skip_reasons.pop(test_id, None)

    @property
    def active(self) -> bool:
        """Whether any conformance test reported at all."""
        return bool(self.outcomes)

    def verdicts(self) -> list[Verdict]:
        by_clause: dict[str, list[tuple[str, str]]] = {cid: [] for cid in self.clauses}
        for test_id, (ids, outcome) in self.outcomes.items():
            for cid in ids:
                by_clause.setdefault(cid, []).append((test_id, outcome))
        verdicts = []
        for cid, clause in self.clauses.items():
            entries = by_clause[cid]
            outcomes = [o for _, o in entries]
            failures = sorted(t for t, o in entries if o in Outcome.FAILURES)
            verdicts.append(
                Verdict(
                    clause=clause,
                    status=_status(clause, outcomes),
                    expected=bool(failures)
                    and all(o != Outcome.FAILED for o in outcomes if o in Outcome.FAILURES),
                    counts=dict(Counter(outcomes)),
                    failures=failures,
                    unexpected_passes=sorted(
                        t for t, o in entries if o == Outcome.UNEXPECTEDLY_PASSED
                    ),
                    skips={t: self.skip_reasons[t] for t, _ in entries if t in self.skip_reasons},
                )
            )
        return verdicts

    def as_json(self, backend: Backend, level: str) -> dict[str, Any]:
        verdicts = self.verdicts()
        return {
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
            "totals": dict(Counter(v.status for v in verdicts)),
            "conforming": conforming(verdicts, level),
        }

    def write_json(self, path: Path, backend: Backend, level: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.as_json(backend, level)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")

    def lines(self, backend: Backend, level: str) -> list[str]:
        """The terminal summary: one line per clause, then totals."""
        verdicts = self.verdicts()
        width = max((len(cid) for cid in self.clauses), default=8)
        out = []
        for v in verdicts:
            note = " (expected)" if v.expected else ""
            counts = ", ".join(f"{n} {k}" for k, n in sorted(v.counts.items()))
            out.append(
                f"{v.clause.id:<{width}}  {v.status + note:<22} "
                f"{v.clause.keyword:<6} {v.clause.title}  [{counts or 'no tests'}]"
            )
            out.extend(f"{'':<{width}}  unexpectedly passing: {t}" for t in v.unexpected_passes)
            if v.status in ("SKIPPED", "UNSUPPORTED"):  # say why, once per reason
                reasons = dict.fromkeys(v.skips.values())
                out.extend(f"{'':<{width}}  skipped: {reason}" for reason in reasons)
        totals = Counter(v.status for v in verdicts)
        env = environment()
        out.append("totals: " + ", ".join(f"{n} {status}" for status, n in sorted(totals.items())))
        out.append(
            f"backend: {backend.name} {backend.version} ({backend.origin}); "
            f"truncation: {backend.truncation}; "
            f"unsupported: {', '.join(sorted(backend.unsupported)) or 'none'}"
        )
        out.append(
            f"python: {env['python']}; kernel: {env['kernel']}; level: {level}; "
            f"conforming: {'yes' if conforming(verdicts, level) else 'no'}"
        )
        return out


_RANKS = {
    Outcome.PASSED: 0,
    Outcome.SKIPPED: 1,
    Outcome.UNSUPPORTED: 2,
    Outcome.UNEXPECTEDLY_PASSED: 3,
    Outcome.NON_STRICT: 4,
    Outcome.EXPECTED: 5,
    Outcome.FAILED: 6,
}


def _rank(outcome: str) -> int:
    return _RANKS[outcome]


def conforming(verdicts: Iterable[Verdict], level: str) -> bool:
    """No unexpected failure at ``level``: core only, or core and strict."""
    gated = {"FAIL"} if level == "core" else {"FAIL", "NON-STRICT"}
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
