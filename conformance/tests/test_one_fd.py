"""An API that sends exactly one fd per call (declared ``one-fd``) is judged fairly:
the clauses about several fds in one call are UNSUPPORTED with the reason, and
the rest of the contract runs with one fd."""

from __future__ import annotations

import pytest
from suite_runs import clause_entry, statuses, suite_runner

ONE_FD = """
import fdsend

name = "one-fd"
unsupported = ["one-fd"]


def sendfds(sock, msg, flags=0, fds=None):
    fds = list(fds or [])
    if len(fds) != 1:
        raise ValueError("exactly one fd per call")
    return fdsend.sendfds(sock, msg, flags, fds)


def recvfds(sock, size, flags=0, numfds=64):
    return fdsend.recvfds(sock, size, flags, 1)
"""

SELECTION = "test_transfer or test_ownership or test_truncation or test_silent_loss or test_soak"


def test_one_fd_per_call_is_unsupported_with_its_reason_and_passes_the_rest(pytester):
    run = suite_runner(pytester, one_fd=ONE_FD)
    result, report = run("--backend=one_fd", "-k", SELECTION, timeout=300)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    for several in ("XFER-1", "XFER-2", "XFER-5", "TRUNC-1", "TRUNC-4"):
        assert clause_entry(report, several)["status"] == "UNSUPPORTED"
        assert set(clause_entry(report, several)["skips"].values()) == {
            "UNSUPPORTED: one-fd sends and receives exactly one fd per call"
        }
    for judged in ("XFER-3", "XFER-7", "XFER-8", "OWN-1", "OWN-2", "OWN-3", "LOAD-3"):
        assert statuses(report)[judged] == "PASS", judged
