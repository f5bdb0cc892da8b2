"""KERNEL: receive flags that change what the kernel installs."""

from __future__ import annotations

import os
import socket

import pytest

from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.cmsg import fd_space, receive, send_fds
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.fdtable import close_on_exec
from fdsend_conformance.harness.sockets import UNIX_TYPES, pending, unix_pair

pytestmark = pytest.mark.kernel


@pytest.mark.clause("KERNEL-5")
@pytest.mark.parametrize("sender_cloexec", [True, False], ids=["sender-cloexec", "sender-clear"])
@pytest.mark.parametrize("flag", [True, False], ids=["MSG_CMSG_CLOEXEC", "no-flag"])
def test_msg_cmsg_cloexec_sets_fd_cloexec_on_every_fd(closer, sender_cloexec, flag):
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(3)
    for fd in sent:
        os.set_inheritable(fd, not sender_cloexec)
    send_fds(a, b"x", sent)
    msg = receive(b, 16, fd_space(3), socket.MSG_CMSG_CLOEXEC if flag else 0)
    closer.fds(*msg.fds)
    assert identities(msg.fds) == identities(sent)
    assert [close_on_exec(fd) for fd in msg.fds] == [flag] * 3
    assert [close_on_exec(fd) for fd in sent] == [sender_cloexec] * 3, "sender's fds changed"


@pytest.mark.clause("KERNEL-6")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_peek_installs_fresh_fds_and_consumes_nothing(closer, kind):
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    sent = closer.distinct_fds(2)
    send_fds(a, b"peek", sent)
    before = fdtable.open_fds()
    received = []
    for flags in (socket.MSG_PEEK, socket.MSG_PEEK, 0):
        msg = receive(b, 16, fd_space(2), flags)
        closer.fds(*msg.fds)
        assert msg.data == b"peek"
        assert not msg.ctrunc
        assert identities(msg.fds) == identities(sent)
        received.extend(msg.fds)
    assert len(set(received)) == 6, f"peeks and receive did not each install new fds: {received}"
    assert fdtable.open_fds() - before == set(received)
    assert not pending(b), "the message is still queued after the real receive"
