"""fdsend.aio beyond the contract: what it accepts, that a ready call never yields,
and that nothing stays registered with the loop."""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import fdsend
import fdsend.aio
from fdsend_conformance.harness.fds import identities, identity
from fdsend_conformance.harness.timeouts import IO_TIMEOUT

LOOPS = ["asyncio", "uvloop"]


@pytest.fixture(scope="module")
def libuv_started() -> None:
    """One uvloop loop before any leak check: libuv opens a pipe per process, for good."""
    try:
        import uvloop
    except ImportError:
        return
    loop = uvloop.new_event_loop()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()


@pytest.fixture(params=LOOPS)
def run(
    request: pytest.FixtureRequest, libuv_started: None
) -> Iterator[Callable[[Callable[[], Awaitable[Any]]], Any]]:
    """Run a coroutine function on a fresh loop of each kind, bounded by IO_TIMEOUT."""
    if request.param == "uvloop":
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()

    def run(main: Callable[[], Awaitable[Any]]) -> Any:
        return loop.run_until_complete(asyncio.wait_for(main(), IO_TIMEOUT))

    yield run
    loop.close()


@pytest.fixture
def nonblocking(pair):
    a, b = pair
    a.setblocking(False)
    b.setblocking(False)
    return a, b


def test_importing_fdsend_does_not_import_asyncio():
    code = "import sys, fdsend; print('asyncio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("spelling", ["blocking", "timeout", "int"])
def test_a_blocking_socket_is_refused_before_anything_happens(run, pair, pipe, spelling):
    a, b = pair
    if spelling == "timeout":
        a.settimeout(1.0)
    target: Any = a.fileno() if spelling == "int" else a

    async def main() -> None:
        with pytest.raises(ValueError, match="non-blocking"):
            await fdsend.aio.sendfds(target, b"x", fds=[pipe[0]])
        with pytest.raises(ValueError, match="non-blocking"):
            await fdsend.aio.recvfds(target, 16)

    run(main)
    b.setblocking(False)
    with pytest.raises(BlockingIOError):
        b.recv(1)  # nothing was sent


def test_an_int_fd_of_a_nonblocking_socket_works(run, nonblocking, pipe):
    a, b = nonblocking

    async def main() -> Any:
        await fdsend.aio.sendfds(a.fileno(), b"int", fds=[pipe[0]])
        return await fdsend.aio.recvfds(b.fileno(), 16)

    msg, fds = run(main)
    assert msg == b"int"
    assert identities(fds) == [identity(pipe[0])]
    os.close(fds[0])


def test_a_closed_socket_gets_the_synchronous_ebadf(run):
    a, b = socket.socketpair()
    a.setblocking(False)
    a.close()
    b.close()

    async def main() -> None:
        with pytest.raises(OSError) as raised:
            await fdsend.aio.recvfds(a, 16)
        assert raised.value.errno == errno.EBADF

    run(main)


def test_a_ready_call_never_yields(nonblocking, pipe):
    """Stepping the coroutines once completes them: no loop is needed at all."""
    a, b = nonblocking

    def step(coroutine: Any) -> Any:
        with pytest.raises(StopIteration) as done:
            coroutine.send(None)
        return done.value.value

    assert step(fdsend.aio.sendfds(a, b"now", fds=[pipe[0]])) == 3
    msg, fds = step(fdsend.aio.recvfds(b, 16))
    assert msg == b"now"
    os.close(fds[0])


def test_msg_dontwait_does_not_wait(run, nonblocking):
    _, b = nonblocking

    async def main() -> None:
        with pytest.raises(BlockingIOError):
            await fdsend.aio.recvfds(b, 16, socket.MSG_DONTWAIT)

    run(main)


def test_nothing_stays_registered_after_a_cancelled_wait(run, nonblocking, pipe):
    a, b = nonblocking

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        waiters = [asyncio.ensure_future(fdsend.aio.recvfds(b, 16)) for _ in range(3)]
        await asyncio.sleep(0)
        assert len(fdsend.aio._waiting) == 1  # one reader for the fd, shared by three
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
        assert fdsend.aio._waiting == {}
        assert not loop.remove_reader(b.fileno()), "a reader stayed registered"
        await fdsend.aio.sendfds(a, b"after", fds=[pipe[0]])
        return await fdsend.aio.recvfds(b, 16)

    msg, fds = run(main)
    assert msg == b"after"
    os.close(fds[0])


def test_waiters_on_one_socket_are_each_woken(run, pipe):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with a, b:
        a.setblocking(False)
        b.setblocking(False)

        async def main() -> list[Any]:
            waiters = [asyncio.ensure_future(fdsend.aio.recvfds(b, 16)) for _ in range(3)]
            await asyncio.sleep(0)
            for number in range(3):
                await fdsend.aio.sendfds(a, b"%d" % number, fds=[pipe[0]])
            return list(await asyncio.gather(*waiters))

        results = run(main)
    assert sorted(msg for msg, _ in results) == [b"0", b"1", b"2"]
    for _, fds in results:
        assert identities(fds) == [identity(pipe[0])]
        os.close(fds[0])


def test_a_send_waits_for_room_and_then_goes(run, nonblocking, pipe):
    a, b = nonblocking
    filler = b"\0" * 65536
    sent = 0
    try:
        while True:
            sent += a.send(filler)
    except BlockingIOError:
        pass

    async def main() -> int:
        send = asyncio.ensure_future(fdsend.aio.sendfds(a, b"late", fds=[pipe[0]]))
        await asyncio.sleep(0)
        assert not send.done()
        left = sent
        while left:  # read on the loop, as a peer task would
            await asyncio.sleep(0)
            try:
                left -= len(b.recv(min(left, 1 << 20)))
            except BlockingIOError:
                continue
        return await send

    assert run(main) == 4
    msg, fds = fdsend.recvfds(b, 16)
    assert msg == b"late"
    os.close(fds[0])
