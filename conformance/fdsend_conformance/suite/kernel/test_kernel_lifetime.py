"""KERNEL: how long fds in flight live when nobody receives them."""

from __future__ import annotations

import os

import pytest

from fdsend_conformance.harness.cmsg import fd_space, send_write_end, take
from fdsend_conformance.harness.fds import identities, identity
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.sockets import UNIX_TYPES, unix_pair

pytestmark = pytest.mark.kernel


@pytest.mark.clause("KERNEL-10")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_closing_the_receiver_releases_the_fds_in_flight(closer, kind):
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    read_end = send_write_end(closer, a, b"never received")
    assert not at_eof(read_end), "the write end in flight does not hold the pipe open"
    b.close()
    assert at_eof(read_end), "the receiver is closed but the fd in flight is still held"


@pytest.mark.clause("KERNEL-10")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_closing_the_sender_keeps_the_fds_in_flight(closer, kind):
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    read_end = send_write_end(closer, a, b"sender gone")
    a.close()
    assert not at_eof(read_end), "closing the sender released the fd in flight"
    msg = take(closer, b, 16, fd_space(1))
    assert msg.data == b"sender gone"
    assert identities(msg.fds) == [identity(read_end)], "not the pipe sent"  # one inode
    os.write(msg.fds[0], b"!")
    assert os.read(read_end, 1) == b"!"
