"""The suite survives broken backends: it fails the right clauses, in bounded
time, finishes the run and exits non-zero, serially and under pytest-xdist."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

BROKEN = """
import os
import time

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


hangs = Broken("hangs", receive=_hang)
raises = Broken("raises", send=_raise)
aborts = Broken("aborts", receive=_abort)
leaks = Broken("leaks", receive=_leak)
closes_callers = Broken("closes-callers", send=_close_callers)
"""

SELECTION = "test_several_fds_arrive_in_order or test_caller_socket_and_fds_untouched"


@pytest.fixture
def run(pytester: pytest.Pytester):
    pytester.makepyfile(broken=BROKEN)
    pytester.syspathinsert()

    def run_suite(backend: str, *args: str) -> tuple[Any, dict[str, str], float]:
        report = pytester.path / "report.json"
        started = time.monotonic()
        result = pytester.runpytest_subprocess(
            "--pyargs",
            "fdsend_conformance",
            "-p",
            "no:cacheprovider",
            f"--backend=broken:{backend}",
            "-k",
            SELECTION,
            f"--conformance-report={report}",
            "--test-timeout=3",
            *args,
            timeout=300,
        )
        elapsed = time.monotonic() - started
        data = json.loads(report.read_text())
        return result, {c["id"]: c["status"] for c in data["clauses"]}, elapsed

    return run_suite


MODES = {"serial": (), "xdist": ("-n", "2")}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("backend", ["hangs", "raises", "aborts", "leaks"])
def test_broken_backend_fails_every_clause_it_touches(run, mode, backend):
    result, statuses, elapsed = run(backend, "--expected=none", *MODES[mode])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses["XFER-1"] == "FAIL"
    assert statuses["OWN-1"] == "FAIL"
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("error", 0) + outcomes.get("errors", 0) >= 4
    # Seven tests: a hang costs at most the 3 s test timeout each, plus start-up.
    assert elapsed < 60


@pytest.mark.parametrize("mode", list(MODES))
def test_backend_closing_the_callers_fds_fails_ownership(run, mode):
    result, statuses, _ = run("closes_callers", "--expected=none", *MODES[mode])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses["OWN-1"] == "FAIL"


def test_a_crash_is_reported_with_its_signal(run):
    result, _, _ = run("aborts", "--isolate=yes")
    result.stdout.fnmatch_lines(["*died with signal 6 (SIGABRT)*"])
