"""FAULT: signals, non-blocking sockets, dying peers and fd limits."""

from __future__ import annotations

import array
import json
import os
import select
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from fdsend_conformance import fdtable
from fdsend_conformance.backend import Feature
from fdsend_conformance.checks import receive_truncated
from fdsend_conformance.processes import fork_call, leave_free_fds, reap
from fdsend_conformance.sockets import IO_TIMEOUT, distinct_fds, identity, pending

RIGHTS = (socket.SOL_SOCKET, socket.SCM_RIGHTS)


class Interrupted(Exception):
    """Raised by a signal handler to abandon a blocking call."""


@contextmanager
def alarm(handler: Callable[[], None], seconds: float = 0.05) -> Iterator[None]:
    """Run ``handler`` from SIGALRM once, ``seconds`` from now.

    pytest-timeout may have an alarm of its own armed: it is put back after.
    """
    previous_timer, _ = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: handler())
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if previous_timer:
            signal.setitimer(signal.ITIMER_REAL, previous_timer)


@pytest.mark.clause("FAULT-1")
def test_signal_during_receive_is_retried(backend, pair, closer):
    a, b = pair
    sent = distinct_fds(1)
    closer.fds(*sent)
    with alarm(lambda: backend.sendfds(a, b"late", 0, sent)):
        msg, fds = backend.recvfds(b, 16, 0, 1)  # blocks until the handler sends
    closer.fds(*fds)
    assert [identity(fd) for fd in fds] == [identity(sent[0])]
    if backend.supports(Feature.PAYLOAD):
        assert msg == b"late"


@pytest.mark.clause("FAULT-1")
def test_signal_handler_exception_leaves_the_message_queued(backend, pair, closer):
    a, b = pair
    sent = distinct_fds(1)
    closer.fds(*sent)

    def send_then_raise() -> None:
        backend.sendfds(a, b"kept", 0, sent)
        raise Interrupted

    before = fdtable.open_fds()
    with alarm(send_then_raise), pytest.raises(Interrupted):
        backend.recvfds(b, 16, 0, 1)
    assert fdtable.open_fds() == before, "the interrupted receive installed fds and lost them"
    _, fds = backend.recvfds(b, 16, 0, 1)
    closer.fds(*fds)
    assert [identity(fd) for fd in fds] == [identity(sent[0])]


def _fill(sock: socket.socket) -> int:
    """Fill ``sock``'s send buffer; return how many bytes went in."""
    sock.setblocking(False)
    total = 0
    try:
        while True:
            total += sock.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    try:
        while True:  # top up byte by byte in the last gap
            total += sock.send(b"\0")
    except BlockingIOError:
        return total


def _drain(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    """Read ``size`` bytes from a stream, collecting every fd that comes along."""
    chunks: list[bytes] = []
    fds: list[int] = []
    got = 0
    while got < size:
        data, ancillary, _, _ = sock.recvmsg(min(size - got, 1 << 20), socket.CMSG_SPACE(4 * 16))
        assert data, "EOF before every byte arrived"
        for level, kind, cmsg in ancillary:
            if (level, kind) == RIGHTS:
                fds.extend(array.array("i", cmsg[: len(cmsg) - len(cmsg) % 4]))
        chunks.append(data)
        got += len(data)
    return b"".join(chunks), fds


@pytest.mark.clause("FAULT-2")
@pytest.mark.requires(Feature.PAYLOAD)
def test_signal_during_a_blocked_send_is_retried(backend, pair, closer):
    a, b = pair
    filler = _fill(a)
    a.setblocking(True)
    sent = distinct_fds(1)
    closer.fds(*sent)
    drained: list[int] = []
    with alarm(lambda: drained.append(len(b.recv(1 << 16)))):  # makes room; the send goes on
        assert backend.sendfds(a, b"after", 0, sent) == len(b"after")
    assert drained, "the send never blocked"
    data, fds = _drain(b, filler - drained[0] + len(b"after"))
    closer.fds(*fds)
    assert data.endswith(b"after")
    assert [identity(fd) for fd in fds] == [identity(sent[0])], "fds lost or duplicated"


@pytest.mark.clause("FAULT-2")
def test_signal_handler_exception_during_a_blocked_send_sends_nothing(backend, pair, closer):
    a, b = pair
    filler = _fill(a)
    a.setblocking(True)
    sent = distinct_fds(1)
    closer.fds(*sent)

    def interrupt() -> None:
        raise Interrupted

    with alarm(interrupt), pytest.raises(Interrupted):
        backend.sendfds(a, b"never", 0, sent)
    _, fds = _drain(b, filler)
    closer.fds(*fds)
    assert fds == [], "an abandoned send still delivered fds"
    assert not pending(b)
    os.fstat(sent[0])  # still the caller's


@pytest.mark.clause("FAULT-3")
def test_non_blocking_empty_receive_consumes_nothing(backend, pair):
    _, b = pair
    b.setblocking(False)
    before = fdtable.open_fds()
    with pytest.raises(BlockingIOError):
        backend.recvfds(b, 16, 0, 4)
    assert fdtable.open_fds() == before


@pytest.mark.clause("FAULT-3")
def test_non_blocking_full_send_queues_nothing(backend, pair, closer):
    a, b = pair
    filler = _fill(a)
    sent = distinct_fds(2)
    closer.fds(*sent)
    with pytest.raises(BlockingIOError):
        backend.sendfds(a, b"full", 0, sent)
    for fd in sent:
        os.fstat(fd)  # the caller's fds are still open
    _, fds = _drain(b, filler)
    closer.fds(*fds)
    assert fds == []
    assert not pending(b), "the refused send queued something"


@pytest.mark.clause("FAULT-4")
def test_killed_sender_leaves_what_it_sent_then_eof(backend, pair, closer):
    a, b = pair
    files = distinct_fds(4)
    closer.fds(*files)
    done_read, done_write = os.pipe()
    closer.fds(done_read)

    def child() -> None:
        b.close()
        os.close(done_read)
        for index, fd in enumerate(files):
            backend.sendfds(a, b"m%d" % index, 0, [fd])
        os.write(done_write, b"!")  # everything is queued
        select.select([], [], [])  # then wait to be killed

    pid = fork_call(child)
    os.close(done_write)
    a.close()
    try:
        received = [backend.recvfds(b, 2, 0, 1) for _ in range(2)]
        assert select.select([done_read], [], [], IO_TIMEOUT)[0], "the sender never finished"
    finally:
        os.kill(pid, signal.SIGKILL)
        assert reap(pid) == -signal.SIGKILL
    received += [backend.recvfds(b, 2, 0, 1) for _ in range(2)]
    for _, fds in received:
        closer.fds(*fds)
    assert [[identity(fd) for fd in fds] for _, fds in received] == [[identity(fd)] for fd in files]
    if backend.supports(Feature.PAYLOAD):
        assert [msg for msg, _ in received] == [b"m0", b"m1", b"m2", b"m3"]
    try:
        msg, fds = backend.recvfds(b, 2, 0, 1)
    except EOFError:
        return  # EOF reported by raising it: fine
    assert (msg, list(fds)) == (b"", []), "EOF must read as an empty message without fds"


def _child_at_fd_limit(backend: Any, sock: socket.socket, slots: int, report: int) -> None:
    """In a child: leave ``slots`` free fd numbers, receive 8 fds, report."""
    limit = leave_free_fds(slots)
    before = fdtable.open_below(limit)
    got = receive_truncated(backend, lambda: backend.recvfds(sock, 16, 0, 8))
    new = sorted(fdtable.open_below(limit) - before)
    result = {"reported": got.reported, "returned": sorted(got.fds or []), "new": new}
    os.write(report, json.dumps(result).encode())


@pytest.mark.clause("FAULT-5")
def test_receiver_at_its_fd_limit(backend, pair, closer):
    a, b = pair
    sent = distinct_fds(8)
    closer.fds(*sent)
    backend.sendfds(a, b"limit", 0, sent)
    report_read, report_write = os.pipe()
    closer.fds(report_read)
    pid = fork_call(lambda: _child_at_fd_limit(backend, b, 2, report_write))
    os.close(report_write)
    ready, _, _ = select.select([report_read], [], [], IO_TIMEOUT * 2)
    data = os.read(report_read, 65536) if ready else b""
    assert reap(pid) == 0
    assert data, "the child reported nothing"
    result = json.loads(data)
    assert result["new"] == result["returned"], "fds installed in the child and not returned"
    assert len(result["returned"]) <= 2
    assert result["reported"], "fds dropped at RLIMIT_NOFILE and truncation not reported"


@pytest.mark.clause("FAULT-6")
@pytest.mark.requires(Feature.PAYLOAD)
def test_partial_send_delivers_fds_once_and_the_rest_follows(backend, pair, closer):
    a, b = pair
    payload = os.urandom(4 << 20)
    sent = distinct_fds(2)
    closer.fds(*sent)
    a.setblocking(False)
    count = backend.sendfds(a, payload, 0, sent)
    assert 0 < count < len(payload), "a 4 MiB non-blocking send went out whole"
    result: dict[str, Any] = {}

    def read_everything() -> None:
        result["data"], result["fds"] = _drain(b, len(payload))

    reader = threading.Thread(target=read_everything)
    reader.start()
    try:
        a.setblocking(True)
        a.sendall(payload[count:])  # how a caller sends the rest: plain bytes
    finally:
        reader.join(IO_TIMEOUT * 4)
    assert not reader.is_alive()
    closer.fds(*result["fds"])
    assert result["data"] == payload
    assert [identity(fd) for fd in result["fds"]] == [identity(fd) for fd in sent]
