"""KERNEL: SO_PASSCRED credentials beside the fds, and the room they take."""

from __future__ import annotations

import os
import socket
import struct

import pytest

from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.cmsg import (
    CREDENTIALS_SIZE,
    Message,
    fd_space,
    receive,
    send_fds,
    take,
)
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.processes import sent_by_a_child
from fdsend_conformance.harness.sockets import unix_pair

pytestmark = pytest.mark.kernel

CREDENTIALS = (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
RIGHTS = (socket.SOL_SOCKET, socket.SCM_RIGHTS)


def _passcred_pair(closer) -> tuple[socket.socket, socket.socket]:
    a, b = unix_pair(closer.objects)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    return a, b


def _sent_to_passcred(closer, count: int) -> tuple[socket.socket, list[int]]:
    """``count`` fds sent with "c" to a receiver with SO_PASSCRED on: (receiver, fds sent)."""
    a, b = _passcred_pair(closer)
    sent = closer.distinct_fds(count)
    send_fds(a, b"c", sent)
    return b, sent


def _kinds(msg: Message) -> list[tuple[int, int]]:
    return [(level, kind) for level, kind, _ in msg.ancdata]


@pytest.mark.clause("KERNEL-11")
@pytest.mark.parametrize("count", [1, 4])
def test_credentials_arrive_beside_the_fds(closer, count):
    b, sent = _sent_to_passcred(closer, count)
    msg = take(closer, b, 16, 4096)
    assert not msg.ctrunc
    assert _kinds(msg) == [CREDENTIALS, RIGHTS]
    assert msg.credentials == (os.getpid(), os.getuid(), os.getgid())
    assert identities(msg.fds) == identities(sent)


@pytest.mark.clause("KERNEL-11")
def test_credentials_name_the_sending_process(closer):
    a, b = _passcred_pair(closer)
    sent = closer.distinct_fds(1)
    with sent_by_a_child(a, b, b"c", sent) as pid:
        msg = take(closer, b, 16, 4096)
    assert msg.credentials == (pid, os.getuid(), os.getgid())
    assert identities(msg.fds) == identities(sent)


@pytest.mark.clause("KERNEL-12")
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8])
def test_buffer_for_the_fds_alone_gets_credentials_and_no_fds(closer, count):
    b, _sent = _sent_to_passcred(closer, count)
    before = fdtable.open_fds()
    msg = receive(b, 16, fd_space(count))
    closer.fds(*msg.fds)
    assert msg.data == b"c"
    assert msg.ctrunc
    assert msg.fds == [], "fds arrived although the credentials took the buffer"
    assert fdtable.open_fds() == before, "fds were installed"
    [credentials] = msg.items(*CREDENTIALS)
    whole = struct.pack("iII", os.getpid(), os.getuid(), os.getgid())
    assert len(credentials) >= 8
    assert whole.startswith(credentials), "not (a prefix of) this process's credentials"


@pytest.mark.clause("KERNEL-12")
@pytest.mark.parametrize("count", [1, 2, 3, 4, 8])
def test_room_for_credentials_and_fds_delivers_both(closer, count):
    b, sent = _sent_to_passcred(closer, count)
    msg = take(closer, b, 16, socket.CMSG_SPACE(CREDENTIALS_SIZE) + fd_space(count))
    assert not msg.ctrunc
    assert msg.credentials == (os.getpid(), os.getuid(), os.getgid())
    assert identities(msg.fds) == identities(sent)
