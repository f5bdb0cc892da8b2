"""The measured loops: what one round is, for every contestant.

**In-process round**: over one connected AF_UNIX SOCK_STREAM socketpair,
send one message (the payload and ``n`` fds), receive it on the other end
(the whole payload: what a stream delivers short is read with ``recv``),
and close the ``n`` received fds.

**Cross-process round**: a forked child owns the receiving end. The parent
sends one message; the child receives it (whole payload), closes the ``n``
received fds and writes one ack byte to a pipe; the parent's round ends
when it has read that byte. The ack goes through a pipe, not the socket,
so the harness never depends on the socket's mode (anyio makes it
non-blocking). The C floor does exactly the same.

Every contestant has its own loop with its calls written out in it, so the
harness adds no call layers of its own; backends are measured as they are,
adapter included. The fds sent are one pipe end, repeated ``n`` times.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import signal
import socket
import time
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fdsend_conformance.backend import Backend, Feature
from fdsend_conformance.harness.processes import fork_call, reap
from fdsend_conformance.harness.sockets import recv_stream, set_io_timeout

__all__ = [
    "CALL_FLOOR",
    "INLINE",
    "Case",
    "Contestant",
    "backend_contestant",
    "batch_ns",
    "floor_recvfds",
    "floor_sendfds",
    "in_process_rounds",
]

#: One blocking call of either side of a round.
BENCH_IO_TIMEOUT = 30.0

_SOL_SOCKET = int(socket.SOL_SOCKET)
_SCM_RIGHTS = int(socket.SCM_RIGHTS)
_CLOEXEC = int(socket.MSG_CMSG_CLOEXEC)


@dataclass(frozen=True)
class Case:
    """One configuration: fds per message, payload bytes, where the receiver is."""

    fds: int
    payload: int
    cross_process: bool

    @property
    def where(self) -> str:
        return "2 processes" if self.cross_process else "in-process"

    @property
    def size(self) -> str:
        return f"{self.payload // 1024} KiB" if self.payload >= 1024 else f"{self.payload} B"

    @property
    def label(self) -> str:
        return f"{self.fds} fd{'s' if self.fds != 1 else ''}, {self.size}, {self.where}"


#: (sender, receiver, payload, fds, rounds) -> elapsed ns
InProcessLoop = Callable[[socket.socket, socket.socket, bytes, list[int], int], int]
#: (sender, payload, fds, rounds, ack read fd) -> elapsed ns
SendLoop = Callable[[socket.socket, bytes, list[int], int, int], int]
#: (receiver, payload size, fds per message, rounds, ack write fd)
ReceiveLoop = Callable[[socket.socket, int, int, int, int], None]


@dataclass(frozen=True)
class Contestant:
    """A floor or a backend, as three loops."""

    name: str
    kind: str  # "floor" or "backend"
    in_process: InProcessLoop
    send_loop: SendLoop
    receive_loop: ReceiveLoop
    carries_payload: bool = True
    version: str = ""
    #: Why it cannot run a case (None: it can); a driver's own rounds run one fd, in-process.
    refuses: Callable[[Case], str | None] = lambda case: None


def _acked(data: bytes) -> None:
    if not data:
        raise EOFError("the receiving process stopped")


# -- (a) the inline floor: sendmsg/recvmsg written out in the loop -----------


def _inline_in_process(
    a: socket.socket, b: socket.socket, payload: bytes, fds: list[int], rounds: int
) -> int:
    size = len(payload)
    space = socket.CMSG_SPACE(4 * len(fds))
    close = os.close
    start = time.perf_counter_ns()
    for _ in range(rounds):
        a.sendmsg([payload], [(_SOL_SOCKET, _SCM_RIGHTS, array("i", fds))])
        msg, ancillary, _flags, _address = b.recvmsg(size, space, _CLOEXEC)
        for _level, _kind, data in ancillary:
            for fd in array("i", data):
                close(fd)
        if len(msg) < size:
            recv_stream(b, size - len(msg), BENCH_IO_TIMEOUT)
    return time.perf_counter_ns() - start


def _inline_send_loop(
    a: socket.socket, payload: bytes, fds: list[int], rounds: int, ack: int
) -> int:
    read = os.read
    start = time.perf_counter_ns()
    for _ in range(rounds):
        a.sendmsg([payload], [(_SOL_SOCKET, _SCM_RIGHTS, array("i", fds))])
        if not read(ack, 1):
            _acked(b"")
    return time.perf_counter_ns() - start


def _inline_receive_loop(b: socket.socket, size: int, numfds: int, rounds: int, ack: int) -> None:
    space = socket.CMSG_SPACE(4 * numfds)
    close, write = os.close, os.write
    for _ in range(rounds):
        msg, ancillary, _flags, _address = b.recvmsg(size, space, _CLOEXEC)
        for _level, _kind, data in ancillary:
            for fd in array("i", data):
                close(fd)
        if len(msg) < size:
            recv_stream(b, size - len(msg), BENCH_IO_TIMEOUT)
        write(ack, b"k")


INLINE = Contestant("inline", "floor", _inline_in_process, _inline_send_loop, _inline_receive_loop)


# -- (b) the Python call floor: the smallest pair of functions doing that work --


def floor_sendfds(sock: socket.socket, msg: bytes, flags: int = 0, fds: Any = None) -> int:
    """sendmsg with one SCM_RIGHTS entry built by ``array('i', fds)``."""
    return sock.sendmsg([msg], [(_SOL_SOCKET, _SCM_RIGHTS, array("i", fds))], flags)


def floor_recvfds(
    sock: socket.socket, len: int, flags: int = 0, numfds: int = 64
) -> tuple[bytes, tuple[int, ...]]:
    """recvmsg with MSG_CMSG_CLOEXEC into CMSG_SPACE(4 * numfds); fds by frombytes."""
    msg, ancillary, _flags, _address = sock.recvmsg(
        len, socket.CMSG_SPACE(4 * numfds), flags | _CLOEXEC
    )
    fds = array("i")
    for level, kind, data in ancillary:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
            fds.frombytes(data)  # Linux cuts SCM_RIGHTS at whole ints, even on MSG_CTRUNC
    return msg, tuple(fds)


# -- backends (and the call floor): the same loop around any sendfds/recvfds --


def in_process_rounds(
    sendfds: Callable[..., Any],
    recvfds: Callable[..., Any],
    a: socket.socket,
    b: socket.socket,
    payload: bytes,
    fds: list[int],
    rounds: int,
) -> int:
    """``rounds`` in-process rounds through ``sendfds``/``recvfds`` (fdsend's shape); their ns."""
    size, numfds = len(payload), len(fds)
    close = os.close
    start = time.perf_counter_ns()
    for _ in range(rounds):
        sendfds(a, payload, 0, fds)
        msg, got = recvfds(b, size, 0, numfds)
        for fd in got:
            close(fd)
        if len(msg) < size:
            recv_stream(b, size - len(msg), BENCH_IO_TIMEOUT)
    return time.perf_counter_ns() - start


def _calls_send_loop(
    sendfds: Callable[..., Any],
    a: socket.socket,
    payload: bytes,
    fds: list[int],
    rounds: int,
    ack: int,
) -> int:
    read = os.read
    start = time.perf_counter_ns()
    for _ in range(rounds):
        sendfds(a, payload, 0, fds)
        if not read(ack, 1):
            _acked(b"")
    return time.perf_counter_ns() - start


def _calls_receive_loop(
    recvfds: Callable[..., Any], b: socket.socket, size: int, numfds: int, rounds: int, ack: int
) -> None:
    close, write = os.close, os.write
    for _ in range(rounds):
        msg, got = recvfds(b, size, 0, numfds)
        for fd in got:
            close(fd)
        if len(msg) < size:
            recv_stream(b, size - len(msg), BENCH_IO_TIMEOUT)
        write(ack, b"k")


def _calls_contestant(
    name: str, kind: str, sendfds: Callable[..., Any], recvfds: Callable[..., Any], **more: Any
) -> Contestant:
    """A contestant whose three loops call ``sendfds``/``recvfds`` (fdsend's shape)."""
    return Contestant(
        name,
        kind,
        functools.partial(in_process_rounds, sendfds, recvfds),
        functools.partial(_calls_send_loop, sendfds),
        functools.partial(_calls_receive_loop, recvfds),
        **more,
    )


CALL_FLOOR = _calls_contestant("call-floor", "floor", floor_sendfds, floor_recvfds)


def backend_contestant(backend: Backend) -> Contestant:
    """A backend measured as it is: its module's own functions, adapter included."""
    return _calls_contestant(
        backend.name,
        "backend",
        backend.impl.sendfds,
        backend.impl.recvfds,
        carries_payload=backend.supports(Feature.PAYLOAD),
        version=backend.version,
    )


def in_driver_contestant(backend: Backend) -> Contestant:
    """A driver's rounds run inside the driver (its ``bench``): the language, not the protocol."""

    def in_process(
        a: socket.socket, b: socket.socket, payload: bytes, fds: list[int], rounds: int
    ) -> int:
        return int(backend.impl.bench(a, b, fds[0], len(payload), rounds))

    def refuses(case: Case) -> str | None:
        if case.cross_process or case.fds != 1:
            return "a driver's own rounds are one fd, in one process"
        return None

    def no_loop(*args: Any) -> Any:
        raise NotImplementedError("a driver's own rounds run in one process")

    return Contestant(
        f"{backend.name} (in driver)",
        "backend",
        in_process,
        no_loop,
        no_loop,
        carries_payload=backend.supports(Feature.PAYLOAD),
        version=backend.version,
        refuses=refuses,
    )


# -- one timed batch ---------------------------------------------------------


@contextlib.contextmanager
def _gc_off() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def batch_ns(contestant: Contestant, case: Case, rounds: int) -> float:
    """Nanoseconds per round over one batch of ``rounds`` rounds.

    A contestant that carries no payload of its own is given none.
    """
    read_end, write_end = os.pipe()
    fds = [read_end] * case.fds
    # The loops size each receive from the payload: a backend with no payload
    # of its own gets b"" (it would ignore any other).
    payload = b"\x5a" * case.payload if contestant.carries_payload else b""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        for sock in (a, b):
            set_io_timeout(sock, BENCH_IO_TIMEOUT)
        if case.cross_process:
            return _cross_process(contestant, case, a, b, payload, fds, rounds)
        with _gc_off():
            elapsed = contestant.in_process(a, b, payload, fds, rounds)
        return elapsed / rounds
    finally:
        a.close()
        b.close()
        os.close(read_end)
        os.close(write_end)


def _cross_process(
    contestant: Contestant,
    case: Case,
    a: socket.socket,
    b: socket.socket,
    payload: bytes,
    fds: list[int],
    rounds: int,
) -> float:
    size = len(payload)
    ack_read, ack_write = os.pipe()

    def receiver() -> None:
        gc.disable()
        a.close()
        os.close(ack_read)
        os.write(ack_write, b"r")  # ready: the timing starts now
        contestant.receive_loop(b, size, case.fds, rounds, ack_write)

    try:
        pid = fork_call(receiver)
    except BaseException:
        os.close(ack_read)
        os.close(ack_write)
        raise
    os.close(ack_write)
    b.close()  # the child's now: a dead child then fails our send instead of hanging it
    finished = False
    try:
        if os.read(ack_read, 1) != b"r":
            raise RuntimeError(f"{contestant.name}: the receiving process did not start")
        with _gc_off():
            elapsed = contestant.send_loop(a, payload, fds, rounds, ack_read)
        finished = True
    finally:
        os.close(ack_read)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        status = reap(pid)
    if status != 0:
        raise RuntimeError(f"{contestant.name}: the receiving process exited with {status}")
    return elapsed / rounds
