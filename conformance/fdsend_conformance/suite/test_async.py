"""ASYNC: cancellation, concurrency and a free loop, for async backends only.

Each test is one coroutine run on the test's event loop (the one the
backend's synchronous calls use too); it awaits the backend's coroutines
directly. The tests use anyio's primitives, so that they run on asyncio,
uvloop and Trio alike. Every test is bounded by ``anyio.fail_after``: a
call that never returns fails the test.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from fdsend_conformance.backend import Caller, Feature
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import check_arrived, close_all, unsupported
from fdsend_conformance.harness.fdlikes import SOCKET_SPELLINGS
from fdsend_conformance.harness.fds import identities, identity
from fdsend_conformance.harness.sockets import fill_send_buffer, pending, recv_stream
from fdsend_conformance.harness.timeouts import IO_TIMEOUT
from fdsend_conformance.harness.when_blocked import wake_when_blocked

#: Seconds the timeout tests give a call that cannot complete.
SHORT_TIMEOUT = 0.05


class Calls:
    """The async backend's own coroutines, awaited on the test's loop."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend  # the fixture's caller of an event-loop backend

    def run(self, main: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``main()`` on the test's loop, failing it after IO_TIMEOUT seconds."""

        async def bounded() -> Any:
            with anyio.fail_after(IO_TIMEOUT):
                return await main()

        return self.backend.run(bounded)

    async def send(self, sock: socket.socket, msg: bytes, fds: Iterable[int] = ()) -> int:
        """``await sendfds(sock, msg, 0, fds)``, the socket as the backend needs it."""
        return int(await self.backend.asendfds(sock, msg, 0, list(fds)))

    async def receive(self, sock: socket.socket, size: int = 16, numfds: int = 4) -> Any:
        """``await recvfds(sock, size, 0, numfds)``, the socket as the backend needs it."""
        return await self.backend.arecvfds(sock, size, 0, numfds)

    async def exchange(self, a: socket.socket, b: socket.socket, msg: bytes, fds: list[int]) -> Any:
        """Send ``msg`` with ``fds`` on ``a``, then receive on ``b``: what arrived."""
        await self.send(a, msg, fds)
        return await self.receive(b)

    async def cancelled(
        self, call: Callable[[], Awaitable[Any]], steps: int | None = None
    ) -> list[Any]:
        """Run ``call()`` in a task; cancel it once it waits (or after ``steps`` checkpoints).

        Returns what the call returned, in a list: empty when the cancellation stopped it.
        """
        finished: list[Any] = []
        async with anyio.create_task_group() as group:

            async def task() -> None:
                finished.append(await call())

            group.start_soon(task)
            if steps is None:
                await anyio.wait_all_tasks_blocked()  # the call waits
            else:
                for _ in range(steps):  # let the call run this far
                    await anyio.lowlevel.checkpoint()
            group.cancel_scope.cancel()
        return finished

    async def stopped(self, call: Callable[[], Awaitable[Any]], how: str) -> list[Any]:
        """Run ``call()`` and stop it while it waits, the way ``how`` names (see :func:`stops`).

        Returns what the call returned, in a list: empty when it was stopped.
        """
        if how == "cancel":
            return await self.cancelled(call)
        finished: list[Any] = []
        with anyio.move_on_after(SHORT_TIMEOUT):
            finished.append(await call())
        return finished


def stops(cancel_clause: str) -> list[Any]:
    """The ways :meth:`Calls.stopped` stops a waiting call, each marked with its clause.

    ``cancel``: its task is cancelled once it waits (``cancel_clause``);
    ``timeout``: its deadline passes (ASYNC-7, a timeout is a cancellation).
    """
    return [
        pytest.param("cancel", marks=pytest.mark.clause(cancel_clause)),
        pytest.param("timeout", marks=pytest.mark.clause("ASYNC-7")),
    ]


@pytest.fixture
def calls(backend: Caller) -> Calls:
    """The backend's coroutines; UNSUPPORTED for a synchronous backend."""
    if not backend.backend.asynchronous:
        unsupported(f"{backend.name} is synchronous: the ASYNC clauses apply to async backends")
    return Calls(backend)


@pytest.mark.parametrize("how", stops("ASYNC-1"))
def test_a_receive_stopped_while_waiting_consumes_nothing(calls, pair, closer, how):
    a, b = pair
    sent = closer.distinct_fds(2)

    async def main() -> Any:
        before = fdtable.open_fds()  # in the run: a loop may hold fds while it runs
        finished = await calls.stopped(lambda: calls.receive(b), how)  # nothing is queued
        assert finished == [], "the receive returned with nothing sent"
        assert fdtable.open_fds() == before, f"the receive stopped by {how} left fds open"
        return await calls.exchange(a, b, b"after", sent)

    received = calls.run(main)
    check_arrived(calls.backend, closer, received, b"after", sent, "fds of the next message lost")


@pytest.mark.parametrize("how", stops("ASYNC-2"))
def test_a_send_stopped_while_waiting_sends_nothing(calls, pair, closer, how):
    a, b = pair
    filler = fill_send_buffer(a)
    sent = closer.distinct_fds(2)
    files = identities(sent)
    finished = calls.run(lambda: calls.stopped(lambda: calls.send(a, b"never", sent), how))
    assert finished == [], "the send completed on a full buffer"
    assert identities(sent) == files, "the caller's fds were closed or replaced"
    data, fds = recv_stream(b, filler)
    closer.fds(*fds)
    assert fds == [], f"the send stopped by {how} delivered fds"
    assert not pending(b), f"the send stopped by {how} queued something"
    assert len(data) == filler, f"the send stopped by {how} queued bytes"

    received = calls.run(lambda: calls.exchange(a, b, b"later", sent))
    check_arrived(calls.backend, closer, received, b"later", sent)


@pytest.mark.clause("ASYNC-4")
def test_send_waits_for_room_then_sends_its_fds(calls, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    sent = closer.distinct_fds(2)
    finished: list[int] = []
    # flags other than MSG_DONTWAIT do not stop a send from waiting
    flags = socket.MSG_NOSIGNAL if calls.backend.supports(Feature.FLAGS) else 0

    async def main() -> Any:
        async with anyio.create_task_group() as group:

            async def send() -> None:  # a generator: the fds must survive the wait
                fds = (fd for fd in sent)
                finished.append(await calls.backend.asendfds(a, b"room", flags, fds))

            group.start_soon(send)
            await anyio.wait_all_tasks_blocked()  # the send waits: the buffer is full
            assert finished == [], "the send completed on a full buffer"
            recv_stream(b, filler)  # room: the waiting send goes on
        return await calls.receive(b)

    received = calls.run(main)
    check_arrived(calls.backend, closer, received, b"room", sent)
    assert finished == [4]


@pytest.mark.clause("ASYNC-3")
@pytest.mark.parametrize("steps", range(4))
def test_receive_cancelled_at_any_step_keeps_the_message(calls, pair, closer, steps):
    a, b = pair
    sent = closer.distinct_fds(3)

    async def main() -> Any:
        await calls.send(a, b"ready", sent)  # queued before the receive starts
        before = fdtable.open_fds()  # in the run: a loop may hold fds while it runs
        finished = await calls.cancelled(lambda: calls.receive(b), steps)
        if finished:
            return finished[0]
        assert fdtable.open_fds() == before, "the cancelled receive installed fds and lost them"
        assert pending(b), "the cancelled receive consumed the message"
        return await calls.receive(b)

    received = calls.run(main)
    check_arrived(calls.backend, closer, received, b"ready", sent, "fds lost to the cancellation")


@pytest.mark.clause("ASYNC-4")
def test_loop_keeps_running_while_a_receive_waits(calls, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(1)
    order: list[str] = []

    def wake() -> None:
        a.send(b"!")  # a plain message from the watcher: the blocked receive returns it

    async def main() -> Any:
        async with anyio.create_task_group() as group:
            results: list[Any] = []

            async def receive() -> None:
                results.append(await calls.receive(b))
                order.append("received")

            group.start_soon(receive)
            await anyio.wait_all_tasks_blocked()
            order.append("loop ran")  # another task ran while the receive waited
            await calls.send(a, b"meanwhile", sent)
        return results[0]

    tid = calls.backend.loop_thread()
    with wake_when_blocked("recvmsg", b, wake, loop_waits=False, tid=tid) as wakeup:
        received = calls.run(main)
    assert wakeup.errors == [], f"waking the blocked receive failed: {wakeup.errors!r}"
    assert wakeup.seen is None, "the receive blocked the event loop, asleep in recvmsg"
    assert order == ["loop ran", "received"]
    check_arrived(calls.backend, closer, received, b"meanwhile", sent)


@pytest.mark.clause("ASYNC-4")
@pytest.mark.requires(Feature.FLAGS)
def test_a_receive_with_flags_other_than_dontwait_waits(calls, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(1)
    peek = socket.MSG_PEEK | socket.MSG_CMSG_CLOEXEC  # flags, but not MSG_DONTWAIT

    async def main() -> Any:
        async with anyio.create_task_group() as group:
            peeked: list[Any] = []

            async def receive() -> None:
                peeked.append(await calls.backend.arecvfds(b, 16, peek, 4))

            group.start_soon(receive)
            await anyio.wait_all_tasks_blocked()  # the peek waits: nothing is queued
            await calls.send(a, b"peeked", sent)
        return peeked[0], await calls.receive(b)

    peeked, received = calls.run(main)
    check_arrived(calls.backend, closer, peeked, b"peeked", sent, "the peek returned other fds")
    check_arrived(calls.backend, closer, received, b"peeked", sent)


def _blocking(sock: socket.socket, spelling: str) -> Any:
    """``sock`` in its own blocking mode, spelled as a caller may give it (or with a timeout)."""
    if spelling == "socket-with-timeout":
        sock.settimeout(IO_TIMEOUT)
        return sock
    if spelling == "closed-socket":
        closed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # blocking, as made
        closed.close()
        return closed
    return SOCKET_SPELLINGS[spelling](sock)


@pytest.mark.parametrize("call", ["send", "receive"])
@pytest.mark.parametrize(
    "spelling",
    [
        *(pytest.param(name, marks=pytest.mark.clause("ASYNC-4")) for name in SOCKET_SPELLINGS),
        pytest.param("socket-with-timeout", marks=pytest.mark.clause("ASYNC-4")),
        pytest.param("closed-socket", marks=pytest.mark.clause("ERR-2")),
    ],
)
def test_a_blocking_socket_is_refused_before_anything_is_done(calls, pair, closer, call, spelling):
    """A backend that declares ``needs_nonblocking`` refuses a blocking socket: ValueError.

    A call on it would sleep in the kernel and stop the loop (ASYNC-4). The
    message is queued and the buffer has room, so nothing here can wait: a
    backend that lets the socket through completes the call, and fails. A
    closed socket object is no blocking socket: EBADF, as ERR-2 has it.
    """
    if not calls.backend.backend.needs_nonblocking:
        unsupported(f"{calls.backend.name} takes blocking sockets and waits on the loop for them")
    a, b = pair
    sent = closer.distinct_fds(1)
    if call == "receive":
        calls.backend.sendfds(a, b"kept", 0, sent)
    given = _blocking(a if call == "send" else b, spelling)

    async def attempt() -> Any:
        try:
            if call == "send":
                return await calls.backend.asendfds(given, b"x", 0, sent, as_given=True)
            return await calls.backend.arecvfds(given, 16, 0, 4, as_given=True)
        except (ValueError, OSError) as exc:
            return exc

    outcome = calls.run(attempt)
    if call == "receive" and not isinstance(outcome, BaseException):
        closer.fds(*outcome[1])  # (msg, fds)
    if spelling == "closed-socket":
        assert isinstance(outcome, OSError), f"a closed socket object: {outcome!r}, not EBADF"
        assert outcome.errno == errno.EBADF, f"a closed socket object: {outcome!r}, not EBADF"
    else:
        assert isinstance(outcome, ValueError), f"a blocking socket ({spelling}): {outcome!r}"
    if call == "send":
        assert not pending(b), "the refused send queued something"
        return
    assert pending(b), "the refused receive consumed the message"
    received = calls.run(lambda: calls.receive(b))
    check_arrived(calls.backend, closer, received, b"kept", sent)


@pytest.mark.clause("ASYNC-5")
def test_concurrent_tasks_on_many_sockets(calls, closer):
    pairs = 16
    messages = 8
    files = closer.distinct_fds(pairs)
    sockets = [socket.socketpair() for _ in range(pairs)]
    for a, b in sockets:
        closer.objects(a, b)
    got: list[list[tuple[bytes, list[tuple[int, int]]]]] = [[] for _ in range(pairs)]

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for index, (a, b) in enumerate(sockets):

                async def sender(index: int = index, a: socket.socket = a) -> None:
                    for sequence in range(messages):
                        await calls.send(a, b"%02d:%06d" % (index, sequence), [files[index]])

                async def receiver(index: int = index, b: socket.socket = b) -> None:
                    for _ in range(messages):
                        msg, fds = await calls.receive(b, 9, 2)
                        got[index].append((msg, identities(fds)))
                        close_all(fds)

                group.start_soon(receiver)
                group.start_soon(sender)

    calls.run(main)
    for index in range(pairs):
        expected = [
            (b"%02d:%06d" % (index, sequence), [identity(files[index])])
            for sequence in range(messages)
        ]
        assert got[index] == expected, f"pair {index}: messages or fds lost or crossed"


@pytest.mark.clause("ASYNC-6")
@pytest.mark.parametrize(
    "kind", [socket.SOCK_SEQPACKET, socket.SOCK_DGRAM], ids=["seqpacket", "dgram"]
)
def test_several_tasks_on_one_socket_get_whole_messages(calls, make_pair, closer, kind):
    a, b = make_pair(kind)
    tasks = 4
    per_task = 4
    files = closer.distinct_fds(tasks * per_task)
    got: list[tuple[bytes, list[tuple[int, int]]]] = []

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def receiver() -> None:
                for _ in range(per_task):
                    msg, fds = await calls.receive(b, 16, 2)
                    got.append((msg, identities(fds)))
                    close_all(fds)

            for _ in range(tasks):
                group.start_soon(receiver)
            await anyio.wait_all_tasks_blocked()  # every receiver waits on the one socket
            for number, fd in enumerate(files):
                await calls.send(a, b"%06d" % number, [fd])

    calls.run(main)
    expected = [(b"%06d" % number, [identity(fd)]) for number, fd in enumerate(files)]
    assert sorted(got) == sorted(expected), "messages lost, duplicated or mixed with others' fds"


@pytest.mark.clause("ASYNC-6")
def test_a_receiver_that_lost_the_race_waits_on(calls, make_pair, closer):
    a, b = make_pair(socket.SOCK_SEQPACKET)
    sent = closer.distinct_fds(2)
    got: list[tuple[bytes, list[tuple[int, int]]]] = []
    first = anyio.Event()

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def receiver() -> None:
                msg, fds = await calls.receive(b, 16, 2)
                got.append((msg, identities(fds)))
                close_all(fds)
                first.set()

            group.start_soon(receiver)
            group.start_soon(receiver)
            await anyio.wait_all_tasks_blocked()
            await calls.send(a, b"one", sent[:1])  # both may wake; one gets it
            await first.wait()
            await anyio.wait_all_tasks_blocked()  # the other, woken for nothing, waits again
            assert len(got) == 1
            await calls.send(a, b"two", sent[1:])

    calls.run(main)
    assert sorted(got) == [(b"one", identities(sent[:1])), (b"two", identities(sent[1:]))]
