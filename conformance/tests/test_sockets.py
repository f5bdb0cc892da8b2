"""The harness's plain reads of a stream, and its watcher of calls that must not block."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from fdsend_conformance.harness.fds import distinct_fds, identities
from fdsend_conformance.harness.sockets import fill_send_buffer, recv_stream, socket_pair
from fdsend_conformance.harness.when_blocked import must_not_block


@pytest.fixture
def pair():
    a, b = socket_pair()
    yield a, b
    a.close()
    b.close()


def test_recv_stream_reads_exactly_the_size_asked_with_the_fds(pair):
    a, b = pair
    sent = distinct_fds(2)
    a.sendall(b"abcdef")
    a.sendmsg(
        [b"ghij"],
        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, b"".join(fd.to_bytes(4, "little") for fd in sent))],
    )
    data, fds = recv_stream(b, 8)
    try:
        assert data == b"abcdefgh"
        assert identities(fds) == identities(sent)
        assert recv_stream(b, 2) == (b"ij", [])
    finally:
        for fd in sent + fds:
            os.close(fd)


def test_recv_stream_to_eof_and_past_it(pair):
    a, b = pair
    a.sendall(b"tail")
    a.shutdown(socket.SHUT_WR)
    assert recv_stream(b) == (b"tail", [])
    with pytest.raises(EOFError):
        recv_stream(b, 1)


def test_recv_stream_waits_on_a_non_blocking_socket(pair):
    a, b = pair
    b.setblocking(False)
    with pytest.raises(TimeoutError):
        recv_stream(b, 1, wait=0.05)
    a.sendall(b"x")
    assert recv_stream(b, 1, wait=1) == (b"x", [])


def test_must_not_block_passes_a_call_that_fails_at_once(pair):
    a, b = pair
    b.setblocking(False)
    outcome = must_not_block("recvmsg", b, lambda: b.recvmsg(1), wake=lambda: a.send(b"!"))
    assert isinstance(outcome, BlockingIOError)
    assert outcome.errno == errno.EAGAIN


def test_must_not_block_fails_a_call_that_sleeps_first(pair):
    a, b = pair
    with pytest.raises(pytest.fail.Exception, match="slept in the kernel"):
        must_not_block("recvmsg", b, lambda: b.recvmsg(1), wake=lambda: a.send(b"!"))


def test_must_not_block_fails_a_send_that_waits_for_room(pair):
    a, b = pair
    filler = fill_send_buffer(a)
    with pytest.raises(pytest.fail.Exception, match="sendmsg on the test's socket"):
        must_not_block(
            "sendmsg", a, lambda: a.sendmsg([b"more"]), wake=lambda: recv_stream(b, filler)
        )
