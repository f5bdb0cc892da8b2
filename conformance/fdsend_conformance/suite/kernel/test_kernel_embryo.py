"""KERNEL: fds queued on an embryo socket (connected, not yet accepted)."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from fdsend_conformance.harness.cmsg import fd_space, receive, send_fds
from fdsend_conformance.harness.fds import identities, identity
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.sockets import CONNECTION_TYPES, set_io_timeout, unix_listener

pytestmark = pytest.mark.kernel

#: The socket types whose listeners hold embryo sockets.


@pytest.mark.clause("KERNEL-21")
@pytest.mark.parametrize("client_closed", [False, True], ids=["client-open", "client-closed"])
@pytest.mark.parametrize("kind", CONNECTION_TYPES)
def test_fds_queued_before_accept_reach_the_accepted_socket(closer, kind, client_closed):
    listener, connect = unix_listener(closer.objects, CONNECTION_TYPES[kind])
    client = connect()
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    sent = identity(write_end)
    assert send_fds(client, b"early", [write_end]) == 5
    closer.close(write_end)
    if client_closed:
        client.close()
    assert not at_eof(read_end), "the fd queued on the embryo is not held"
    server, _ = listener.accept()
    closer.objects(server)
    set_io_timeout(server)
    msg = receive(server, 16, fd_space(1))
    closer.fds(*msg.fds)
    assert (msg.data, msg.ctrunc) == (b"early", False)
    assert identities(msg.fds) == [sent]
    os.write(msg.fds[0], b"!")
    assert os.read(read_end, 1) == b"!"


@pytest.mark.clause("KERNEL-21")
@pytest.mark.parametrize("kind", CONNECTION_TYPES)
def test_closing_the_listener_releases_the_fds_on_its_embryos(closer, kind):
    listener, connect = unix_listener(closer.objects, CONNECTION_TYPES[kind])
    clients = [connect(), connect()]
    pipes = [os.pipe() for _ in clients]
    for client, (read_end, write_end) in zip(clients, pipes):
        closer.fds(read_end, write_end)
        send_fds(client, b"embryo", [write_end])
        closer.close(write_end)
    assert not any(at_eof(read_end) for read_end, _ in pipes)
    listener.close()
    assert all(at_eof(read_end) for read_end, _ in pipes), "fds on embryos outlived the listener"
    for client in clients:
        with pytest.raises(OSError) as info:
            client.recv(1)
        assert info.value.errno == errno.ECONNRESET, os.strerror(info.value.errno or 0)
        with pytest.raises(OSError) as info:
            client.send(b"x", socket.MSG_NOSIGNAL)
        assert info.value.errno == errno.EPIPE, os.strerror(info.value.errno or 0)
