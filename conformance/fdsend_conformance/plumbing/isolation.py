"""Run one test in a forked child, so a backend that crashes cannot end the run.

The child runs the whole test protocol (setup, call, teardown) and sends the
serialised reports back through a pipe, with :mod:`marshal`: parent and
child are the same interpreter, and marshal keeps what pytest's serialised
form holds as it is (a skip's ``(path, line, reason)`` stays a tuple, the
test's outcome stays in ``user_properties`` where the plugin put it). If it dies (``os.abort()``, a
segfault) or outlives its deadline, the parent kills it and reports the test
as failed with the reason. Under pytest-xdist too: xdist replaces a crashed
worker, but not one whose interpreter a backend left broken.
"""

from __future__ import annotations

import importlib
import marshal
import os
import signal
from typing import Any

import pytest
from _pytest.runner import runtestprotocol

from fdsend_conformance.backend import Kind
from fdsend_conformance.harness.processes import answer_from_child, write_all
from fdsend_conformance.harness.timeouts import ISOLATION_GRACE
from fdsend_conformance.plumbing.bookkeeping import backend_of

__all__ = ["isolated", "run_isolated"]


def isolated(config: pytest.Config) -> bool:
    """Whether conformance tests run in forked children (``--isolate``).

    Under xdist too: a replaced worker survives a crash, but not a backend
    that leaves the interpreter in a broken state (measured: Trio's run,
    interrupted by the test timeout, broke the worker with an INTERNALERROR).
    Not for a driver by default: it runs in a process of its own, and
    :mod:`~fdsend_conformance.driver.client` bounds every wait for it.
    """
    choice = config.getoption("fdsend_isolate")
    if choice != "auto":
        return bool(choice == "yes")
    if backend_of(config).kind == Kind.DRIVER:
        return False  # a driver crashes in its own process; its waits are bounded
    return hasattr(os, "fork") and not config.getoption("usepdb", False)


def _deadline(item: pytest.Item) -> float:
    """Seconds the child of ``item`` may take: its test timeout and a grace."""
    marker = item.get_closest_marker("timeout")
    if marker and marker.args:
        return float(marker.args[0]) + ISOLATION_GRACE
    return float(item.config.getoption("fdsend_test_timeout")) + ISOLATION_GRACE


def _run_and_report(item: pytest.Item, alarm: float, write_end: int) -> None:
    """In the child: run the test, write its serialised reports."""
    if alarm:
        signal.setitimer(signal.ITIMER_REAL, alarm)
    reports = runtestprotocol(item, log=False, nextitem=None)
    hook = item.config.hook
    data = [hook.pytest_report_to_serializable(config=item.config, report=r) for r in reports]
    write_all(write_end, marshal.dumps(data))


def _failure(item: pytest.Item, reason: str) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=item.nodeid,
        location=item.location,
        keywords={name: 1 for name in item.keywords},
        outcome="failed",
        longrepr=reason,
        when="call",
        user_properties=list(item.user_properties),
    )


def _describe(exit_code: int) -> str:
    if exit_code < 0:
        return f"signal {-exit_code} ({signal.Signals(-exit_code).name})"
    return f"exit status {exit_code}"


def run_isolated(item: pytest.Item) -> list[Any]:
    """Run ``item`` in a forked child; kill it when its test timeout is long past.

    Returns the child's reports, or one failing report saying how it died.
    The modules the test's module names in ``IMPORT_BEFORE_FORK`` are
    imported here first, so that the children inherit them.
    """
    seconds = _deadline(item)
    for name in getattr(getattr(item, "module", None), "IMPORT_BEFORE_FORK", ()):
        importlib.import_module(name)
    # pytest-timeout (signal method) armed an alarm around this test: move it
    # into the child, where the test runs. Timers are not inherited by fork.
    alarm, _ = signal.getitimer(signal.ITIMER_REAL)
    signal.setitimer(signal.ITIMER_REAL, 0)
    answer = answer_from_child(lambda fd: _run_and_report(item, alarm, fd), seconds)
    if not answer.in_time:
        return [_failure(item, f"killed after {seconds:.0f} s: the test hung (backend blocked?)")]
    if not answer.data:
        return [_failure(item, f"the test process died with {_describe(answer.exit_code)}")]
    hook = item.config.hook
    return [
        hook.pytest_report_from_serializable(config=item.config, data=entry)
        for entry in marshal.loads(answer.data)
    ]
