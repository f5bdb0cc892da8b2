"""FAULT: signals, non-blocking sockets, dying peers and fd limits."""

from __future__ import annotations

import errno
import os
import select
import signal
import socket
import threading
from collections.abc import Callable
from typing import Any

import pytest

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import (
    SEVERAL_FDS,
    check_arrived,
    check_payload,
    per_call,
    receive_truncated,
)
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.processes import call_in_child, fork_to_kill, leave_free_fds
from fdsend_conformance.harness.sockets import fill_send_buffer, pending, recv_stream
from fdsend_conformance.harness.timeouts import IO_TIMEOUT
from fdsend_conformance.harness.when_blocked import (
    child_blocked,
    must_not_block,
    signal_when_blocked,
)


class Interrupted(Exception):
    """Raised by a signal handler to abandon a blocking call."""


def _handler_sending(
    backend: Any,
    sock: socket.socket,
    msg: bytes,
    fds: list[int],
    then: type[Exception] | None = None,
) -> Callable[[], None]:
    """A signal handler for FAULT-1: send ``msg`` with ``fds`` on ``sock``, then raise ``then``."""

    def handler() -> None:
        backend.sendfds(sock, msg, 0, fds)
        if then is not None:
            raise then

    return handler


@pytest.mark.clause("FAULT-1")
@pytest.mark.requires(Feature.PYTHON_API)
def test_signal_during_receive_is_retried(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(1)
    handler = _handler_sending(backend, a, b"late", sent)
    with signal_when_blocked("recvmsg", b, handler) as interruption:
        received = backend.recvfds(b, 16, 0, 1)  # blocks until the handler sends
    check_arrived(backend, closer, received, b"late", sent)
    interruption.check()


@pytest.mark.clause("FAULT-1")
@pytest.mark.requires(Feature.PYTHON_API)
def test_signal_handler_exception_leaves_the_message_queued(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(1)
    handler = _handler_sending(backend, a, b"kept", sent, then=Interrupted)
    before = fdtable.open_fds()
    with signal_when_blocked("recvmsg", b, handler) as interruption, pytest.raises(Interrupted):
        backend.recvfds(b, 16, 0, 1)
    interruption.check()
    assert fdtable.open_fds() == before, "the interrupted receive installed fds and lost them"
    check_arrived(backend, closer, backend.recvfds(b, 16, 0, 1), b"kept", sent)


@pytest.mark.clause("FAULT-2")
@pytest.mark.requires(Feature.PAYLOAD, Feature.PYTHON_API)
def test_signal_during_a_blocked_send_is_retried(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    sent = closer.distinct_fds(1)
    drained: list[int] = []

    def make_room() -> None:
        drained.append(len(b.recv(1 << 16)))

    with signal_when_blocked("sendmsg", a, make_room) as interruption:
        assert backend.sendfds(a, b"after", 0, sent) == len(b"after")  # the send goes on
    interruption.check()
    data, fds = recv_stream(b, filler - drained[0] + len(b"after"))
    closer.fds(*fds)
    assert data.endswith(b"after")
    assert identities(fds) == identities(sent), "fds lost or duplicated"


@pytest.mark.clause("FAULT-2")
@pytest.mark.requires(Feature.PYTHON_API)
def test_signal_handler_exception_during_a_blocked_send_sends_nothing(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    sent = closer.distinct_fds(1)

    def interrupt() -> None:
        raise Interrupted

    raised = pytest.raises(Interrupted)
    with signal_when_blocked("sendmsg", a, interrupt) as interruption, raised:
        backend.sendfds(a, b"never", 0, sent)
    interruption.check()
    _, fds = recv_stream(b, filler)
    closer.fds(*fds)
    assert fds == [], "an abandoned send still delivered fds"
    assert not pending(b)
    os.fstat(sent[0])  # still the caller's


def _assert_eagain(outcome: object) -> None:
    assert isinstance(outcome, BlockingIOError), f"returned {outcome!r}"
    assert outcome.errno == errno.EAGAIN


@pytest.mark.clause("FAULT-3")
@pytest.mark.requires(Feature.BLOCKING_MODE)
def test_non_blocking_empty_receive_consumes_nothing(backend, pair):
    a, b = pair
    b.setblocking(False)
    before = fdtable.open_fds()
    outcome = must_not_block(
        "recvmsg",
        b,
        lambda: backend.recvfds(b, 16, 0, 4),
        wake=lambda: a.send(b"!"),
        where=backend.call_thread(),
    )
    _assert_eagain(outcome)
    assert fdtable.open_fds() == before


@pytest.mark.clause("FAULT-3")
@pytest.mark.requires(Feature.BLOCKING_MODE)
def test_non_blocking_full_send_queues_nothing(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    a.setblocking(False)
    sent = closer.distinct_fds(per_call(backend, 2))
    outcome = must_not_block(
        "sendmsg",
        a,
        lambda: backend.sendfds(a, b"full", 0, sent),
        wake=lambda: recv_stream(b, filler),
        where=backend.call_thread(),
    )
    _assert_eagain(outcome)
    for fd in sent:
        os.fstat(fd)  # the caller's fds are still open
    _, fds = recv_stream(b, filler)
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


def _receive_one_each(backend: Any, sock: socket.socket, count: int) -> list[tuple[bytes, Any]]:
    return [backend.recvfds(sock, 2, 0, 1) for _ in range(count)]


@pytest.mark.clause("FAULT-4")
def test_killed_sender_leaves_what_it_sent_then_eof(backend, pair, closer):
    a, b = pair
    files = closer.distinct_fds(4)

    def send_all(ready: Any) -> None:
        b.close()
        for index, fd in enumerate(files):
            backend.sendfds(a, b"m%d" % index, 0, [fd])
        ready()  # everything is queued

    with fork_to_kill(send_all) as sender:
        a.close()
        received = _receive_one_each(backend, b, 2)
        assert sender.wait_ready(), "the sender never finished"
    assert sender.exit_code == -signal.SIGKILL, "the sender ended before it was killed"
    received += _receive_one_each(backend, b, 2)
    for _, fds in received:
        closer.fds(*fds)
    assert [identities(fds) for _, fds in received] == [identities([fd]) for fd in files]
    check_payload(backend, [msg for msg, _ in received], [b"m0", b"m1", b"m2", b"m3"])
    _assert_eof(backend, b)


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
    files = closer.distinct_fds(2)
    pipe_read, pipe_write = os.pipe()
    closer.fds(pipe_read)

    def send_until_blocked(ready: Any) -> None:
        b.close()
        os.close(pipe_read)
        for index, fd in enumerate(files):
            backend.sendfds(a, b"m%d" % index, 0, [fd])
        backend.sendfds(a, b"mw", 0, [pipe_write])
        fill_send_buffer(a)
        ready()  # next: the send that blocks
        backend.sendfds(a, b"mx", 0, [pipe_write])  # bounded by SO_SNDTIMEO

    with fork_to_kill(send_until_blocked) as sender:
        os.close(pipe_write)
        assert sender.wait_ready(), "the sender never filled up"
        child_blocked(sender.pid, "sendmsg", a).check_blocked()
        a.close()
    assert sender.exit_code == -signal.SIGKILL, "the sender ended before it was killed"
    assert not select.select([pipe_read], [], [], 0)[0], "a queued write end was let go"
    received = _receive_one_each(backend, b, len(files))
    for _, fds in received:
        closer.fds(*fds)
    assert [identities(fds) for _, fds in received] == [identities([fd]) for fd in files]
    check_payload(backend, [msg for msg, _ in received], [b"m0", b"m1"])
    if receiver == "drains":
        with_write_end = backend.recvfds(b, 2, 0, 1)
        check_arrived(backend, closer, with_write_end, b"mw", [pipe_read], "the write end was lost")
        _, rest = recv_stream(b)
        closer.fds(*rest)
        assert rest == [], "the killed send delivered fds"
        _assert_eof(backend, b)
        for fd in with_write_end[1]:  # (msg, fds)
            closer.close(fd)
    else:
        b.close()
    assert select.select([pipe_read], [], [], IO_TIMEOUT)[0], "the write end was never released"
    assert os.read(pipe_read, 1) == b"", "the pipe has a writer left"


def _receive_at_fd_limit(backend: Any, sock: socket.socket, slots: int) -> dict[str, Any]:
    """In a child: leave ``slots`` free fd numbers, receive 8 fds, say what came."""
    with backend.session():  # a driver's pipes are opened before the limit
        limit = leave_free_fds(slots)
        before = fdtable.open_below(limit)
        got = receive_truncated(backend, lambda: backend.recvfds(sock, 16, 0, 8))
        new = sorted(fdtable.open_below(limit) - before)
    return {"reported": got.reported, "returned": sorted(got.fds or []), "new": new}


@pytest.mark.clause("FAULT-5")
@SEVERAL_FDS  # more than fit
def test_receiver_at_its_fd_limit(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(8)
    backend.sendfds(a, b"limit", 0, sent)
    result = call_in_child(lambda: _receive_at_fd_limit(backend, b, 2))
    assert result["new"] == result["returned"], "fds installed in the child and not returned"
    assert len(result["returned"]) <= 2
    assert result["reported"], "fds dropped at RLIMIT_NOFILE and truncation not reported"


@pytest.mark.clause("FAULT-6")
@pytest.mark.requires(Feature.PAYLOAD)
def test_partial_send_delivers_fds_once_and_the_rest_follows(backend, pair, closer):
    a, b = pair
    payload = os.urandom(4 << 20)
    sent = closer.distinct_fds(per_call(backend, 2))
    a.setblocking(False)
    count = must_not_block(
        "sendmsg",
        a,
        lambda: backend.sendfds(a, payload, 0, sent),
        wake=lambda: None,
        where=backend.call_thread(),
    )
    assert isinstance(count, int), f"the send did not return a count: {count!r}"
    assert 0 < count < len(payload), "a 4 MiB non-blocking send went out whole"
    result: dict[str, Any] = {}

    def read_everything() -> None:
        result["data"], result["fds"] = recv_stream(b, len(payload))

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
    assert identities(result["fds"]) == identities(sent)


def _blocking(sock: socket.socket) -> bool:
    """Whether ``sock`` is in blocking mode, for Python and for the kernel."""
    return sock.gettimeout() is None and os.get_blocking(sock.fileno())


@pytest.mark.clause("FAULT-7")
@pytest.mark.requires(Feature.FLAGS)
def test_dontwait_receive_on_an_empty_blocking_socket(backend, pair, closer):
    a, b = pair
    assert _blocking(b)
    before = fdtable.open_fds()
    outcome = must_not_block(
        "recvmsg",
        b,
        lambda: backend.recvfds(b, 16, socket.MSG_DONTWAIT, 4),
        wake=lambda: a.send(b"!"),  # a plain message: the blocked receive returns it
        where=backend.call_thread(),
    )
    _assert_eagain(outcome)
    assert fdtable.open_fds() == before, "the refused receive installed fds"
    assert _blocking(b), "the socket was left non-blocking"


@pytest.mark.clause("FAULT-7")
@pytest.mark.requires(Feature.FLAGS)
def test_dontwait_send_on_a_full_blocking_socket(backend, pair, closer):
    a, b = pair
    filler = fill_send_buffer(a)
    sent = closer.distinct_fds(per_call(backend, 2))
    files = identities(sent)
    outcome = must_not_block(
        "sendmsg",
        a,
        lambda: backend.sendfds(a, b"full", socket.MSG_DONTWAIT, sent),
        wake=lambda: recv_stream(b, filler),  # room at last: the blocked send goes through
        where=backend.call_thread(),
    )
    _assert_eagain(outcome)
    assert identities(sent) == files, "the caller's fds were closed or replaced"
    assert _blocking(a), "the socket was left non-blocking"
    _, fds = recv_stream(b, filler)
    closer.fds(*fds)
    assert fds == [], "the refused send delivered fds"
    assert not pending(b), "the refused send queued something"
