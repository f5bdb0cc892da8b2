"""The child-process helpers: a stuck child never hangs a test."""

from __future__ import annotations

import os
import signal

import pytest

from fdsend_conformance.harness.processes import call_in_child, fork_call, fork_to_kill, reap


def test_reap_returns_the_exit_code():
    assert reap(fork_call(lambda: None)) == 0
    assert reap(fork_call(lambda: 1 / 0)) == 1


def test_reap_kills_a_child_that_outlives_its_time():
    pid = fork_call(signal.pause)  # never returns on its own
    with pytest.raises(TimeoutError, match="still running"):
        reap(pid, 0.2)
    with pytest.raises(ChildProcessError):  # killed and already reaped
        os.waitpid(pid, os.WNOHANG)


def test_fork_to_kill_kills_a_child_that_is_still_running():
    with fork_to_kill(lambda ready: ready()) as child:
        assert child.wait_ready()
    assert child.exit_code == -signal.SIGKILL


def test_fork_to_kill_reports_a_child_that_ended_by_itself():
    def fail(ready: object) -> None:
        raise RuntimeError("before ready")

    raised = pytest.raises(AssertionError, match="RuntimeError: before ready")
    with fork_to_kill(fail) as child, raised:
        child.wait_ready(0.5)
    assert child.exit_code == 1


def test_call_in_child_returns_the_result_and_raises_the_childs_error():
    assert call_in_child(lambda: os.getpid()) != os.getpid()
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        call_in_child(lambda: 1 / 0)
