"""KERNEL: SO_PASSPIDFD sends a pidfd of the sender beside the fds."""

from __future__ import annotations

import os
import socket

import pytest

from fdsend_conformance.harness.cmsg import SCM_PIDFD, SO_PASSPIDFD, Message, receive, send_fds
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.fdtable import close_on_exec
from fdsend_conformance.harness.kernel import require_sockopt
from fdsend_conformance.harness.processes import fork_call, pidfd_pid, reap
from fdsend_conformance.harness.sockets import unix_pair

pytestmark = pytest.mark.kernel


def _passpidfd_pair(closer) -> tuple[socket.socket, socket.socket]:
    a, b = unix_pair(closer.objects)
    require_sockopt(b, SO_PASSPIDFD, 1, "SO_PASSPIDFD", "6.5")
    return a, b


def _check(msg: Message, sent: list[int], pid: int) -> None:
    assert not msg.ctrunc
    assert identities(msg.fds) == identities(sent)
    kinds = [kind for level, kind, _ in msg.ancdata if level == socket.SOL_SOCKET]
    assert kinds.count(SCM_PIDFD) == 1, f"control messages: {kinds}"
    [pidfd] = msg.pidfds
    assert pidfd_pid(pidfd) == pid, "the pidfd is not the sender's"
    assert close_on_exec(pidfd), "the pidfd was installed inheritable"


@pytest.mark.clause("KERNEL-13")
def test_pidfd_of_this_process_arrives_beside_the_fds(closer):
    a, b = _passpidfd_pair(closer)
    sent = closer.distinct_fds(2)
    send_fds(a, b"p", sent)
    msg = receive(b, 16, 4096)
    closer.fds(*msg.installed)
    _check(msg, sent, os.getpid())


@pytest.mark.clause("KERNEL-13")
def test_pidfd_names_the_sending_process(closer):
    a, b = _passpidfd_pair(closer)
    sent = closer.distinct_fds(1)

    def sender() -> None:
        send_fds(a, b"p", sent)
        a.recv(1)  # stay alive until the parent has looked (SO_RCVTIMEO bounds it)

    pid = fork_call(sender)
    try:
        msg = receive(b, 16, 4096)
        closer.fds(*msg.installed)
        _check(msg, sent, pid)
    finally:
        b.sendall(b"k")
        code = reap(pid)
    assert code == 0
