"""KERNEL: SO_PASSPIDFD sends a pidfd of the sender beside the fds."""

from __future__ import annotations

import os
import socket

import pytest

from fdsend_conformance.harness.cmsg import SCM_PIDFD, SO_PASSPIDFD, Message, send_fds, take
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.fdtable import close_on_exec
from fdsend_conformance.harness.kernel import require_sockopt
from fdsend_conformance.harness.processes import pidfd_pid, sent_by_a_child
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
    _check(take(closer, b, 16, 4096), sent, os.getpid())


@pytest.mark.clause("KERNEL-13")
def test_pidfd_names_the_sending_process(closer):
    a, b = _passpidfd_pair(closer)
    sent = closer.distinct_fds(1)
    with sent_by_a_child(a, b, b"p", sent) as pid:
        _check(take(closer, b, 16, 4096), sent, pid)
