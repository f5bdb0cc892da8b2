"""An API that sends exactly one fd per call (declared ``one-fd``) is judged fairly:
the clauses about several fds in one call are UNSUPPORTED with the reason, and
the rest of the contract runs with one fd."""

from __future__ import annotations

import json

import pytest

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
    pytester.makepyfile(one_fd=ONE_FD)
    pytester.syspathinsert()
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--pyargs",
        "fdsend_conformance",
        "-p",
        "no:cacheprovider",
        "--backend=one_fd",
        "-k",
        SELECTION,
        f"--conformance-report={report}",
        timeout=300,
    )
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-3000:]
    clauses = {c["id"]: c for c in json.loads(report.read_text())["clauses"]}
    for several in ("XFER-1", "XFER-2", "XFER-5", "TRUNC-1", "TRUNC-4"):
        assert clauses[several]["status"] == "UNSUPPORTED"
        assert set(clauses[several]["skips"].values()) == {
            "UNSUPPORTED: one-fd sends and receives exactly one fd per call"
        }
    for judged in ("XFER-3", "XFER-7", "XFER-8", "OWN-1", "OWN-2", "OWN-3", "LOAD-3"):
        assert clauses[judged]["status"] == "PASS", judged
