"""The pytest plugin: its hooks, each handing its work to the module that owns it.

Registered through the ``pytest11`` entry point, so it loads in every pytest
run of an environment where fdsend-conformance is installed. It stays inert
there: it adds its options (:mod:`~fdsend_conformance.plumbing.options`) and
touches only tests that live in the suite, unless the run names a backend:
then, given no test paths, it collects the suite
(:mod:`~fdsend_conformance.plumbing.routing`). Which clauses each test
proves and what it came to is :mod:`~fdsend_conformance.plumbing.bookkeeping`;
an xdist worker's usage error is :mod:`~fdsend_conformance.plumbing.refusal`;
the reports are :mod:`~fdsend_conformance.plumbing.outputs` and
:mod:`~fdsend_conformance.plumbing.terminal`. The suite's fixtures are in
:mod:`~fdsend_conformance.plumbing.fixtures`, loaded by the suite's own conftest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fdsend_conformance.harness.checks import unsupported
from fdsend_conformance.plumbing import bookkeeping, outputs, routing, terminal
from fdsend_conformance.plumbing.bookkeeping import (  # the fixtures' way in
    RunState,
    backend_of,
    call_failed,
    event_loop_of,
    is_conformance_test,
    state_of,
)
from fdsend_conformance.plumbing.isolation import isolated, run_isolated
from fdsend_conformance.plumbing.options import add_options
from fdsend_conformance.plumbing.refusal import is_refusal, refuse_on_worker
from fdsend_conformance.plumbing.registry import available_backends

__all__ = ["backend_of", "call_failed", "event_loop_of"]

#: Short option names another plugin or a conftest owns in this run.
_SHADOWED = pytest.StashKey[frozenset[str]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser) -> Any:
    """Add the options once plugins and the project's conftests have added theirs.

    Not in ``pytest_addoption``: a project's conftest.py registers options
    after every plugin, and argparse would refuse its ``--backend`` if this
    plugin had taken the name first. This hook runs before the command line
    is parsed for good, so the options are there for every run.
    """
    yield
    early_config.stash[_SHADOWED] = add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("fdsend_list_backends"):
        return None
    for entry in available_backends():
        if entry.error is None:
            print(f"{entry.name:<20} {entry.version or '?':<30} {entry.origin}")
        else:  # registered, but its package is missing (or it is broken)
            print(f"{entry.name:<20} {'unavailable':<30} {entry.origin}  ({entry.error})")
    print("or any module (mymodule, package.module) or module:attr with sendfds/recvfds")
    return 0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(*ids): the contract clauses this test proves")
    config.addinivalue_line(
        "markers", "requires(*features): backend features the test needs (else UNSUPPORTED)"
    )
    config.addinivalue_line(
        "markers", "kernel: checks the kernel itself, independent of the backend under test"
    )
    state = bookkeeping.start(config, config.stash.get(_SHADOWED, frozenset()))
    config.pluginmanager.register(RunHooks(state), "fdsend-conformance-state")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Module | None:
    return routing.suite_module(module_path, parent)


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    routing.route(session.config)


@pytest.hookimpl(tryfirst=True)
def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    return routing.ignore_beside_suite(collection_path, config)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # tryfirst: before -k and -m deselect, so the checks see the whole collection.
    suite_items = [item for item in items if routing.in_suite(item)]
    try:
        if suite_items:
            bookkeeping.prepare(config, suite_items, routing.suite_complete(suite_items))
        elif config.getoption("fdsend_backend") and not session.testsfailed:
            raise pytest.UsageError(routing.nothing_to_test(config, state_of(config).shadowed))
    except pytest.UsageError as exc:
        if not hasattr(config, "workerinput"):
            raise
        folder = routing.suite_node(suite_items[0]) if suite_items else None
        refuse_on_worker(config, items, folder, str(exc))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if not is_conformance_test(item) or not isolated(item.config):
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in run_isolated(item):
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not routing.in_suite(item):
        return
    backend = backend_of(item.config)
    reason = backend.lacking(f for mark in item.iter_markers("requires") for f in mark.args)
    if reason:
        unsupported(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    if is_conformance_test(item):
        bookkeeping.note_phase(item, call, outcome.get_result())


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> Iterator[None]:
    # Around pytest's own summary: its failures and short summary list one
    # case per suite test function (the report says how many more).
    with terminal.one_case_per_function(terminalreporter, config):
        yield


class RunHooks:
    """The hooks that need the run's state; registered as a plugin object."""

    def __init__(self, state: RunState) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.state.record(report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if is_refusal(report):
            self.state.refused = True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.state.stop_driver()
        if self.state.refused:  # the exit status a serial run's UsageError has
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        if self.state.report.active and not hasattr(self.state.config, "workerinput"):
            outputs.write(self.state)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.state.report.active:
            return
        terminalreporter.section("fdsend conformance report")
        state = self.state
        every_row = int(state.config.getoption("verbose")) > 0
        report = terminal.lines(state.report, state.backend, state.level, state.expected, every_row)
        for line in report:
            terminalreporter.write_line(line)
        if state.expected_source:
            terminalreporter.write_line(f"expected failures: {state.expected_source}")
