"""FAULT: signals, non-blocking sockets, dying peers and fd limits."""

from __future__ import annotations

import errno
import json
import os
import select
import signal
import socket
import threading
from typing import Any

import pytest

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness import blocked, fdtable
from fdsend_conformance.harness.checks import receive_truncated
from fdsend_conformance.harness.processes import fork_call, leave_free_fds, reap
from fdsend_conformance.harness.sockets import (
    IO_TIMEOUT,
    distinct_fds,
    drain_stream,
    fill_send_buffer,
    identity,
    pending,
    read_to_eof,
)
from fdsend_conformance.harness.when_blocked import signal_when_blocked, wake_when_blocked


class Interrupted(Exception):
    """Raised by a signal handler to abandon a blocking call."""


@pytest.mark.clause("FAULT-1")
def test_signal_during_receive_is_retried(backend, pair, closer):
    a, b = pair
    sent = distinct_fds(1)
    closer.fds(*sent)

    def send() -> None:
        backend.sendfds(a, b"late", 0, sent)

    with signal_when_blocked("recvmsg", b, send) as interruption:
        msg, fds = backend.recvfds(b, 16, 0, 1)  # blocks until the handler sends
    closer.fds(*fds)
    interruption.check()
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
    raised = pytest.raises(Interrupted)
    with signal_when_blocked("recvmsg", b, send_then_raise) as interruption, raised:
        backend.recvfds(b, 16, 0, 1)
    interruption.check()
    assert fdtable.open_fds() == before, "the interrupted receive installed fds and lost them"
    _, fds = backend.recvfds(b, 16, 0, 1)
    closer.fds(*fds)
    assert [identity(fd) for fd in fds] == [identity(sent[0])]


@pytest.mark.clause("FAULT-2")
@pytest.mark.requires(Feature.PAYLOAD)
def test_signal_during_a_blocked_send_is_retried(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    a.setblocking(True)
    sent = distinct_fds(1)
    closer.fds(*sent)
    drained: list[int] = []

    def make_room() -> None:
        drained.append(len(b.recv(1 << 16)))

    with signal_when_blocked("sendmsg", a, make_room) as interruption:
        assert backend.sendfds(a, b"after", 0, sent) == len(b"after")  # the send goes on
    interruption.check()
    data, fds = drain_stream(b, filler - drained[0] + len(b"after"))
    closer.fds(*fds)
    assert data.endswith(b"after")
    assert [identity(fd) for fd in fds] == [identity(sent[0])], "fds lost or duplicated"


@pytest.mark.clause("FAULT-2")
def test_signal_handler_exception_during_a_blocked_send_sends_nothing(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    a.setblocking(True)
    sent = distinct_fds(1)
    closer.fds(*sent)

    def interrupt() -> None:
        raise Interrupted

    raised = pytest.raises(Interrupted)
    with signal_when_blocked("sendmsg", a, interrupt) as interruption, raised:
        backend.sendfds(a, b"never", 0, sent)
    interruption.check()
    _, fds = drain_stream(b, filler)
    closer.fds(*fds)
    assert fds == [], "an abandoned send still delivered fds"
    assert not pending(b)
    os.fstat(sent[0])  # still the caller's


@pytest.mark.clause("FAULT-3")
@pytest.mark.requires(Feature.BLOCKING_MODE)
def test_non_blocking_empty_receive_consumes_nothing(backend, pair):
    _, b = pair
    b.setblocking(False)
    before = fdtable.open_fds()
    with pytest.raises(BlockingIOError):
        backend.recvfds(b, 16, 0, 4)
    assert fdtable.open_fds() == before


@pytest.mark.clause("FAULT-3")
@pytest.mark.requires(Feature.BLOCKING_MODE)
def test_non_blocking_full_send_queues_nothing(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    sent = distinct_fds(2)
    closer.fds(*sent)
    with pytest.raises(BlockingIOError):
        backend.sendfds(a, b"full", 0, sent)
    for fd in sent:
        os.fstat(fd)  # the caller's fds are still open
    _, fds = drain_stream(b, filler)
    closer.fds(*fds)
    assert fds == []
    assert not pending(b), "the refused send queued something"


def _assert_eof(backend: Any, sock: socket.socket) -> None:
    """The next receive on ``sock`` reports end-of-file, the way FAULT-4 allows."""
    try:
        msg, fds = backend.recvfds(sock, 2, 0, 1)
    except EOFError:
        return  # EOF reported by raising it: fine
    assert (msg, list(fds)) == (b"", []), "EOF must read as an empty message without fds"


def _wait_for_parent(hold: int) -> None:
    """In a child: wait to be killed, or for the parent to go (EOF on ``hold``).

    Bounded, so a child whose parent hangs without dying still ends.
    """
    select.select([hold], [], [], IO_TIMEOUT * 4)


@pytest.mark.clause("FAULT-4")
def test_killed_sender_leaves_what_it_sent_then_eof(backend, pair, closer):
    a, b = pair
    files = distinct_fds(4)
    closer.fds(*files)
    done_read, done_write = os.pipe()
    hold_read, hold_write = os.pipe()  # the parent never writes: it kills
    closer.fds(done_read, hold_write)

    def child() -> None:
        b.close()
        os.close(done_read)
        os.close(hold_write)
        for index, fd in enumerate(files):
            backend.sendfds(a, b"m%d" % index, 0, [fd])
        os.write(done_write, b"!")  # everything is queued
        _wait_for_parent(hold_read)

    pid = fork_call(child)
    os.close(done_write)
    os.close(hold_read)
    a.close()
    try:
        received = [backend.recvfds(b, 2, 0, 1) for _ in range(2)]
        assert select.select([done_read], [], [], IO_TIMEOUT)[0], "the sender never finished"
    finally:
        os.kill(pid, signal.SIGKILL)
        status = reap(pid)
    assert status == -signal.SIGKILL, "the sender ended before it was killed"
    received += [backend.recvfds(b, 2, 0, 1) for _ in range(2)]
    for _, fds in received:
        closer.fds(*fds)
    assert [[identity(fd) for fd in fds] for _, fds in received] == [[identity(fd)] for fd in files]
    if backend.supports(Feature.PAYLOAD):
        assert [msg for msg, _ in received] == [b"m0", b"m1", b"m2", b"m3"]
    _assert_eof(backend, b)


def _socket_link(sock: socket.socket) -> str:
    """What /proc/<pid>/fd/N reads for an fd of ``sock``, in any process."""
    return f"socket:[{os.fstat(sock.fileno()).st_ino}]"


def _blocked_on(pid: int, reading: blocked.Reading, link: str, transfer: frozenset[int]) -> bool:
    """Whether child ``pid``'s blocked ``reading`` is a transfer on the socket ``link``.

    A wait of an event loop names no socket: it is taken as it is.
    """
    if reading.syscall not in transfer:
        return True
    try:
        return os.readlink(f"/proc/{pid}/fd/{reading.args[0]}") == link
    except OSError:
        return False


@pytest.mark.clause("FAULT-4")
@pytest.mark.parametrize("receiver", ["drains", "closes"])
def test_sender_killed_inside_a_blocked_send(backend, pair, closer, receiver):
    """The sender dies in sendfds, waiting for room behind queued messages.

    Queued: two messages with a file each, one carrying the write end of a
    pipe, then filler bytes up to a full buffer. The blocked send carries
    the same write end. After the kill the write end lives on only in the
    queue: the receiver gets every queued message with its fds, then EOF,
    and once it has drained the socket or closed it, nothing holds the
    write end (its pipe reads EOF).
    """
    a, b = pair
    files = distinct_fds(2)
    closer.fds(*files)
    pipe_read, pipe_write = os.pipe()
    ready_read, ready_write = os.pipe()
    closer.fds(pipe_read, ready_read)
    try:
        transfer = blocked.syscall_numbers("sendmsg")
        expected = transfer | blocked.syscall_numbers(*blocked.EVENT_LOOP_WAITS)
    except blocked.Unavailable as exc:
        pytest.skip(f"cannot tell when the sender blocks in the kernel: {exc}")
    link = _socket_link(a)

    def child() -> None:
        b.close()
        os.close(pipe_read)
        os.close(ready_read)
        for index, fd in enumerate(files):
            backend.sendfds(a, b"m%d" % index, 0, [fd])
        backend.sendfds(a, b"mw", 0, [pipe_write])
        fill_send_buffer(a)
        a.setblocking(True)
        os.write(ready_write, b"!")  # next: the send that blocks
        backend.sendfds(a, b"mx", 0, [pipe_write])  # bounded by SO_SNDTIMEO

    pid = fork_call(child)
    os.close(pipe_write)
    os.close(ready_write)
    a.close()
    try:
        assert select.select([ready_read], [], [], IO_TIMEOUT)[0], "the sender never filled up"
        try:
            blocked.read(pid, pid)
        except blocked.Unavailable as exc:
            pytest.skip(f"cannot tell when the sender blocks in the kernel: {exc}")
        reading = blocked.wait_until_blocked(pid, expected, IO_TIMEOUT, pid=pid)
        assert reading is not None, "the sender never blocked in sendfds on a full buffer"
        assert _blocked_on(pid, reading, link, transfer), "the sender blocked on another fd"
    finally:
        os.kill(pid, signal.SIGKILL)
        status = reap(pid)
    assert status == -signal.SIGKILL, "the sender ended before it was killed"
    assert not select.select([pipe_read], [], [], 0)[0], "a queued write end was let go"
    received = [backend.recvfds(b, 2, 0, 1) for _ in files]
    for _, fds in received:
        closer.fds(*fds)
    assert [[identity(fd) for fd in fds] for _, fds in received] == [[identity(fd)] for fd in files]
    if backend.supports(Feature.PAYLOAD):
        assert [msg for msg, _ in received] == [b"m0", b"m1"]
    if receiver == "drains":
        msg, fds = backend.recvfds(b, 2, 0, 1)
        closer.fds(*fds)
        assert [identity(fd) for fd in fds] == [identity(pipe_read)], "the write end was lost"
        if backend.supports(Feature.PAYLOAD):
            assert msg == b"mw"
        _, rest = read_to_eof(b)
        closer.fds(*rest)
        assert rest == [], "the killed send delivered fds"
        _assert_eof(backend, b)
        for fd in fds:
            closer.close(fd)
    else:
        b.close()
    assert select.select([pipe_read], [], [], IO_TIMEOUT)[0], "the write end was never released"
    assert os.read(pipe_read, 1) == b"", "the pipe has a writer left"


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
        result["data"], result["fds"] = drain_stream(b, len(payload))

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


def _blocking(sock: socket.socket) -> bool:
    """Whether ``sock`` is in blocking mode, for Python and for the kernel."""
    return sock.gettimeout() is None and os.get_blocking(sock.fileno())


@pytest.mark.clause("FAULT-7")
@pytest.mark.requires(Feature.FLAGS)
def test_dontwait_receive_on_an_empty_blocking_socket(backend, pair, closer):
    a, b = pair
    assert _blocking(b)
    before = fdtable.open_fds()
    outcome: list[Any] = []

    def wake() -> None:
        a.send(b"!")  # a plain message: the blocked receive returns it

    with wake_when_blocked("recvmsg", b, wake) as wakeup:
        try:
            outcome.append(backend.recvfds(b, 16, socket.MSG_DONTWAIT, 4))
        except BlockingIOError as exc:
            outcome.append(exc)
    if not isinstance(outcome[0], BaseException):
        closer.fds(*outcome[0][1])
    wakeup.check()
    assert isinstance(outcome[0], BlockingIOError), f"returned {outcome[0]!r}"
    assert outcome[0].errno == errno.EAGAIN
    assert fdtable.open_fds() == before, "the refused receive installed fds"
    assert _blocking(b), "the socket was left non-blocking"


def _file_of(fd: int) -> tuple[int, int] | None:
    """The file ``fd`` refers to (see :func:`identity`), or None if it is closed."""
    try:
        return identity(fd)
    except OSError:
        return None


@pytest.mark.clause("FAULT-7")
@pytest.mark.requires(Feature.FLAGS)
def test_dontwait_send_on_a_full_blocking_socket(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    a.setblocking(True)
    sent = distinct_fds(2)
    closer.fds(*sent)
    files = [_file_of(fd) for fd in sent]
    outcome: list[Any] = []

    def wake() -> None:
        drain_stream(b, filler)  # room at last: the blocked send goes through

    with wake_when_blocked("sendmsg", a, wake) as wakeup:
        try:
            outcome.append(backend.sendfds(a, b"full", socket.MSG_DONTWAIT, sent))
        except BlockingIOError as exc:
            outcome.append(exc)
    wakeup.check()
    assert isinstance(outcome[0], BlockingIOError), f"returned {outcome[0]!r}"
    assert outcome[0].errno == errno.EAGAIN
    assert [_file_of(fd) for fd in sent] == files, "the caller's fds were closed or replaced"
    assert _blocking(a), "the socket was left non-blocking"
    _, fds = drain_stream(b, filler)
    closer.fds(*fds)
    assert fds == [], "the refused send delivered fds"
    assert not pending(b), "the refused send queued something"
