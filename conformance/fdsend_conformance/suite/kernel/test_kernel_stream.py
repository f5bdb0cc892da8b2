"""KERNEL: where fds sit in a SOCK_STREAM byte stream."""

from __future__ import annotations

import pytest

from fdsend_conformance.harness.cmsg import fd_space, send_fds, take
from fdsend_conformance.harness.fds import distinct_fds, identities
from fdsend_conformance.harness.sockets import pending, unix_pair

pytestmark = pytest.mark.kernel

ROOM = fd_space(4)


@pytest.mark.clause("KERNEL-7")
def test_unix7_example_fds_end_the_read(closer):
    """unix(7): 4 plain bytes, 1 byte with fds, 4 plain bytes; 20-byte reads."""
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(2)
    a.sendall(b"1234")
    send_fds(a, b"5", sent)
    a.sendall(b"6789")
    first = take(closer, b, 20, ROOM, whole=True)
    assert (first.data, identities(first.fds)) == (b"12345", identities(sent))
    second = take(closer, b, 20, ROOM, whole=True)
    assert (second.data, second.fds) == (b"6789", [])


@pytest.mark.clause("KERNEL-7")
@pytest.mark.parametrize(("size", "with_fds"), [(3, False), (4, True), (20, True)])
def test_fds_come_with_the_first_byte_of_their_send(closer, size, with_fds):
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(1)
    a.sendall(b"abc")
    send_fds(a, b"def", sent)
    first = take(closer, b, size, ROOM, whole=True)
    assert first.data == b"abcdef"[:size]
    assert identities(first.fds) == (identities(sent) if with_fds else [])
    if size < 6:
        rest = take(closer, b, 20, ROOM, whole=True)
        assert rest.data == b"abcdef"[size:]
        assert identities(rest.fds) == ([] if with_fds else identities(sent))
    assert not pending(b)


@pytest.mark.clause("KERNEL-7")
def test_fds_stay_with_the_first_part_of_a_split_read(closer):
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(1)
    send_fds(a, b"abcdef", sent)
    first = take(closer, b, 2, ROOM, whole=True)
    assert (first.data, identities(first.fds)) == (b"ab", identities(sent))
    rest = take(closer, b, 20, ROOM, whole=True)
    assert (rest.data, rest.fds) == (b"cdef", [])


@pytest.mark.clause("KERNEL-7")
@pytest.mark.parametrize("next_has_fds", [False, True], ids=["then-plain", "then-fds"])
def test_no_read_continues_past_a_send_with_fds(closer, next_has_fds):
    a, b = unix_pair(closer.objects)
    first_fds, next_fds = distinct_fds(1), distinct_fds(1)
    closer.fds(*first_fds, *next_fds)
    send_fds(a, b"abc", first_fds)
    send_fds(a, b"def", next_fds if next_has_fds else [])
    first = take(closer, b, 20, ROOM, whole=True)
    assert (first.data, identities(first.fds)) == (b"abc", identities(first_fds))
    second = take(closer, b, 20, ROOM, whole=True)
    assert second.data == b"def"
    assert identities(second.fds) == (identities(next_fds) if next_has_fds else [])
