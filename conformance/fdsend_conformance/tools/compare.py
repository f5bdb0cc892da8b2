"""``fdsend-conformance compare OLD.json NEW.json``: what changed between two runs.

Both files are JSON conformance reports (``--conformance-report``), say one
taken on the old kernel and one on the new. Every clause whose status, or
whose set of failing tests, differs is printed with both sides; so are
clauses present in only one report. Exit status: 0 when nothing changed,
1 when something did, 2 on a usage error (a file missing or not a report).

Only each clause's id, status and failing tests are read, which reports of
every schema version have: one from before the ``schema`` field compares
with a newer one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdsend_conformance.plumbing.expected import id_in_suite

__all__ = ["Change", "changes", "failing_tests", "main"]


@dataclass(frozen=True)
class Change:
    """One clause that differs between two reports (None: absent from that side)."""

    clause: str
    old: str | None
    new: str | None
    newly_failing: tuple[str, ...] = ()
    no_longer_failing: tuple[str, ...] = ()

    def line(self) -> str:
        text = f"{self.clause:<10} {self.old or 'absent'} -> {self.new or 'absent'}"
        for test in self.newly_failing:
            text += f"\n{'':<10} now failing: {test}"
        for test in self.no_longer_failing:
            text += f"\n{'':<10} no longer failing: {test}"
        return text


def failing_tests(clause: dict[str, Any]) -> set[str]:
    """The suite ids (``test_file.py::name``) of a report clause's failing tests.

    A report names tests by node id, which starts with the suite's path as
    seen from where pytest ran: two runs from different folders (a host's
    checkout, a guest's) name the same test differently.
    """
    return {id_in_suite(t) for t in clause["failures"]}


def _by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {clause["id"]: clause for clause in report["clauses"]}


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """The clauses whose status or failing tests differ, in the new report's order."""
    before, after = _by_id(old), _by_id(new)
    found = []
    for cid in [*after, *(c for c in before if c not in after)]:
        was, now = before.get(cid), after.get(cid)
        if was is None or now is None:
            found.append(
                Change(
                    cid,
                    None if was is None else was["status"],
                    None if now is None else now["status"],
                )
            )
            continue
        failed_before, failed_now = failing_tests(was), failing_tests(now)
        if was["status"] != now["status"] or failed_before != failed_now:
            found.append(
                Change(
                    cid,
                    was["status"],
                    now["status"],
                    tuple(sorted(failed_now - failed_before)),
                    tuple(sorted(failed_before - failed_now)),
                )
            )
    return found


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("clauses"), list):
        raise ValueError(f"{path}: not a conformance report (no 'clauses' list)")
    return data


def _describe(report: dict[str, Any]) -> str:
    env = report.get("environment", {})
    backend = report.get("backend", {})
    return (
        f"{backend.get('name', '?')} {backend.get('version', '')}, "
        f"{env.get('kernel', '?')}, {env.get('python', '?')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Compare two JSON conformance reports; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="fdsend-conformance compare",
        description="Show the clauses whose result differs between two JSON reports.",
        epilog="Exit status: 0 when no clause changed, 1 when any did, 2 when a report "
        "cannot be read.",
    )
    parser.add_argument("old", type=Path, help="the earlier report (e.g. the old kernel)")
    parser.add_argument("new", type=Path, help="the later report (e.g. the new kernel)")
    args = parser.parse_args(argv)
    try:
        old, new = _load(args.old), _load(args.new)
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        print(f"fdsend-conformance compare: {exc}", file=sys.stderr)
        return 2
    print(f"old: {_describe(old)}")
    print(f"new: {_describe(new)}")
    found = changes(old, new)
    for change in found:
        print(change.line())
    print(f"{len(found)} clause(s) changed" if found else "no clause changed")
    return 1 if found else 0
