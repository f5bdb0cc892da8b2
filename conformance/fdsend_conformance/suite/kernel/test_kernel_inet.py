"""KERNEL: SCM_RIGHTS offered on TCP and UDP sockets."""

from __future__ import annotations

import os
import socket

import pytest

from fdsend_conformance.harness.cmsg import receive, send_fds
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.sockets import set_io_timeout
from fdsend_conformance.harness.timeouts import IO_TIMEOUT

pytestmark = pytest.mark.kernel

LOOPBACK = {"ipv4": (socket.AF_INET, "127.0.0.1"), "ipv6": (socket.AF_INET6, "::1")}


def _loopback(name: str) -> tuple[int, str]:
    family, host = LOOPBACK[name]
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError as exc:
        pytest.skip(f"{host} is unavailable here: {exc}")
    return family, host


def _tcp(family: int, host: str, closer) -> tuple[socket.socket, socket.socket]:
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        listener.listen(1)
        listener.settimeout(IO_TIMEOUT)
        client = socket.create_connection(listener.getsockname()[:2], timeout=IO_TIMEOUT)
        closer.objects(client)
        server, _ = listener.accept()
        closer.objects(server)
    return client, server


def _udp(family: int, host: str, closer) -> tuple[socket.socket, socket.socket]:
    a = socket.socket(family, socket.SOCK_DGRAM)
    b = socket.socket(family, socket.SOCK_DGRAM)
    closer.objects(a, b)
    b.bind((host, 0))
    a.connect(b.getsockname()[:2])
    return a, b


@pytest.mark.clause("KERNEL-14")
@pytest.mark.parametrize("transport", ["tcp", "udp"])
@pytest.mark.parametrize("family", LOOPBACK)
def test_fds_on_an_inet_socket_are_dropped_without_an_error(closer, family, transport):
    family_number, host = _loopback(family)
    a, b = (_tcp if transport == "tcp" else _udp)(family_number, host, closer)
    for sock in (a, b):
        sock.settimeout(None)
        set_io_timeout(sock)
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    assert send_fds(a, b"inet", [write_end]) == 4
    closer.close(write_end)
    msg = receive(b, 16, 4096)
    closer.fds(*msg.installed)
    assert msg.data == b"inet"
    assert msg.ancdata == [], "a control message came over an inet socket"
    assert not msg.ctrunc
    assert at_eof(read_end), "the fd offered is still held"
