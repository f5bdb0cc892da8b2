"""KERNEL: SO_INQ reports the bytes left to read beside the fds (Linux >= 6.17)."""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct
import termios

import pytest

from fdsend_conformance.harness.closer import Closer
from fdsend_conformance.harness.cmsg import INT_SIZE, SCM_INQ, SO_INQ, fd_space, send_fds, take
from fdsend_conformance.harness.fds import distinct_fds, identities
from fdsend_conformance.harness.kernel import require_sockopt
from fdsend_conformance.harness.sockets import UNIX_TYPES, unix_pair

pytestmark = pytest.mark.kernel

RIGHTS = (socket.SOL_SOCKET, socket.SCM_RIGHTS)
INQ = (socket.SOL_SOCKET, SCM_INQ)
ROOM = fd_space(2) + socket.CMSG_SPACE(INT_SIZE)


def _inq_pair(closer) -> tuple[socket.socket, socket.socket]:
    a, b = unix_pair(closer.objects)
    require_sockopt(b, SO_INQ, 1, "SO_INQ", "6.17")
    return a, b


def _queued(sock: socket.socket) -> int:
    """SIOCINQ (FIONREAD): the bytes queued for reading now."""
    answer = fcntl.ioctl(sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", answer)[0])


def _abc_with_fds_then_defgh(closer: Closer, sender: socket.socket, count: int) -> list[int]:
    """Send "abc" with ``count`` fds, then "defgh" without; returns the fds sent."""
    sent = closer.distinct_fds(count)
    send_fds(sender, b"abc", sent)
    sender.sendall(b"defgh")
    return sent


@pytest.mark.clause("KERNEL-17")
def test_scm_inq_follows_the_rights_and_counts_what_is_left(closer):
    a, b = _inq_pair(closer)
    sent = _abc_with_fds_then_defgh(closer, a, 2)
    first = take(closer, b, 2, ROOM)
    assert not first.ctrunc
    assert first.data == b"ab"
    assert first.kinds == [RIGHTS, INQ]
    assert identities(first.fds) == identities(sent)
    assert first.inq == 6 == _queued(b), "not the bytes left: c + defgh"
    rest = take(closer, b, 16, ROOM)
    assert (rest.data, rest.kinds, rest.inq) == (b"cdefgh", [INQ], 0)


@pytest.mark.clause("KERNEL-17")
def test_scm_inq_counts_the_bytes_of_later_sends_with_fds(closer):
    a, b = _inq_pair(closer)
    first_fds, next_fds = distinct_fds(1), distinct_fds(1)
    closer.fds(*first_fds, *next_fds)
    send_fds(a, b"abc", first_fds)
    send_fds(a, b"defg", next_fds)
    first = take(closer, b, 16, ROOM)
    assert first.data == b"abc", "the read went past a send with fds"
    assert first.inq == 4 == _queued(b)
    second = take(closer, b, 16, ROOM)
    assert (second.data, second.kinds, second.inq) == (b"defg", [RIGHTS, INQ], 0)


@pytest.mark.clause("KERNEL-17")
def test_a_peek_counts_the_bytes_it_leaves_queued(closer):
    a, b = _inq_pair(closer)
    _abc_with_fds_then_defgh(closer, a, 1)
    peeked = take(closer, b, 16, ROOM, socket.MSG_PEEK)
    assert (peeked.data, peeked.kinds, peeked.inq) == (b"abc", [RIGHTS, INQ], 8)
    taken = take(closer, b, 16, ROOM)
    assert (taken.data, taken.inq) == (b"abc", 5)


@pytest.mark.clause("KERNEL-17")
def test_no_room_after_the_rights_drops_scm_inq_with_ctrunc(closer):
    a, b = _inq_pair(closer)
    sent = closer.distinct_fds(1)
    send_fds(a, b"abc", sent)
    msg = take(closer, b, 16, fd_space(1))
    assert msg.data == b"abc"
    assert msg.ctrunc
    assert msg.kinds == [RIGHTS]
    assert identities(msg.fds) == identities(sent)


@pytest.mark.clause("KERNEL-18")
@pytest.mark.parametrize("kind", ["seqpacket", "dgram"])
def test_so_inq_is_enoprotoopt_off_sock_stream(closer, kind):
    _inq_pair(closer)  # skips where the kernel has no SO_INQ at all
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    with pytest.raises(OSError) as info:
        b.setsockopt(socket.SOL_SOCKET, SO_INQ, 1)
    assert info.value.errno == errno.ENOPROTOOPT, os.strerror(info.value.errno or 0)
    sent = closer.distinct_fds(1)
    send_fds(a, b"m", sent)
    msg = take(closer, b, 16, ROOM)
    assert msg.kinds == [RIGHTS], "a control message besides the rights"


@pytest.mark.clause("KERNEL-18")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_so_inq_cannot_be_read_back(closer, kind):
    _inq_pair(closer)
    _a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    with pytest.raises(OSError) as info:
        b.getsockopt(socket.SOL_SOCKET, SO_INQ)
    assert info.value.errno == errno.ENOPROTOOPT, os.strerror(info.value.errno or 0)


@pytest.mark.clause("KERNEL-40")
@pytest.mark.parametrize("option", ["never-set", "set-then-cleared"])
def test_no_scm_inq_without_so_inq(closer, option):
    a, b = _inq_pair(closer)  # skips where the kernel has no SO_INQ; leaves it on
    if option == "never-set":
        a, b = unix_pair(closer.objects)
    else:
        b.setsockopt(socket.SOL_SOCKET, SO_INQ, 0)
    sent = _abc_with_fds_then_defgh(closer, a, 1)
    first = take(closer, b, 2, ROOM)
    assert first.data == b"ab"
    assert identities(first.fds) == identities(sent)
    assert INQ not in [(level, kind) for level, kind, _ in first.ancdata], "SCM_INQ without SO_INQ"
    rest = take(closer, b, 16, ROOM)
    assert (rest.data, rest.ancdata) == (b"cdefgh", [])
