"""KERNEL: a control buffer too small for the fds sent."""

from __future__ import annotations

import os
import socket

import pytest

from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.cmsg import fd_space, receive, send_fds
from fdsend_conformance.harness.fds import distinct_fds, identities
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.sockets import unix_pair

pytestmark = pytest.mark.kernel

SENT = 5

# Control-buffer sizes. The kernel installs as many fds as fit after the
# header: CMSG_SPACE(1 fd) holds 2 where padding aligns to 8 bytes.
BUFFERS = {
    "none": 0,
    "header-only": socket.CMSG_LEN(0),
    "CMSG_LEN-1": socket.CMSG_LEN(4),
    "CMSG_SPACE-1": fd_space(1),
    "CMSG_LEN-4": socket.CMSG_LEN(4 * 4),
}


def _fit(ancbufsize: int) -> int:
    """How many fds the kernel installs with a control buffer of ``ancbufsize``."""
    return max(0, (ancbufsize - socket.CMSG_LEN(0)) // 4)


@pytest.mark.clause("KERNEL-4")
@pytest.mark.parametrize("buffer", BUFFERS)
def test_short_control_buffer_installs_what_fits(closer, buffer):
    ancbufsize = BUFFERS[buffer]
    fit = _fit(ancbufsize)
    assert fit < SENT
    a, b = unix_pair(closer.objects)
    sent = distinct_fds(SENT - 1)
    read_end, write_end = os.pipe()
    closer.fds(*sent, read_end, write_end)
    assert send_fds(a, b"short", [*sent, write_end]) == 5  # the write end is always cut
    closer.close(write_end)
    before = fdtable.open_fds()
    msg = receive(b, 16, ancbufsize)
    closer.fds(*msg.fds)
    assert msg.data == b"short"
    assert msg.ctrunc, "fds were cut without MSG_CTRUNC"
    assert identities(msg.fds) == identities(sent[:fit])
    assert fdtable.open_fds() - before == set(msg.fds), "cut fds were installed"
    assert at_eof(read_end), "a cut fd still holds its file open"
