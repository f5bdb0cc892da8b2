"""The child-process helpers: a stuck child never hangs a test."""

from __future__ import annotations

import os
import signal

import pytest

from fdsend_conformance.harness.processes import fork_call, reap


def test_reap_returns_the_exit_code():
    assert reap(fork_call(lambda: None)) == 0
    assert reap(fork_call(lambda: 1 / 0)) == 1


def test_reap_kills_a_child_that_outlives_its_time():
    pid = fork_call(signal.pause)  # never returns on its own
    with pytest.raises(TimeoutError, match="still running"):
        reap(pid, 0.2)
    with pytest.raises(ChildProcessError):  # killed and already reaped
        os.waitpid(pid, os.WNOHANG)
