"""KERNEL: fds sent with MSG_OOB on SOCK_STREAM (Linux >= 5.15)."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from fdsend_conformance.harness.cmsg import fd_space, send_fds, send_write_end, take
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.kernel import oob_stream_pair
from fdsend_conformance.harness.sockets import pending

pytestmark = pytest.mark.kernel

ROOM = fd_space(4)


def _d_comes_alone_and_releases(closer, b, read_end: int, why: str) -> None:
    """The next read is "d", without fds; the pipe's write end in flight is released by then."""
    after = take(closer, b, 16, ROOM, whole=True)
    assert (after.data, after.fds) == (b"d", [])
    assert at_eof(read_end), why


@pytest.mark.clause("KERNEL-19")
@pytest.mark.parametrize("read_oob_first", [True, False], ids=["oob-read", "oob-unread"])
def test_fds_of_an_oob_send_come_with_its_in_band_part(closer, read_oob_first):
    a, b = oob_stream_pair(closer.objects, inline=False)
    sent = closer.distinct_fds(2)
    assert send_fds(a, b"abc", sent, socket.MSG_OOB) == 3
    a.sendall(b"def")
    if read_oob_first:
        urgent = take(closer, b, 16, ROOM, socket.MSG_OOB, whole=True)
        assert (urgent.data, urgent.ancdata) == (b"c", [])
        assert urgent.flags & socket.MSG_OOB
    first = take(closer, b, 16, ROOM, whole=True)
    assert (first.data, identities(first.fds)) == (b"ab", identities(sent))
    second = take(closer, b, 16, ROOM, whole=True)
    assert (second.data, second.fds) == (b"def", []), "the out-of-band byte came in-band"
    assert not pending(b)


@pytest.mark.clause("KERNEL-19")
def test_with_oobinline_the_oob_byte_starts_the_next_read(closer):
    a, b = oob_stream_pair(closer.objects, inline=True)
    sent = closer.distinct_fds(2)
    assert send_fds(a, b"abc", sent, socket.MSG_OOB) == 3
    a.sendall(b"def")
    with pytest.raises(OSError) as info:
        b.recv(1, socket.MSG_OOB)
    assert info.value.errno == errno.EINVAL, os.strerror(info.value.errno or 0)
    first = take(closer, b, 16, ROOM, whole=True)
    assert (first.data, identities(first.fds)) == (b"ab", identities(sent))
    second = take(closer, b, 16, ROOM, whole=True)
    assert (second.data, second.fds) == (b"cdef", [])


@pytest.mark.clause("KERNEL-20")
def test_fds_on_a_one_byte_oob_send_never_reach_an_oob_reader(closer):
    a, b = oob_stream_pair(closer.objects, inline=False)
    read_end = send_write_end(closer, a, b"c", socket.MSG_OOB)
    urgent = take(closer, b, 16, ROOM, socket.MSG_OOB, whole=True)
    assert (urgent.data, urgent.ancdata) == (b"c", []), "the OOB read brought control data"
    assert not at_eof(read_end), "released at the OOB read already"
    a.sendall(b"d")
    why = "the lost fd is still held after the reader passed the mark"
    _d_comes_alone_and_releases(closer, b, read_end, why)


@pytest.mark.clause("KERNEL-20")
def test_fds_on_a_one_byte_oob_send_are_skipped_by_an_in_band_reader(closer):
    a, b = oob_stream_pair(closer.objects, inline=False)
    a.sendall(b"ab")
    read_end = send_write_end(closer, a, b"c", socket.MSG_OOB)
    a.sendall(b"d")
    before = take(closer, b, 16, ROOM, whole=True)
    assert (before.data, before.fds) == (b"ab", [])
    assert not at_eof(read_end)
    _d_comes_alone_and_releases(closer, b, read_end, "the skipped fd is still held")


@pytest.mark.clause("KERNEL-20")
def test_with_oobinline_a_one_byte_oob_send_delivers_its_fds(closer):
    a, b = oob_stream_pair(closer.objects, inline=True)
    sent = closer.distinct_fds(2)
    send_fds(a, b"c", sent, socket.MSG_OOB)
    a.sendall(b"d")
    first = take(closer, b, 16, ROOM, whole=True)
    assert (first.data, identities(first.fds)) == (b"c", identities(sent))
    second = take(closer, b, 16, ROOM, whole=True)
    assert (second.data, second.fds) == (b"d", [])
