"""KTAP version 1 output of a run (``--ktap PATH``), for kernel test runners.

The format is the kernel's Documentation/dev-tools/ktap.rst: a version line,
a plan, then one result line per test. Each clause that ran is one test
whose subtests are the clause's tests, indented one level (two spaces), with
their own version line and plan:

.. code-block:: none

    KTAP version 1
    1..2
      KTAP version 1
      1..1
      ok 1 test_kernel_limits.py::test_scm_max_fd_is_accepted
    ok 1 KERNEL-1
      KTAP version 1
      1..1
      ok 1 test_kernel_pidfd.py::test_scm_pidfd # SKIP SO_PASSPIDFD arrived in 6.5
    ok 2 KERNEL-13 # SKIP SO_PASSPIDFD arrived in 6.5

Passed tests are ``ok``, failed ones ``not ok``; skipped and UNSUPPORTED
ones ``ok ... # SKIP reason``; expected failures (the expected-failure file,
or a SHOULD clause failing at level core) ``ok ... # XFAIL reason``, as
kselftest writes them. A clause is ``not ok`` when one of its tests is,
``# SKIP`` when all of them were skipped and ``# XFAIL`` when one failed as
expected. Only :func:`case_of` knows the plugin's outcomes; the rest works
on plain :class:`Case` values.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fdsend_conformance.outcome import Outcome

__all__ = ["VERSION_LINE", "Case", "Directive", "Result", "case_of", "render"]

VERSION_LINE = "KTAP version 1"
#: One level of subtest indentation (ktap.rst: "two spaces").
INDENT = "  "


class Directive(enum.Enum):
    """The KTAP directives this writer uses (of SKIP, TODO, XFAIL, TIMEOUT, ERROR)."""

    SKIP = "SKIP"
    XFAIL = "XFAIL"


@dataclass(frozen=True)
class Result:
    """One result line: ``ok``/``not ok``, a directive and its diagnostic text."""

    ok: bool
    directive: Directive | None = None
    reason: str = ""


@dataclass(frozen=True)
class Case:
    """One test of the run: its name, the clauses it proves and its result."""

    name: str
    clauses: tuple[str, ...]
    result: Result


def case_of(name: str, clauses: Iterable[str], outcome: Outcome, reason: str | None = None) -> Case:
    """The KTAP case of a test with the report's ``outcome`` and the ``reason`` it was given."""
    text = reason or ""
    if outcome.is_pass:
        result = Result(ok=True)
    elif outcome.is_skip:
        if outcome is Outcome.UNSUPPORTED and not text.startswith(outcome.labelled("")):
            text = outcome.labelled(text)
        result = Result(ok=True, directive=Directive.SKIP, reason=text)
    elif outcome is Outcome.EXPECTED:  # an expected-failure entry, or an xfail mark
        result = Result(ok=True, directive=Directive.XFAIL, reason=_unlabelled(outcome, text))
    elif outcome is Outcome.NON_STRICT:  # a SHOULD clause, at level core
        result = Result(ok=True, directive=Directive.XFAIL, reason=text)
    else:
        result = Result(ok=False, reason=text)
    return Case(name, tuple(clauses), result)


def _unlabelled(outcome: Outcome, text: str) -> str:
    """``text`` without the label pytest shows (``expected: ``)."""
    return text.removeprefix(outcome.labelled(""))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _description(name: str) -> str:
    """A test name as a KTAP description, which cannot include '#'."""
    return _one_line(name.replace("#", "%23"))


def result_line(number: int, name: str, result: Result) -> str:
    """``ok N name``, ``not ok N name``, with ``# DIRECTIVE reason`` where there is one."""
    line = f"{'ok' if result.ok else 'not ok'} {number} {_description(name)}"
    reason = _one_line(result.reason)
    if result.directive is not None:
        line += f" # {result.directive.value}" + (f" {reason}" if reason else "")
    elif reason:  # diagnostic data without a directive
        line += f" # {reason}"
    return line


def clause_result(results: Sequence[Result]) -> Result:
    """A clause's result from its tests': a failure fails it, skips alone skip it."""
    if any(not r.ok for r in results):
        return Result(ok=False)
    skips = [r for r in results if r.directive is Directive.SKIP]
    if skips and len(skips) == len(results):
        return Result(ok=True, directive=Directive.SKIP, reason=_reasons(skips))
    xfails = [r for r in results if r.directive is Directive.XFAIL]
    if xfails:
        return Result(ok=True, directive=Directive.XFAIL, reason=_reasons(xfails))
    return Result(ok=True)


def _reasons(results: Iterable[Result]) -> str:
    """The distinct reasons of ``results``, in order, joined by "; "."""
    return "; ".join(dict.fromkeys(r.reason for r in results if r.reason))


def render(cases: Iterable[Case], clause_order: Iterable[str], header: Sequence[str] = ()) -> str:
    """The KTAP document: one block per clause (in ``clause_order``) that has cases.

    ``header`` lines are written as diagnostic lines after the plan.
    """
    by_clause: dict[str, list[Case]] = {cid: [] for cid in clause_order}
    for case in cases:
        for cid in case.clauses:
            by_clause.setdefault(cid, []).append(case)
    blocks = [
        (cid, sorted(found, key=lambda c: c.name)) for cid, found in by_clause.items() if found
    ]
    lines = [VERSION_LINE, f"1..{len(blocks)}"]
    lines += [f"# {_one_line(text)}" for text in header]
    totals = {"pass": 0, "fail": 0, "xfail": 0, "skip": 0}
    for number, (cid, found) in enumerate(blocks, start=1):
        lines += [INDENT + VERSION_LINE, f"{INDENT}1..{len(found)}"]
        lines += [
            INDENT + result_line(index, case.name, case.result)
            for index, case in enumerate(found, start=1)
        ]
        overall = clause_result([case.result for case in found])
        lines.append(result_line(number, cid, overall))
        totals[_total_key(overall)] += 1
    lines.append("# Totals: " + " ".join(f"{key}:{n}" for key, n in totals.items()))
    return "\n".join(lines) + "\n"


def _total_key(result: Result) -> str:
    if not result.ok:
        return "fail"
    if result.directive is Directive.SKIP:
        return "skip"
    return "xfail" if result.directive is Directive.XFAIL else "pass"
