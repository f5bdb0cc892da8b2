"""The suite survives broken backends: it fails the right clauses, in bounded
time, finishes the run and exits non-zero, serially and under pytest-xdist."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
from suite_runs import statuses, suite_runner

BROKEN = """
import os
import socket
import time

import fdsend

from fdsend_conformance.adapters import reference  # working, to compare with
from fdsend_conformance.adapters import stdlib as _working

sendfds = _working.sendfds
recvfds = _working.recvfds


class Broken:
    version = "0.0"

    def __init__(self, name, send=None, receive=None):
        self.name = name
        self._send = send
        self._receive = receive

    def sendfds(self, sock, msg, flags=0, fds=None):
        if self._send:
            return self._send(sock, msg, flags, fds)
        return sendfds(sock, msg, flags, fds)

    def recvfds(self, sock, size, flags=0, numfds=64):
        if self._receive:
            return self._receive(sock, size, flags, numfds)
        return recvfds(sock, size, flags, numfds)


def _hang(*args):
    time.sleep(10**6)


def _raise(*args):
    raise KeyError("not an OSError at all")


def _abort(*args):
    os.abort()


def _leak(sock, size, flags, numfds):
    os.open(os.devnull, os.O_RDONLY)
    return recvfds(sock, size, flags, numfds)


def _close_callers(sock, msg, flags, fds):
    fds = list(fds or [])
    sent = sendfds(sock, msg, flags, fds)
    for fd in fds:
        os.close(fd if isinstance(fd, int) else fd.fileno())
    return sent


def _waits_in_the_kernel(call):
    # Makes the socket blocking for the call and drops MSG_DONTWAIT: the call
    # sleeps until the suite's SO_RCVTIMEO/SO_SNDTIMEO, then raises the
    # BlockingIOError a fail-fast call would have raised at once.
    def wrapped(sock, first, flags=0, *rest):
        timeout = sock.gettimeout()
        sock.setblocking(True)
        try:
            return call(sock, first, flags & ~socket.MSG_DONTWAIT, *rest)
        finally:
            sock.settimeout(timeout)

    return wrapped


def _nonblocking_for_dontwait(call):
    # MSG_DONTWAIT done by making the caller's socket non-blocking, never undone.
    def wrapped(sock, first, flags=0, *rest):
        if flags & socket.MSG_DONTWAIT:
            if isinstance(sock, socket.socket):
                sock.setblocking(False)
            else:
                os.set_blocking(sock if isinstance(sock, int) else sock.fileno(), False)
        return call(sock, first, flags & ~socket.MSG_DONTWAIT, *rest)

    return wrapped


hangs = Broken("hangs", receive=_hang)
raises = Broken("raises", send=_raise)
aborts = Broken("aborts", receive=_abort)
leaks = Broken("leaks", receive=_leak)
closes_callers = Broken("closes-callers", send=_close_callers)
leaves_nonblocking = Broken(
    "leaves-nonblocking",
    send=_nonblocking_for_dontwait(fdsend.sendfds),
    receive=_nonblocking_for_dontwait(fdsend.recvfds),
)
waits_in_the_kernel = Broken(
    "waits-in-the-kernel",
    send=_waits_in_the_kernel(fdsend.sendfds),
    receive=_waits_in_the_kernel(fdsend.recvfds),
)
"""

SELECTION = "test_several_fds_arrive_in_order or test_caller_socket_and_fds_untouched"
#: How many tests SELECTION picks: 4 fd counts, 3 socket spellings (with and
#: without a process-wide default timeout).
SELECTED = 10
#: The --test-timeout given to the suite, and what a test may take beyond it
#: (its timeout firing, the failure being written up, teardown).
TEST_TIMEOUT = 3.0
MARGIN = 2.0


def junit_durations(junit: Path) -> dict[str, float]:
    """Each test's own duration in seconds (setup, call and teardown), by name."""
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    return {
        f"{case.get('classname')}.{case.get('name')}": float(case.get("time", "nan"))
        for case in cases
    }


def assert_each_test_bounded(durations: dict[str, float]) -> None:
    assert len(durations) == SELECTED, sorted(durations)
    slow = {name: t for name, t in durations.items() if not t <= TEST_TIMEOUT + MARGIN}
    assert not slow, f"tests outlived the {TEST_TIMEOUT} s test timeout: {slow}"


@pytest.fixture
def run(pytester: pytest.Pytester):
    run_with_broken = suite_runner(pytester, broken=BROKEN)

    def run_selection(
        backend: str, *args: str, selection: str = SELECTION
    ) -> tuple[Any, dict[str, str], dict[str, float]]:
        junit = pytester.path / "junit.xml"
        started = time.monotonic()
        result, report = run_with_broken(
            f"--backend=broken:{backend}",
            "-k",
            selection,
            f"--test-timeout={TEST_TIMEOUT:g}",
            f"--junitxml={junit}",
            *args,
            timeout=300,
        )
        # A few tests: a hang costs at most the test timeout each, plus start-up.
        assert time.monotonic() - started < 60
        return result, statuses(report), junit_durations(junit)

    return run_selection


MODES = {"serial": (), "xdist": ("-n", "auto")}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("backend", ["hangs", "raises", "aborts", "leaks"])
def test_broken_backend_fails_every_clause_it_touches(run, mode, backend):
    result, statuses, durations = run(backend, "--expected=none", *MODES[mode])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses["XFER-1"] == "FAIL"
    assert statuses["OWN-1"] == "FAIL"
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("error", 0) + outcomes.get("errors", 0) >= 4
    assert_each_test_bounded(durations)
    if backend == "hangs":  # the durations are real: the hung tests ran into their timeout
        assert max(durations.values()) >= TEST_TIMEOUT - 0.5


@pytest.mark.parametrize("mode", list(MODES))
def test_backend_closing_the_callers_fds_fails_ownership(run, mode):
    result, statuses, durations = run("closes_callers", "--expected=none", *MODES[mode])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses["OWN-1"] == "FAIL"
    assert_each_test_bounded(durations)


def test_a_crash_is_reported_with_its_signal(run):
    result, _, durations = run("aborts", "--isolate=yes")
    result.stdout.fnmatch_lines(["*died with signal 6 (SIGABRT)*"])
    assert_each_test_bounded(durations)


#: The tests of calls that must fail fast: ERR-5, FAULT-3, FAULT-6, FAULT-7.
FAIL_FAST = (
    "test_empty_non_blocking_socket_is_eagain or test_non_blocking or test_dontwait"
    " or test_partial_send"
)
FAIL_FAST_CLAUSES = ["ERR-5", "FAULT-3", "FAULT-6", "FAULT-7"]


@pytest.mark.parametrize("backend", ["waits_in_the_kernel", "reference"])
def test_a_call_that_sleeps_before_failing_does_not_fail_fast(run, backend):
    """Raising BlockingIOError after the suite's kernel timeout is not failing fast.

    The broken backend answers each of these calls with the right exception,
    only late: the /proc watcher sees it asleep in recvmsg/sendmsg and fails
    the test. The reference, which never sleeps there, passes the same tests.
    """
    result, statuses, durations = run(backend, "--expected=none", selection=FAIL_FAST)
    if backend == "reference":
        assert result.ret == pytest.ExitCode.OK
        assert [statuses[clause] for clause in FAIL_FAST_CLAUSES] == ["PASS"] * 4
        return
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert [statuses[clause] for clause in FAIL_FAST_CLAUSES] == ["FAIL"] * 4
    result.stdout.fnmatch_lines(["*the call slept in the kernel (recvmsg on the test's socket)*"])
    result.stdout.fnmatch_lines(["*the call slept in the kernel (sendmsg on the test's socket)*"])
    assert len(durations) == 6, sorted(durations)


#: The OWN-1 tests, and the tests that call with MSG_DONTWAIT.
OWN_AND_DONTWAIT = "test_caller_socket_and_fds_untouched or dontwait"


def test_a_backend_that_leaves_the_socket_non_blocking_fails_own_1(run):
    """The trier's backend: OWN-1's own tests pass (they use no flags), every call is checked.

    The check around each call catches the change where it happens, in a
    test of another clause, and the report counts it against OWN-1.
    """
    result, statuses, _ = run(
        "leaves_nonblocking", "--expected=none", "-n", "2", selection=OWN_AND_DONTWAIT
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses["OWN-1"] == "FAIL"
    said = " ".join(result.stdout.str().split())  # the report wraps its lines
    assert "CallerStateChanged: OWN-1: the call changed the socket (fd " in said
    assert "(O_NONBLOCK set)" in said
