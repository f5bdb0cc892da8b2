"""The report in the terminal: one line per clause, and why each failing clause failed.

Passing clauses share one line per section of the contract (``-v``: one
line each). A failing clause (FAIL, NON-STRICT) is followed by the contract's "why" and,
for each of its failing test functions, the first failing assertion of one
representative case and how many more cases failed like it. An expected
failure reads XFAIL with the reason it was expected; a skip's reason is
given once, with the clauses it covers; clauses with no test in the run
share one line. pytest's own listing of failures is cut to one
representative per test function (:func:`representatives`).
"""

from __future__ import annotations

import contextlib
import textwrap
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from fdsend_conformance.backend import Backend
from fdsend_conformance.outcome import Outcome, Status
from fdsend_conformance.plumbing.bookkeeping import clauses_of_report
from fdsend_conformance.plumbing.expected import ExpectedFailure, id_in_suite
from fdsend_conformance.plumbing.report import (
    ClauseReport,
    TestResult,
    Verdict,
    conforming,
    environment,
)

__all__ = [
    "WIDTH",
    "by_function",
    "function_of",
    "label",
    "lines",
    "one_case_per_function",
    "representatives",
]

#: Lines are wrapped to this many columns.
WIDTH = 100
#: What the labels mean, once per report that uses them.
_LEGEND = {
    "NON-STRICT": "NON-STRICT: a SHOULD clause failed (fails the run at --level strict)",
    "XFAIL": "XFAIL: failed as the expected file or a known-bug list says",
}


def label(verdict: Verdict) -> str:
    """How the terminal names a clause's status: XFAIL for an expected failure."""
    return "XFAIL" if verdict.expected else str(verdict.status)


def function_of(test_id: str) -> str:
    """A test's id without its parameters: the cases of one test function share it."""
    return test_id.partition("[")[0]


def _wrapped(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_long_words=False,  # a path or a test id stays whole, to copy
        break_on_hyphens=False,
    )


def by_function(failures: list[tuple[str, TestResult]]) -> list[list[tuple[str, TestResult]]]:
    """(node id, result) pairs grouped by test function, each group in the order given."""
    groups: dict[str, list[tuple[str, TestResult]]] = {}
    for nodeid, result in failures:
        groups.setdefault(function_of(id_in_suite(nodeid)), []).append((nodeid, result))
    return list(groups.values())


def _gist(reason: str) -> str:
    """The failing assertion in one line: ``file.py:LINE: message``.

    An assertion's own message stands for it; one without a message is shown
    with the comparison pytest wrote under it.
    """
    first, *rest = reason.splitlines() or [""]
    where, found, message = first.partition(": AssertionError: ")
    if found:
        return f"{where}: {message}"
    if first.endswith("AssertionError") and rest:
        return f"{first}: {rest[0].strip()}"
    return first


def _first_failures(indent: str, failures: list[tuple[str, TestResult]]) -> list[str]:
    """Per failing test function: its first case, its reason, and how many more."""
    out = []
    for cases in by_function(failures):
        nodeid, result = cases[0]
        out.append(f"{indent}first failure: {id_in_suite(nodeid)}")
        out.extend(_wrapped(_gist(result.reason or "(no reason given)"), indent + "  "))
        if len(cases) > 1:
            out.append(f"{indent}  and {len(cases) - 1} more like it")
    return out


def _explained(indent: str, verdict: Verdict, tests: dict[str, TestResult]) -> list[str]:
    """The lines under a clause's row: why it failed, or why the failure was expected."""
    mine = [(t, tests[t]) for t in verdict.failures]
    if verdict.expected:
        reasons = dict.fromkeys(r.reason or "(no reason given)" for _, r in mine)
        return [line for reason in reasons for line in _wrapped(reason, indent)]
    failed = [(t, r) for t, r in mine if r.outcome != Outcome.EXPECTED]
    return _wrapped(f"why: {verdict.clause.why}", indent) + _first_failures(indent, failed)


def _skip_reasons(verdicts: list[Verdict]) -> list[str]:
    """Each reason that left a clause SKIPPED or UNSUPPORTED, once, with its clauses."""
    clauses_by_reason: dict[str, list[str]] = {}
    for v in verdicts:
        if v.status in (Status.SKIPPED, Status.UNSUPPORTED):
            for reason in dict.fromkeys(v.skips.values()):
                clauses_by_reason.setdefault(reason, []).append(v.clause.id)
    out = ["why skipped:"] if clauses_by_reason else []
    for reason, ids in clauses_by_reason.items():
        out.extend(_wrapped(f"{reason}  ({', '.join(ids)})", "  "))
    return out


def _stale_entries(expected: Iterable[ExpectedFailure], tests: dict[str, TestResult]) -> list[str]:
    """Entries of the expected file whose tests all passed: one line each."""
    out = []
    for entry in expected:
        matched = [r for t, r in tests.items() if entry.matches(id_in_suite(t), r.clauses)]
        if matched and all(r.outcome == Outcome.UNEXPECTEDLY_PASSED for r in matched):
            out.append(
                f"expected to fail, but its {len(matched)} test(s) passed: "
                f"{entry.selector} ({entry.where}); remove the line"
            )
    return out


def _numbers(ids: list[str]) -> str:
    """``KERNEL-1..3, 5`` for KERNEL-1, KERNEL-2, KERNEL-3, KERNEL-5 (ids of one section)."""
    prefix = ids[0].rpartition("-")[0]
    numbers = [int(cid.rpartition("-")[2]) for cid in ids]
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    spans = [f"{r[0]}..{r[-1]}" if len(r) > 2 else ", ".join(map(str, r)) for r in runs]
    return f"{prefix}-{', '.join(spans)}"


def _row(v: Verdict, width: int) -> str:
    counts = ", ".join(f"{n} {k}" for k, n in sorted(v.counts.items()))
    return (
        f"{v.clause.id:<{width}}  {label(v):<11} {v.clause.keyword:<6} {v.clause.title}  [{counts}]"
    )


def _passed_together(passed: list[Verdict], width: int) -> str:
    """One line for a section's passing clauses: their ids and their tests' counts."""
    counts: dict[Outcome, int] = {}
    for v in passed:
        for outcome, n in v.counts.items():
            counts[outcome] = counts.get(outcome, 0) + n
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    section = passed[0].clause.section
    ids = _numbers([v.clause.id for v in passed])
    return f"{section:<{width}}  {'PASS':<11} {len(passed)} clauses: {ids}  [{tally}]"


def _table(verdicts: list[Verdict], tests: dict[str, TestResult], every_row: bool) -> list[str]:
    """The clause rows, section by section; passing clauses of a section share a line."""
    width = max((len(v.clause.id) for v in verdicts), default=8)
    indent = " " * (width + 2)
    sections: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.status != Status.NOT_RUN:
            sections.setdefault(v.clause.section, []).append(v)
    out = []
    for members in sections.values():
        passed = [v for v in members if v.status == Status.PASS]
        if len(passed) > 1 and not every_row:
            out.append(_passed_together(passed, width))
            members = [v for v in members if v.status != Status.PASS]
        for v in members:
            out.append(_row(v, width))
            if v.status in (Status.FAIL, Status.NON_STRICT):
                out.extend(_explained(indent, v, tests))
    not_run = [v.clause.id for v in verdicts if v.status == Status.NOT_RUN]
    if not_run:
        out.append(
            f"{'NOT-RUN':<{width}}  {len(not_run)} clauses had no test in this run "
            f"(-k, -m or test paths): {not_run[0]} ... {not_run[-1]}"
        )
    return out


def lines(
    report: ClauseReport,
    backend: Backend,
    level: str,
    expected: Iterable[ExpectedFailure] = (),
    every_row: bool = False,
) -> list[str]:
    """The terminal summary: the clauses that ran, why each failing one failed, totals.

    ``every_row``: one line for each passing clause too (``-v``).
    """
    verdicts = report.verdicts()
    out = _table(verdicts, report.tests, every_row)
    out.extend(_skip_reasons(verdicts))
    out.extend(_stale_entries(expected, report.tests))
    labels = [label(v) for v in verdicts if v.status != Status.NOT_RUN]
    legend = [_LEGEND[name] for name in _LEGEND if name in labels]
    if legend:
        out.append("; ".join(legend))
    totals = {name: labels.count(name) for name in dict.fromkeys(sorted(labels))}
    env = environment()
    out.append("totals: " + ", ".join(f"{n} {name}" for name, n in totals.items()))
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


def representatives(reports: list[Any]) -> list[Any]:
    """``reports`` with one report per suite test function: the rest are "more like it".

    Reports of other tests all stay.
    """
    seen: set[str] = set()
    kept = []
    for report in reports:
        if clauses_of_report(report):
            function = function_of(report.nodeid)
            if function in seen:
                continue
            seen.add(function)
        kept.append(report)
    return kept


@contextlib.contextmanager
def one_case_per_function(terminalreporter: Any, config: pytest.Config) -> Iterator[None]:
    """While pytest writes its summary, it sees one failed case per suite test function.

    Unless the run chose a traceback style (``--tb``), and when every failure
    is a suite test's, pytest's tracebacks are left out: the report shows
    each failing clause's first failure instead. The counts in pytest's last
    line are of every case.
    """
    stats = terminalreporter.stats
    failed = list(stats.get("failed", []))
    if not any(clauses_of_report(report) for report in failed):
        yield
        return
    tbstyle = config.option.tbstyle
    if tbstyle == "auto" and all(clauses_of_report(report) for report in failed):
        config.option.tbstyle = "no"
    stats["failed"] = representatives(failed)
    try:
        yield
    finally:
        stats["failed"] = failed
        config.option.tbstyle = tbstyle
