"""KERNEL: SO_PASSRIGHTS lets a receiver refuse fds (Linux >= 6.16)."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from fdsend_conformance.harness.cmsg import SO_PASSRIGHTS, fd_space, receive, rights, send_fds
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.kernel import require_sockopt
from fdsend_conformance.harness.sockets import (
    CONNECTION_TYPES,
    UNIX_TYPES,
    pending,
    set_io_timeout,
    unix_listener,
    unix_pair,
)

pytestmark = pytest.mark.kernel

#: The socket types whose listeners hold embryo sockets.


def _passrights(sock: socket.socket) -> int:
    """SO_PASSRIGHTS of ``sock``, or skip where the kernel lacks it."""
    try:
        return sock.getsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS)
    except OSError as exc:
        if exc.errno == errno.ENOPROTOOPT:
            pytest.skip("SO_PASSRIGHTS is unknown to this kernel (ENOPROTOOPT; Linux >= 6.16)")
        raise


def _refuse(sock: socket.socket) -> None:
    """Turn SO_PASSRIGHTS off on ``sock``, or skip where the kernel lacks it."""
    require_sockopt(sock, SO_PASSRIGHTS, 0, "SO_PASSRIGHTS", "6.16")
    assert _passrights(sock) == 0


def _assert_refused(closer, send, receiver: socket.socket) -> None:
    """``send(fds)`` fails with EPERM, queues nothing and holds nothing."""
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    with pytest.raises(OSError) as info:
        send([write_end])
    assert info.value.errno == errno.EPERM, os.strerror(info.value.errno or 0)
    closer.close(write_end)
    assert not pending(receiver), "the refused send queued something"
    assert at_eof(read_end), "the refused fd is held in flight"


def _accept(closer, listener: socket.socket) -> socket.socket:
    server, _ = listener.accept()
    closer.objects(server)
    set_io_timeout(server)
    return server


def _plain_arrives(sender: socket.socket, receiver: socket.socket) -> None:
    sender.sendall(b"plain")
    msg = receive(receiver, 16, fd_space(1))
    assert (msg.data, msg.ancdata, msg.ctrunc) == (b"plain", [], False)


@pytest.mark.clause("KERNEL-15")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_receiver_without_passrights_refuses_fds_with_eperm(closer, kind):
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    assert _passrights(b) == 1, "not on by default"
    _refuse(b)
    _assert_refused(closer, lambda fds: send_fds(a, b"refused", fds), b)
    _plain_arrives(a, b)


@pytest.mark.clause("KERNEL-15")
def test_unconnected_datagram_to_a_refusing_address_is_eperm(closer):
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    closer.objects(receiver, sender)
    for sock in (receiver, sender):
        set_io_timeout(sock)
    receiver.bind("")
    _refuse(receiver)
    address = receiver.getsockname()
    _assert_refused(closer, lambda fds: sender.sendmsg([b"to"], rights(fds), 0, address), receiver)


@pytest.mark.clause("KERNEL-15")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_only_the_receivers_option_counts(closer, kind):
    """The sender's own SO_PASSRIGHTS does not stop it sending, and fds
    queued before the receiver turned it off are still delivered."""
    a, b = unix_pair(closer.objects, UNIX_TYPES[kind])
    _refuse(a)
    sent = os.pipe()
    closer.fds(*sent)
    send_fds(a, b"before", sent)
    _refuse(b)
    msg = receive(b, 16, fd_space(2))
    closer.fds(*msg.fds)
    assert not msg.ctrunc
    assert identities(msg.fds) == identities(sent)


@pytest.mark.clause("KERNEL-16")
@pytest.mark.parametrize("kind", CONNECTION_TYPES)
def test_embryo_inherits_the_listeners_refusal(closer, kind):
    listener, connect = unix_listener(closer.objects, CONNECTION_TYPES[kind])
    _refuse(listener)
    client = connect()
    # Not accepted yet: the embryo socket receives, with the listener's option.
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    with pytest.raises(OSError) as info:
        send_fds(client, b"embryo", [write_end])
    assert info.value.errno == errno.EPERM, os.strerror(info.value.errno or 0)
    closer.close(write_end)
    assert at_eof(read_end), "the refused fd is held in flight"
    client.sendall(b"plain")
    server = _accept(closer, listener)
    assert _passrights(server) == 0
    msg = receive(server, 16, fd_space(1))
    assert (msg.data, msg.ancdata, msg.ctrunc) == (b"plain", [], False)
    _assert_refused(closer, lambda fds: send_fds(client, b"accepted", fds), server)


@pytest.mark.clause("KERNEL-16")
@pytest.mark.parametrize("kind", CONNECTION_TYPES)
def test_embryo_takes_the_option_at_connect(closer, kind):
    """A client connected before the listener turned SO_PASSRIGHTS off passes fds."""
    listener, connect = unix_listener(closer.objects, CONNECTION_TYPES[kind])
    client = connect()
    _refuse(listener)
    sent = os.pipe()
    closer.fds(*sent)
    send_fds(client, b"early", sent)
    server = _accept(closer, listener)
    assert _passrights(server) == 1
    msg = receive(server, 16, fd_space(2))
    closer.fds(*msg.fds)
    assert not msg.ctrunc
    assert identities(msg.fds) == identities(sent)
    late = connect()
    _assert_refused(closer, lambda fds: send_fds(late, b"late", fds), late)
