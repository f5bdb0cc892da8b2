"""The ASYNC clauses catch what async backends get wrong, and fdsend.aio passes them.

Two broken async backends, each one line away from fdsend.aio: one awaits
between recvmsg and returning (a cancellation there loses the message and
leaks its fds), one calls the blocking receive inside the loop (the loop
stops while it waits).
"""

from __future__ import annotations

from typing import Any

import pytest
from suite_runs import statuses, suite_runner

BROKEN_ASYNC = """
import asyncio

import fdsend
import fdsend.aio


class AwaitsAfterReceiving:
    name = "awaits-after-receiving"
    needs_nonblocking = True
    sendfds = staticmethod(fdsend.aio.sendfds)

    @staticmethod
    async def recvfds(sock, size, flags=0, numfds=64):
        result = await fdsend.aio.recvfds(sock, size, flags, numfds)
        await asyncio.sleep(0)  # the fds are installed: a cancellation here loses them
        return result


class BlocksTheLoop:
    name = "blocks-the-loop"

    @staticmethod
    async def sendfds(sock, msg, flags=0, fds=None):
        return fdsend.sendfds(sock, msg, flags, fds)

    @staticmethod
    async def recvfds(sock, size, flags=0, numfds=64):
        return fdsend.recvfds(sock, size, flags, numfds)  # sleeps in recvmsg, loop and all


awaits_after_receiving = AwaitsAfterReceiving()
blocks_the_loop = BlocksTheLoop()
"""


@pytest.fixture
def run(pytester: pytest.Pytester):
    run_with_broken = suite_runner(pytester, broken_async=BROKEN_ASYNC)

    def run_async_clauses(backend: str, *args: str) -> tuple[Any, dict[str, str]]:
        result, report = run_with_broken(
            f"--backend={backend}",
            "--test-timeout=10",
            *args,
            suite="fdsend_conformance.suite.test_async",
        )
        return result, statuses(report)

    return run_async_clauses


ASYNC_CLAUSES = [f"ASYNC-{n}" for n in range(1, 8)]


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_reference_aio_passes_every_async_clause(run, loop):
    pytest.importorskip(loop)
    result, statuses = run("reference-aio", f"--event-loop={loop}")
    assert result.ret == pytest.ExitCode.OK
    assert {cid: statuses[cid] for cid in ASYNC_CLAUSES} == dict.fromkeys(ASYNC_CLAUSES, "PASS")


def test_an_await_after_recvmsg_fails_the_cancellation_clause(run):
    result, statuses = run("broken_async:awaits_after_receiving")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses["ASYNC-3"] == "FAIL"
    result.stdout.fnmatch_lines(
        [
            "*first failure:*test_receive_cancelled_at_any_step_keeps_the_message*",
            "*the cancelled receive installed fds and lost them*",
        ]
    )
    # Where the receive is never cancelled after recvmsg, nothing is lost.
    assert statuses["ASYNC-5"] == "PASS"


def test_a_blocking_receive_fails_the_free_loop_clause(run):
    result, statuses = run("broken_async:blocks_the_loop", "-k", "loop_keeps_running")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses["ASYNC-4"] == "FAIL"
    result.stdout.fnmatch_lines(["*the receive blocked the event loop, asleep in recvmsg*"])


def test_a_synchronous_backend_has_no_async_clauses(run):
    result, statuses = run("reference")
    assert result.ret == pytest.ExitCode.OK
    assert {cid: statuses[cid] for cid in ASYNC_CLAUSES} == dict.fromkeys(
        ASYNC_CLAUSES, "UNSUPPORTED"
    )
