"""ERR: failures raise the right exception with the kernel's errno, and cost nothing."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness.checks import SEVERAL_FDS, per_call
from fdsend_conformance.harness.fds import distinct_fds
from fdsend_conformance.harness.sockets import pending
from fdsend_conformance.harness.when_blocked import must_not_block

NON_SOCKETS = ["file", "pipe-read", "devnull"]


@pytest.mark.clause("ERR-1", "ERR-8")
@pytest.mark.parametrize("kind", NON_SOCKETS)
def test_send_on_a_non_socket_is_enotsock(backend, new_fd, closer, kind):
    target = new_fd(kind)
    sent = closer.distinct_fds(1)
    with pytest.raises(OSError) as raised:
        backend.sendfds(target, b"x", 0, sent)
    assert raised.value.errno == errno.ENOTSOCK


@pytest.mark.clause("ERR-1", "ERR-8")
@pytest.mark.parametrize("kind", NON_SOCKETS)
def test_receive_on_a_non_socket_is_enotsock(backend, new_fd, kind):
    target = new_fd(kind)
    with pytest.raises(OSError) as raised:
        backend.recvfds(target, 16, 0, 4)
    assert raised.value.errno == errno.ENOTSOCK


def _closed_fd() -> int:
    """A descriptor number that is not open right now (until the next open)."""
    fd = distinct_fds(1)[0]
    os.close(fd)
    return fd


@pytest.mark.clause("ERR-2", "ERR-8")
@pytest.mark.parametrize("call", ["send", "receive"])
def test_closed_socket_is_ebadf(backend, closer, call):
    sent = closer.distinct_fds(1)
    closed = _closed_fd()  # after every other open: its number stays free
    calls = {
        "send": lambda: backend.sendfds(closed, b"x", 0, sent),
        "receive": lambda: backend.recvfds(closed, 16, 0, 4),
    }
    with pytest.raises(OSError) as raised:
        calls[call]()
    assert raised.value.errno == errno.EBADF


@pytest.mark.clause("ERR-2", "ERR-8")
@SEVERAL_FDS
def test_closed_fd_inside_fds_is_ebadf(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(2)
    with pytest.raises(OSError) as raised:
        backend.sendfds(a, b"x", 0, [sent[0], _closed_fd(), sent[1]])
    assert raised.value.errno == errno.EBADF
    assert not pending(b), "a message went out despite the error"


@pytest.mark.clause("ERR-2", "ERR-8")
@SEVERAL_FDS
def test_highest_fd_number_inside_fds_is_ebadf(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(1)
    never_open = 2**31 - 1  # a C int, far above any RLIMIT_NOFILE: EBADF, not OverflowError
    with pytest.raises(OSError) as raised:
        backend.sendfds(a, b"x", 0, [sent[0], never_open])
    assert raised.value.errno == errno.EBADF
    assert not pending(b), "a message went out despite the error"


@pytest.mark.clause("ERR-3", "ERR-8")
@SEVERAL_FDS
@pytest.mark.parametrize("container", ["list", "generator"])
def test_more_than_scm_max_fd_is_einval(backend, pair, closer, container):
    a, b = pair
    sent = closer.distinct_fds(254)
    fds = sent if container == "list" else (fd for fd in sent)  # all 254 read, not 253
    with pytest.raises(OSError) as raised:
        backend.sendfds(a, b"x", 0, fds)
    assert raised.value.errno == errno.EINVAL
    assert not pending(b), "a message went out despite the error"


@pytest.mark.clause("ERR-4", "ERR-8")
def test_send_to_a_closed_peer_is_epipe(backend, pair, closer):
    a, b = pair
    b.close()
    sent = closer.distinct_fds(1)
    with pytest.raises(OSError) as raised:
        backend.sendfds(a, b"x", 0, sent)
    assert raised.value.errno in (errno.EPIPE, errno.ECONNRESET)


@pytest.mark.clause("ERR-5", "ERR-8")
@pytest.mark.requires(Feature.BLOCKING_MODE)
def test_empty_non_blocking_socket_is_eagain(backend, pair):
    a, b = pair
    b.setblocking(False)
    # Raising BlockingIOError after sleeping until the kernel timeout is not it.
    outcome = must_not_block(
        "recvmsg",
        b,
        lambda: backend.recvfds(b, 16, 0, 4),
        wake=lambda: a.send(b"!"),
        where=backend.call_thread(),
    )
    assert isinstance(outcome, BlockingIOError), f"returned {outcome!r}"
    assert outcome.errno in (errno.EAGAIN, errno.EWOULDBLOCK)


@pytest.mark.clause("ERR-6")
@pytest.mark.requires(Feature.BLOCKING_MODE, Feature.PYTHON_API)
def test_socket_timeout_applies(backend, pair):
    _, b = pair
    b.settimeout(0.05)
    with pytest.raises(socket.timeout):
        backend.recvfds(b, 16, 0, 4)


@pytest.mark.clause("ERR-7", "ERR-8")
@pytest.mark.requires(Feature.PAYLOAD, Feature.PYTHON_API)
def test_negative_length_is_valueerror(backend, pair, closer):
    a, b = pair
    backend.sendfds(a, b"kept", 0, closer.distinct_fds(per_call(backend, 0)))
    with pytest.raises(ValueError):
        backend.recvfds(b, -1, 0, 4)
    assert pending(b), "the refused receive consumed the message"


@pytest.mark.clause("ERR-7", "ERR-8")
@pytest.mark.requires(Feature.PYTHON_API)
@SEVERAL_FDS  # an API of one fd per call takes no fd count
def test_negative_fd_count_is_valueerror(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(1)
    backend.sendfds(a, b"kept", 0, sent)
    with pytest.raises(ValueError):
        backend.recvfds(b, 16, 0, -1)
    assert pending(b), "the refused receive consumed the message"
    _, fds = backend.recvfds(b, 16, 0, 1)
    closer.fds(*fds)
