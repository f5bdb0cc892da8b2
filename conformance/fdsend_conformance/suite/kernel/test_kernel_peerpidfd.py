"""KERNEL: SO_PEERPIDFD, a pidfd of the peer, and pidfds of processes that exited."""

from __future__ import annotations

import errno
import os
import select
import socket
import struct

import pytest

from fdsend_conformance.harness.cmsg import SO_PASSPIDFD, SO_PEERPIDFD, receive, send_fds
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.fdtable import close_on_exec
from fdsend_conformance.harness.kernel import require_sockopt
from fdsend_conformance.harness.processes import fork_call, pidfd_pid, reap
from fdsend_conformance.harness.sockets import UNIX_TYPES, set_io_timeout, unix_listener, unix_pair
from fdsend_conformance.harness.timeouts import IO_TIMEOUT

pytestmark = pytest.mark.kernel


def _peer_pidfd(closer, sock: socket.socket) -> int:
    """SO_PEERPIDFD of ``sock`` (owned by ``closer``), or skip where it is unknown."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4)
    except OSError as exc:
        if exc.errno == errno.ENOPROTOOPT:
            pytest.skip("SO_PEERPIDFD is unknown to this kernel (ENOPROTOOPT; Linux >= 6.5)")
        raise
    (pidfd,) = struct.unpack("i", raw)
    closer.fds(pidfd)
    return int(pidfd)


def _has_exited(pidfd: int) -> bool:
    """Whether the process of ``pidfd`` has exited: its pidfd polls readable."""
    return bool(select.select([pidfd], [], [], 0)[0])


def _wait_exited(pid: int) -> None:
    """Wait (bounded) until child ``pid`` has exited, without reaping it."""
    watch = os.pidfd_open(pid)
    try:
        assert select.select([watch], [], [], IO_TIMEOUT)[0], f"child {pid} did not exit"
    finally:
        os.close(watch)


@pytest.mark.clause("KERNEL-25")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_peer_pidfd_of_a_socketpair_is_this_process(closer, kind):
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    for sock in (a, b):
        pidfd = _peer_pidfd(closer, sock)
        assert pidfd_pid(pidfd) == os.getpid()
        assert close_on_exec(pidfd), "the pidfd was installed inheritable"
        assert not _has_exited(pidfd)


@pytest.mark.clause("KERNEL-25")
def test_peer_pidfd_names_the_connecting_process_and_the_listening_one(closer):
    listener, connect = unix_listener(closer.objects)
    listening = _peer_pidfd(closer, listener)
    assert pidfd_pid(listening) == os.getpid(), "a listener's peer is who listened"

    def client() -> None:
        sock = connect()
        sock.recv(1)  # stay connected until the parent has looked (SO_RCVTIMEO bounds it)

    pid = fork_call(client)
    server = None
    try:
        server, _ = listener.accept()
        closer.objects(server)
        set_io_timeout(server)
        assert pidfd_pid(_peer_pidfd(closer, server)) == pid
    finally:
        if server is not None:
            server.sendall(b"k")
        code = reap(pid)
    assert code == 0


@pytest.mark.clause("KERNEL-25")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_peer_pidfd_of_an_unconnected_socket_is_enodata(closer, kind):
    _peer_pidfd(closer, unix_pair(closer.objects)[0])  # skips without SO_PEERPIDFD
    sock = socket.socket(socket.AF_UNIX, UNIX_TYPES[kind])
    closer.objects(sock)
    with pytest.raises(OSError) as info:
        sock.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD, 4)
    assert info.value.errno == errno.ENODATA, os.strerror(info.value.errno or 0)


@pytest.mark.clause("KERNEL-26")
@pytest.mark.parametrize("reaped", [False, True], ids=["zombie", "reaped"])
def test_scm_pidfd_of_a_sender_that_exited(closer, reaped):
    a, b = unix_pair(closer.objects)
    require_sockopt(b, SO_PASSPIDFD, 1, "SO_PASSPIDFD", "6.5")
    sent = closer.distinct_fds(1)
    pid = fork_call(lambda: send_fds(a, b"gone", sent))
    try:
        _wait_exited(pid)
        if reaped:
            assert reap(pid) == 0
        msg = receive(b, 16, 4096)
        closer.fds(*msg.installed)
        named = [pidfd_pid(pidfd) for pidfd in msg.pidfds if pidfd >= 0]
    finally:
        if not reaped:
            assert reap(pid) == 0  # only now: the pidfd was read while a zombie
    assert not msg.ctrunc
    assert msg.data == b"gone"
    assert identities(msg.fds) == identities(sent)
    [pidfd] = msg.pidfds
    assert pidfd >= 0, f"SCM_PIDFD carried an error: {pidfd}"
    assert named == [-1 if reaped else pid]
    assert _has_exited(pidfd)


@pytest.mark.clause("KERNEL-26")
def test_peer_pidfd_of_a_reaped_peer(closer):
    listener, connect = unix_listener(closer.objects)
    pid = fork_call(lambda: connect().send(b"bye"))
    server, _ = listener.accept()
    closer.objects(server)
    set_io_timeout(server)
    assert server.recv(3) == b"bye"
    assert reap(pid) == 0
    pidfd = _peer_pidfd(closer, server)
    assert pidfd_pid(pidfd) == -1, "not the pidfd of a reaped process"
    assert _has_exited(pidfd)
