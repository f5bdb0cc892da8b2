"""KERNEL: SO_PEEK_OFF, the offset where a MSG_PEEK read starts on SOCK_STREAM."""

from __future__ import annotations

import socket

import pytest

from fdsend_conformance.harness.kernel import require_sockopt
from fdsend_conformance.harness.kernel_fixes import known_bug
from fdsend_conformance.harness.sockets import unix_pair
from fdsend_conformance.harness.when_blocked import wake_when_blocked

pytestmark = pytest.mark.kernel

#: SO_PEEK_OFF (include/uapi/asm-generic/socket.h); not in Python's socket module.
SO_PEEK_OFF = 42

SLEEPING_PEEK_FIX = (
    "af_unix: Read sk_peek_offset() again after sleeping in unix_stream_read_generic()."
)


@pytest.mark.clause("KERNEL-32")
@known_bug(SLEEPING_PEEK_FIX)
def test_a_peek_that_waits_for_data_starts_at_the_peek_offset(closer):
    a, b = unix_pair(closer.objects)
    require_sockopt(b, SO_PEEK_OFF, 0, "SO_PEEK_OFF on AF_UNIX", "4.1")
    a.sendall(b"aaaa")
    assert b.recv(4, socket.MSG_PEEK) == b"aaaa"
    assert b.getsockopt(socket.SOL_SOCKET, SO_PEEK_OFF) == 4
    # Nothing lies past the offset: this peek sleeps in recvmsg until the
    # watcher, seeing it asleep, sends more.
    with wake_when_blocked("recvmsg", b, lambda: a.sendall(b"bbbb"), loop_waits=False) as seen:
        data, _ancdata, _flags, _addr = b.recvmsg(4, 0, socket.MSG_PEEK)
    assert seen.errors == []
    seen.check_blocked()
    assert data == b"bbbb", "the peek started over at the head of the queue after sleeping"
    assert b.recv(8) == b"aaaabbbb"
