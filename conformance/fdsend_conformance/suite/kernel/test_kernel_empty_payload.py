"""KERNEL: fds sent with a payload of zero bytes."""

from __future__ import annotations

import os

import pytest

from fdsend_conformance.harness.cmsg import fd_space, receive, send_fds
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.sockets import UNIX_TYPES, pending, unix_pair

pytestmark = pytest.mark.kernel


@pytest.mark.clause("KERNEL-8")
def test_stream_loses_the_fds_of_an_empty_send(closer):
    a, b = unix_pair(closer.objects)
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    assert send_fds(a, b"", [write_end]) == 0
    closer.close(write_end)
    assert not pending(b), "an empty send with fds reached the peer"
    assert at_eof(read_end), "the lost fd is still held in flight"
    a.sendall(b"after")
    msg = receive(b, 16, fd_space(1))
    assert (msg.data, msg.fds, msg.ctrunc) == (b"after", [], False)


@pytest.mark.clause("KERNEL-8")
@pytest.mark.parametrize("kind", ["seqpacket", "dgram"])
def test_message_sockets_deliver_an_empty_message_with_fds(closer, kind):
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    sent = closer.distinct_fds(2)
    assert send_fds(a, b"", sent) == 0
    msg = receive(b, 16, fd_space(2))
    closer.fds(*msg.fds)
    assert msg.data == b""
    assert not msg.ctrunc
    assert identities(msg.fds) == identities(sent)
