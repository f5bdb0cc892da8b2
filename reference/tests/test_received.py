"""The Received result, strict mode and close-on-exec: reference-only features."""

from __future__ import annotations

import fcntl
import os
import socket
from typing import Any

import pytest

import fdsend
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.fds import identities, identity
from fdsend_conformance.harness.processes import call_in_child, leave_free_fds
from fdsend_conformance.harness.sockets import socket_pair


def test_received_unpacks_like_fdsend_0_3_and_has_attributes(pair, pipe, closer):
    a, b = pair
    fdsend.sendfds(a, b"hello", fds=[pipe[0]])
    result = fdsend.recvfds(b, 16)
    msg, fds = result
    closer.fds(*fds)
    assert isinstance(result, tuple)
    assert len(result) == 2
    assert (result.msg, result.fds) == (msg, fds) == (b"hello", fds)
    assert isinstance(fds, tuple)
    assert all(isinstance(fd, int) for fd in fds)
    assert identity(fds[0]) == identity(pipe[0])
    assert result.truncated is False
    assert result.msg_truncated is False
    assert isinstance(result.flags, int)
    assert "Received(msg=b'hello'" in repr(result)


def test_truncated_reports_cut_fds(pair, closer):
    a, b = pair
    sent = closer.distinct_fds(5)
    fdsend.sendfds(a, b"t", fds=sent)
    result = fdsend.recvfds(b, 16, numfds=2)
    assert result.truncated
    assert result.flags & socket.MSG_CTRUNC
    assert identities(result.fds) == identities(sent[:2])
    closer.fds(*result.fds)


@pytest.mark.parametrize("kind", [socket.SOCK_SEQPACKET, socket.SOCK_DGRAM])
def test_msg_truncated_reports_a_cut_payload(kind):
    a, b = socket_pair(kind)
    with a, b:
        fdsend.sendfds(a, b"0123456789")
        result = fdsend.recvfds(b, 3)
        assert result.msg == b"012"
        assert result.msg_truncated
        assert not result.truncated


def test_strict_raises_and_closes_every_fd_it_received(pair, closer):
    a, b = pair
    sent = closer.distinct_fds(6)
    fdsend.sendfds(a, b"strict", fds=sent)
    before = fdtable.open_fds()
    with pytest.raises(fdsend.TruncatedError) as raised:
        fdsend.recvfds(b, 16, numfds=2, strict=True)
    assert isinstance(raised.value, OSError)
    assert raised.value.msg == b"strict"
    assert raised.value.flags & socket.MSG_CTRUNC
    assert fdtable.open_fds() == before, "strict mode kept fds after raising"


def test_strict_without_truncation_returns_normally(pair, pipe):
    a, b = pair
    fdsend.sendfds(a, b"ok", fds=[pipe[1]])
    msg, fds = fdsend.recvfds(b, 16, numfds=1, strict=True)
    assert msg == b"ok"
    assert len(fds) == 1
    os.close(fds[0])


@pytest.mark.parametrize("cloexec", [True, False])
def test_cloexec_choice(pair, pipe, closer, cloexec):
    a, b = pair
    fdsend.sendfds(a, b"c", fds=[pipe[0]])
    _, fds = fdsend.recvfds(b, 16, cloexec=cloexec)
    closer.fds(*fds)
    flag = bool(fcntl.fcntl(fds[0], fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    assert flag is cloexec
    assert os.get_inheritable(fds[0]) is (not cloexec)


def test_numfds_above_scm_max_fd_is_clamped(pair, closer):
    a, b = pair
    sent = closer.distinct_fds(fdsend.SCM_MAX_FD)
    fdsend.sendfds(a, b"many", fds=sent)
    result = fdsend.recvfds(b, 16, numfds=10**9)
    assert len(result.fds) == fdsend.SCM_MAX_FD
    assert not result.truncated
    closer.fds(*result.fds)


def test_room_for_credentials_never_returns_more_than_numfds(pair, closer):
    a, b = pair
    sent = closer.distinct_fds(8)
    fdsend.sendfds(a, b"x", fds=sent)
    before = fdtable.open_fds()
    result = fdsend.recvfds(b, 16, numfds=1)
    assert identities(result.fds) == [identity(sent[0])]
    assert result.truncated
    assert fdtable.leaked_since(before) == list(result.fds)
    os.close(result.fds[0])


def test_numfds_zero_returns_payload_and_closes_fds(pair, pipe):
    a, b = pair
    fdsend.sendfds(a, b"zero", fds=[pipe[0], pipe[1]])
    before = fdtable.open_fds()
    result = fdsend.recvfds(b, 16, numfds=0)
    assert tuple(result) == (b"zero", ())
    assert result.truncated
    assert fdtable.open_fds() == before


@pytest.mark.parametrize("path", ["common", "general"])
def test_a_failure_after_the_receive_closes_the_installed_fds(pair, monkeypatch, path, closer):
    a, b = pair
    if path == "general":  # credentials make two control messages: the general path
        b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sent = closer.distinct_fds(3)
    fdsend.sendfds(a, b"x", fds=sent)
    before = fdtable.open_fds()

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fdsend, "Received", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fdsend.recvfds(b, 16, numfds=3)
    assert fdtable.open_fds() == before, "fds installed by the kernel were leaked"


class InterruptedOnce:
    """Stands for fdsend's unpacker table: the first lookup is interrupted, as by a signal."""

    def __init__(self, table: list[Any]) -> None:
        self.table = table
        self.interrupted = False

    def __getitem__(self, count):
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return self.table[count]


def test_a_parse_failure_closes_the_installed_fds(pair, monkeypatch, closer):
    a, b = pair
    sent = closer.distinct_fds(2)
    fdsend.sendfds(a, b"x", fds=sent)
    before = fdtable.open_fds()
    monkeypatch.setattr(fdsend, "_INTS", InterruptedOnce(fdsend._INTS))
    with pytest.raises(KeyboardInterrupt):
        fdsend.recvfds(b, 16, numfds=2)
    assert fdtable.open_fds() == before


def _strict_receive_at_fd_limit(sock: socket.socket) -> tuple[bool, list[int]]:
    """In a child: leave two fd numbers free, receive 8 fds strictly."""
    limit = leave_free_fds(2)
    before = fdtable.open_below(limit)
    try:
        fdsend.recvfds(sock, 16, numfds=8, strict=True)
    except fdsend.TruncatedError:
        raised = True
    else:
        raised = False
    return raised, sorted(fdtable.open_below(limit) - before)


def test_strict_receive_at_the_fd_limit_closes_what_arrived(pair, closer):
    a, b = pair
    sent = closer.distinct_fds(8)
    fdsend.sendfds(a, b"limit", fds=sent)
    raised, new = call_in_child(lambda: _strict_receive_at_fd_limit(b))
    assert raised, "fds were dropped at RLIMIT_NOFILE and strict mode did not raise"
    assert new == [], f"strict mode kept fds it received: {new}"
