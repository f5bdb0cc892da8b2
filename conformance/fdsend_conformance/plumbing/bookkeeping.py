"""Clause bookkeeping: which clauses each suite test proves, and what it came to.

The plugin's hooks (:mod:`~fdsend_conformance.plumbing.plugin`) call in here.
A run's state lives in a :class:`RunState` kept in ``config.stash``; a
test's clauses and result so far live in its ``item.stash``. What a test's
reports carry to the controller (through the fork of --isolate and xdist's
workers, and into JUnit XML) is in ``user_properties``, under the names below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from fdsend_conformance.backend import Backend, Kind
from fdsend_conformance.harness.checks import Unsupported
from fdsend_conformance.harness.ownership import OWN_1_FAILURE
from fdsend_conformance.outcome import Outcome
from fdsend_conformance.plumbing.contract import cross_check, load_contract
from fdsend_conformance.plumbing.expected import (
    ExpectedFailure,
    ExpectedFileError,
    builtin_expected_file,
    id_in_suite,
    read_expected,
)
from fdsend_conformance.plumbing.options import DEFAULT_BACKEND
from fdsend_conformance.plumbing.registry import UnknownBackendError, load_backend
from fdsend_conformance.plumbing.report import ClauseReport, TestResult
from fdsend_conformance.plumbing.runners import event_loop_for

__all__ = [
    "CALLER_CHANGED",
    "CLAUSE_PROPERTY",
    "OUTCOME_PROPERTY",
    "REASON_PROPERTY",
    "RunState",
    "backend_of",
    "call_failed",
    "clauses_of_report",
    "event_loop_of",
    "failure_reason",
    "is_conformance_test",
    "phase_result",
    "prepare",
    "state_of",
]

#: The clause ids a test names, comma-separated.
CLAUSE_PROPERTY = "fdsend_clause"
#: Its outcome so far (an :class:`Outcome` value), the worst of its phases.
OUTCOME_PROPERTY = "fdsend_outcome"
#: The reason for that outcome: a skip's message, an xfail's reason, a failure's assertion.
REASON_PROPERTY = "fdsend_reason"

#: A failure whose exception says this first broke OWN-1 (the caller's socket and fds
#: changed), whatever clause its test proves: the caller checks every backend call.
CALLER_CHANGED = "OWN-1"

#: The longest reason kept for a failure (an assertion's diff can run on for pages).
_REASON_CHARS = 1000

_STATE = pytest.StashKey["RunState"]()
_CALL_FAILED = pytest.StashKey[bool]()
_CLAUSES = pytest.StashKey["tuple[str, ...]"]()
_RESULT = pytest.StashKey[TestResult]()


class RunState:
    """What one run knows: the backend, the level, the expected failures, the report."""

    def __init__(self, config: pytest.Config, shadowed: frozenset[str]) -> None:
        self.config = config
        self.level: str = config.getoption("fdsend_level")
        self._backend: Backend | None = None
        self.report = ClauseReport(load_contract())
        self.expected: list[ExpectedFailure] = []
        self.expected_source: str | None = None
        #: The expected file's entry that covers an OWN-1 test, if any: a backend
        #: documented to change the caller's socket fails the per-call check too.
        self.own_1_expected: ExpectedFailure | None = None
        #: Clause ids of each test that reported, by node id.
        self.clauses_by_test: dict[str, list[str]] = {}
        #: Short option names another plugin or a conftest owns in this run.
        self.shadowed = shadowed
        #: Whether an xdist worker refused the run with a usage error.
        self.refused = False

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            name = self.config.getoption("fdsend_backend") or DEFAULT_BACKEND
            try:
                self._backend = load_backend(name)
            except UnknownBackendError as exc:
                raise pytest.UsageError(f"fdsend: {exc}") from exc
            except Exception as exc:  # the backend's declarations are wrong
                raise pytest.UsageError(
                    f"fdsend: cannot load backend {name!r}: {type(exc).__name__}: {exc}"
                ) from exc
        return self._backend

    @property
    def event_loop(self) -> str | None:
        """The loop an async backend runs on (``--event-loop``); None for a synchronous one."""
        if not self.backend.asynchronous:
            return None
        try:
            return event_loop_for(self.backend, self.config.getoption("fdsend_event_loop"))
        except ValueError as exc:
            raise pytest.UsageError(f"fdsend: {exc}") from exc

    def load_expected(self) -> None:
        """Read the expected-failure file (``--expected``, else the backend's built-in one)."""
        option = self.config.getoption("fdsend_expected")
        if option == "none":
            return
        declared = getattr(self.backend.impl, "expected_file", None)  # a driver's folder's
        path = (
            Path(option)
            if option
            else declared or builtin_expected_file(self.backend.name, self.event_loop)
        )
        if path is None:
            return
        try:
            self.expected = read_expected(path, self.report.clauses)
        except OSError as exc:
            raise pytest.UsageError(f"fdsend: cannot read expected file {path}: {exc}") from exc
        except ExpectedFileError as exc:
            raise pytest.UsageError(f"fdsend: bad expected-failure file:\n{exc}") from exc
        self.expected_source = str(path)

    def record(self, report: pytest.TestReport) -> None:
        """File one report of a suite test (from this process, a fork, or a worker)."""
        properties = dict(report.user_properties)
        if properties.get(CLAUSE_PROPERTY):
            self.clauses_by_test[report.nodeid] = str(properties[CLAUSE_PROPERTY]).split(",")
        # A report made up for a crashed xdist worker, or for an isolated
        # test's dead child, carries no outcome (the xdist one no properties
        # at all): the test's earlier (setup) report told us its clauses.
        ids = self.clauses_by_test.get(report.nodeid)
        if not ids:
            return
        ids = _with_own_1(ids, report)
        if OUTCOME_PROPERTY in properties:
            outcome = Outcome(properties[OUTCOME_PROPERTY])
            reason = properties.get(REASON_PROPERTY)
            result = TestResult(tuple(ids), outcome, None if reason is None else str(reason))
        elif report.failed:
            result = TestResult(tuple(ids), Outcome.FAILED, failure_reason(report.longrepr))
        else:
            return
        self.report.record(report.nodeid, result)

    def stop_driver(self) -> None:
        """Stop the driver kept from test to test, if the backend is one and it was loaded."""
        if self._backend is not None and self._backend.kind == Kind.DRIVER:
            self._backend.impl.stop()

    def unmatched(self, test_ids: list[tuple[str, tuple[str, ...]]]) -> list[ExpectedFailure]:
        """Entries of the expected file that match none of ``test_ids`` (id, clauses)."""
        return [e for e in self.expected if not any(e.matches(t, ids) for t, ids in test_ids)]


def state_of(config: pytest.Config) -> RunState:
    """This run's state."""
    return config.stash[_STATE]


def start(config: pytest.Config, shadowed: frozenset[str]) -> RunState:
    """Make this run's state; an explicit ``--backend`` is loaded (and checked) now."""
    state = RunState(config, shadowed)
    config.stash[_STATE] = state
    if config.getoption("fdsend_backend"):
        # An explicit choice is checked now: a bad name runs no test at all.
        state.load_expected()
        _ = state.event_loop
    return state


def backend_of(config: pytest.Config) -> Backend:
    """The backend under test in this run."""
    return state_of(config).backend


def event_loop_of(config: pytest.Config) -> str | None:
    """The event loop the async backend under test runs on (None: it is synchronous)."""
    return state_of(config).event_loop


def call_failed(item: pytest.Item) -> bool:
    """Whether a phase of ``item`` has already failed (for teardown checks)."""
    return item.stash.get(_CALL_FAILED, False)


def is_conformance_test(item: pytest.Item) -> bool:
    """Whether ``item`` is a suite test that :func:`prepare` marked."""
    return _CLAUSES in item.stash


def clauses_of_report(report: Any) -> list[str]:
    """The clause ids a suite test's report names (none for other tests)."""
    value = dict(getattr(report, "user_properties", ())).get(CLAUSE_PROPERTY)
    return str(value).split(",") if value else []


def _clauses_of(item: pytest.Item) -> tuple[str, ...]:
    return tuple(cid for mark in item.iter_markers("clause") for cid in mark.args)


def prepare(config: pytest.Config, suite_items: list[pytest.Item], complete: bool) -> None:
    """Mark the suite's tests with their clauses, expected failures and timeout.

    ``complete``: the whole suite was collected. Raises UsageError where the
    contract and the tests disagree, or an expected-failure entry matches no test.
    """
    state = state_of(config)
    if "backend" in state.shadowed and not config.getoption("fdsend_backend"):
        raise pytest.UsageError(
            "fdsend: another plugin owns --backend here; "
            "choose the backend under test with --fdsend-backend=NAME"
        )
    if not state.expected_source:
        state.load_expected()
    for item in suite_items:
        ids = _clauses_of(item)
        item.stash[_CLAUSES] = ids
        item.user_properties.append((CLAUSE_PROPERTY, ",".join(ids)))
        entry = _apply_expected(item, ids, state.expected)
        if entry is not None and "OWN-1" in ids and state.own_1_expected is None:
            state.own_1_expected = entry
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(config.getoption("fdsend_test_timeout")))
    tests = [(i.nodeid, i.stash[_CLAUSES]) for i in suite_items]
    problems = cross_check(state.report.clauses, tests, complete)
    if problems:
        raise pytest.UsageError("\n  ".join(["fdsend: contract and tests disagree:", *problems]))
    files = {Path(str(item.path)).name for item in suite_items}
    in_suite = [(id_in_suite(nodeid), ids) for nodeid, ids in tests]
    stale = [
        f"{e.where}: {e.selector!r} matches no test of the suite"
        for e in state.unmatched(in_suite)
        if not e.is_clause and (complete or e.could_match(files))
    ]
    if stale:
        raise pytest.UsageError("\n".join(["fdsend: bad expected-failure file:", *stale]))


def _apply_expected(
    item: pytest.Item, ids: tuple[str, ...], entries: list[ExpectedFailure]
) -> ExpectedFailure | None:
    """Mark ``item`` xfail by the first entry that covers it; return that entry."""
    test_id = id_in_suite(item.nodeid)
    for entry in entries:
        if entry.matches(test_id, ids):
            reason = Outcome.EXPECTED.labelled(f"{entry.reason} ({entry.where})")
            item.add_marker(pytest.mark.xfail(reason=reason, strict=False))
            return entry
    return None


def _with_own_1(ids: list[str], report: pytest.TestReport) -> list[str]:
    """A test failed by a change to the caller's socket or fds failed OWN-1 too."""
    if report.failed and OWN_1_FAILURE in report.longreprtext and "OWN-1" not in ids:
        return [*ids, "OWN-1"]
    return ids


def failure_reason(longrepr: Any) -> str:
    """A failure's first failing assertion: ``file.py:LINE: Error: message``.

    From pytest's crash entry where the report has one, else its text (a
    test whose child died, or that hung).
    """
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        text = f"{os.path.basename(crash.path)}:{crash.lineno}: {crash.message}"
    else:
        text = str(longrepr)
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 3] + "..."


def _add_clause(item: pytest.Item, report: pytest.TestReport, clause: str) -> tuple[str, ...]:
    """File ``item`` under ``clause`` too, from this report on; its clauses now."""
    ids = (*item.stash[_CLAUSES], clause)
    item.stash[_CLAUSES] = ids
    for properties in (item.user_properties, report.user_properties):
        properties[:] = [
            (CLAUSE_PROPERTY, ",".join(ids)) if name == CLAUSE_PROPERTY else (name, value)
            for name, value in properties
        ]
    return ids


def _skip_text(report: pytest.TestReport) -> str | None:
    """The message of a skip report made elsewhere: pytest keeps (path, line, message)."""
    if isinstance(report.longrepr, tuple) and len(report.longrepr) == 3:
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    return None


def note_phase(item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport) -> None:
    """Fold one phase's report into the test's result; its report carries the result so far."""
    phase = phase_result(item, call, report)
    if phase is not None:
        previous = item.stash.get(_RESULT, None)
        item.stash[_RESULT] = phase if previous is None else previous.then(phase)
    result = item.stash.get(_RESULT, None)
    if result is not None:
        report.user_properties.append((OUTCOME_PROPERTY, result.outcome.value))
        if result.reason is not None:
            report.user_properties.append((REASON_PROPERTY, result.reason))


def phase_result(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport
) -> TestResult | None:
    """What one phase of a suite test came to (None: a setup or teardown that passed)."""
    ids = item.stash[_CLAUSES]
    wasxfail: str | None = getattr(report, "wasxfail", None)
    if report.failed:
        item.stash[_CALL_FAILED] = True
        raised = call.excinfo.value if call.excinfo is not None else None
        if str(raised).startswith(f"{CALLER_CHANGED}:") and CALLER_CHANGED not in ids:
            ids = _add_clause(item, report, CALLER_CHANGED)
        state = state_of(item.config)
        reason = failure_reason(report.longrepr)
        expected = state.own_1_expected
        if expected is not None and OWN_1_FAILURE in report.longreprtext:
            # The per-call OWN-1 check failed the test, as the expected file
            # says this backend does: that documented deviation, not a new one.
            report.outcome = "skipped"
            report.wasxfail = Outcome.EXPECTED.labelled(f"{expected.reason} ({expected.where})")
            return TestResult(ids, Outcome.EXPECTED, report.wasxfail)
        contract = state.report.clauses
        only_should = all(contract[cid].level == "strict" for cid in ids if cid in contract)
        if not (only_should and state.level == "core"):
            return TestResult(ids, Outcome.FAILED, reason)
        # A SHOULD clause failing does not fail a core-level run: pytest
        # counts it as an expected failure; the report calls it NON-STRICT.
        report.outcome = "skipped"
        report.wasxfail = Outcome.NON_STRICT.labelled(reason)
        return TestResult(ids, Outcome.NON_STRICT, reason)
    if report.skipped:
        if wasxfail is not None:  # an expected-failure entry, or a known bug the test names
            return TestResult(ids, Outcome.EXPECTED, wasxfail)
        raised = call.excinfo.value if call.excinfo is not None else None
        why = raised.msg if isinstance(raised, pytest.skip.Exception) else _skip_text(report)
        unsupported = isinstance(getattr(raised, "__cause__", None), Unsupported)
        return TestResult(ids, Outcome.UNSUPPORTED if unsupported else Outcome.SKIPPED, why)
    if report.when != "call":
        return None
    if wasxfail is not None:
        return TestResult(ids, Outcome.UNEXPECTEDLY_PASSED, wasxfail)
    return TestResult(ids, Outcome.PASSED)
