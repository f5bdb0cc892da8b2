"""KERNEL: the garbage collector of AF_UNIX sockets in flight."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from fdsend_conformance.harness.cmsg import send_fds
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.sockets import socket_pair
from fdsend_conformance.harness.timeouts import UNIX_GC_TIMEOUT
from fdsend_conformance.harness.unix_gc import kick_unix_gc, unix_socket_inodes, wait_until

pytestmark = pytest.mark.kernel


def _own_queue(extra: int) -> list[socket.socket]:
    """One socket in its own receive queue."""
    a, b = socket_pair()
    send_fds(a, b"x", [b.fileno(), extra])
    return [a, b]


def _crossed_pair(extra: int) -> list[socket.socket]:
    """Each end of a pair in flight to the other."""
    a, b = socket_pair()
    send_fds(a, b"x", [a.fileno(), extra])
    send_fds(b, b"x", [b.fileno()])
    return [a, b]


def _two_pairs(extra: int) -> list[socket.socket]:
    """Two pairs, each holding the other's receiving end."""
    a, b = socket_pair()
    c, d = socket_pair()
    send_fds(a, b"x", [d.fileno(), extra])
    send_fds(c, b"x", [b.fileno()])
    return [a, b, c, d]


CYCLES: dict[str, Callable[[int], list[socket.socket]]] = {
    "own-queue": _own_queue,
    "crossed-pair": _crossed_pair,
    "two-pairs": _two_pairs,
}


@pytest.mark.clause("KERNEL-9")
@pytest.mark.parametrize("shape", CYCLES)
def test_unreachable_cycle_is_collected(closer, shape):
    try:
        unix_socket_inodes()
    except OSError as exc:
        pytest.skip(f"/proc/net/unix is unreadable here: {exc}")
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    sockets = CYCLES[shape](write_end)
    closer.objects(*sockets)
    # Only the inodes recorded here: other tests may run in parallel.
    inodes = {os.fstat(sock.fileno()).st_ino for sock in sockets}
    assert inodes <= unix_socket_inodes()
    closer.close(write_end)
    assert not at_eof(read_end), "the write end in flight does not hold the pipe open"
    for sock in sockets:
        sock.close()

    def collected() -> bool:
        return not inodes & unix_socket_inodes() and at_eof(read_end)

    assert wait_until(collected, UNIX_GC_TIMEOUT, between=kick_unix_gc), (
        f"after {UNIX_GC_TIMEOUT} s: sockets still alive: {sorted(inodes & unix_socket_inodes())}, "
        f"pipe at EOF: {at_eof(read_end)}"
    )
