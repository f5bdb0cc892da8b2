"""KERNEL: where fds sit in a SOCK_STREAM byte stream."""

from __future__ import annotations

import socket

import pytest

from fdsend_conformance.harness.cmsg import Message, fd_space, receive, send_fds
from fdsend_conformance.harness.fds import distinct_fds, identities
from fdsend_conformance.harness.sockets import pending, unix_pair

pytestmark = pytest.mark.kernel

ROOM = fd_space(4)


def _receive(closer, sock: socket.socket, size: int) -> Message:
    msg = receive(sock, size, ROOM)
    closer.fds(*msg.fds)
    assert not msg.ctrunc
    return msg


def _files(fds: list[int]) -> list[tuple[int, int]]:
    return identities(fds)


@pytest.mark.clause("KERNEL-7")
def test_unix7_example_fds_end_the_read(closer):
    """unix(7): 4 plain bytes, 1 byte with fds, 4 plain bytes; 20-byte reads."""
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(2)
    a.sendall(b"1234")
    send_fds(a, b"5", sent)
    a.sendall(b"6789")
    first = _receive(closer, b, 20)
    assert (first.data, _files(first.fds)) == (b"12345", _files(sent))
    second = _receive(closer, b, 20)
    assert (second.data, second.fds) == (b"6789", [])


@pytest.mark.clause("KERNEL-7")
@pytest.mark.parametrize(("size", "with_fds"), [(3, False), (4, True), (20, True)])
def test_fds_come_with_the_first_byte_of_their_send(closer, size, with_fds):
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(1)
    a.sendall(b"abc")
    send_fds(a, b"def", sent)
    first = _receive(closer, b, size)
    assert first.data == b"abcdef"[:size]
    assert _files(first.fds) == (_files(sent) if with_fds else [])
    if size < 6:
        rest = _receive(closer, b, 20)
        assert rest.data == b"abcdef"[size:]
        assert _files(rest.fds) == ([] if with_fds else _files(sent))
    assert not pending(b)


@pytest.mark.clause("KERNEL-7")
def test_fds_stay_with_the_first_part_of_a_split_read(closer):
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(1)
    send_fds(a, b"abcdef", sent)
    first = _receive(closer, b, 2)
    assert (first.data, _files(first.fds)) == (b"ab", _files(sent))
    rest = _receive(closer, b, 20)
    assert (rest.data, rest.fds) == (b"cdef", [])


@pytest.mark.clause("KERNEL-7")
@pytest.mark.parametrize("next_has_fds", [False, True], ids=["then-plain", "then-fds"])
def test_no_read_continues_past_a_send_with_fds(closer, next_has_fds):
    a, b = unix_pair(closer.objects)
    first_fds, next_fds = distinct_fds(1), distinct_fds(1)
    closer.fds(*first_fds, *next_fds)
    send_fds(a, b"abc", first_fds)
    send_fds(a, b"def", next_fds if next_has_fds else [])
    first = _receive(closer, b, 20)
    assert (first.data, _files(first.fds)) == (b"abc", _files(first_fds))
    second = _receive(closer, b, 20)
    assert second.data == b"def"
    assert _files(second.fds) == (_files(next_fds) if next_has_fds else [])
