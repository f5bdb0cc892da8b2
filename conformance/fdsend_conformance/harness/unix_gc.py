"""Watching the kernel's garbage collector of AF_UNIX sockets in flight.

Sockets are counted in ``/proc/net/unix`` (by inode, for the ones a test
made) and ``/proc/net/protocols`` (every AF_UNIX socket of the network
namespace, which a test alone in a fresh namespace can compare exactly).
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket
import time
from collections.abc import Callable

from fdsend_conformance.harness.processes import ChildSkip

__all__ = [
    "enter_fresh_network_namespace",
    "kick_unix_gc",
    "unix_socket_count",
    "unix_socket_inodes",
    "wait_until",
]

#: unshare(2) flag for a new network namespace (include/uapi/linux/sched.h).
CLONE_NEWNET = 0x40000000


def wait_until(
    condition: Callable[[], bool],
    seconds: float,
    between: Callable[[], object] | None = None,
    step: float = 0.005,
) -> bool:
    """Check ``condition`` until it holds or ``seconds`` pass; True if it held.

    ``between`` runs before each new check; the wait between checks is a
    ``select`` timeout of ``step`` seconds, not a sleep of a fixed total.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        select.select([], [], [], min(step, remaining))
        if between is not None:
            between()
    return True


def unix_socket_inodes() -> set[int]:
    """Inodes of the AF_UNIX sockets alive in this network namespace.

    Read from ``/proc/net/unix``; raises OSError where it is unreadable.
    """
    with open("/proc/net/unix", encoding="utf-8") as table:
        lines = table.read().splitlines()[1:]
    return {int(fields[6]) for fields in (line.split() for line in lines) if len(fields) >= 7}


#: The rows of /proc/net/protocols that count AF_UNIX sockets: "UNIX", and
#: "UNIX-STREAM" for SOCK_STREAM ones on kernels that count them apart.
_UNIX_PROTOCOLS = ("UNIX", "UNIX-STREAM")


def unix_socket_count() -> int:
    """AF_UNIX sockets alive in this network namespace, from /proc/net/protocols.

    Raises OSError where the table is unreadable.
    """
    with open("/proc/net/protocols", encoding="utf-8") as table:
        rows = [line.split() for line in table.read().splitlines()[1:]]
    return sum(int(row[2]) for row in rows if len(row) > 2 and row[0] in _UNIX_PROTOCOLS)


def kick_unix_gc() -> None:
    """Release an AF_UNIX socket, which schedules the kernel's fd garbage collector.

    The collector runs when an AF_UNIX socket is released while fds are in
    flight; closing the last user fd of a socket that is itself in flight
    releases nothing, so an unreachable cycle may wait for the next release
    anywhere on the system (measured on Linux 6.18: seconds).
    """
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()


def enter_fresh_network_namespace() -> None:
    """In a forked child: move to a new network namespace, or raise ChildSkip.

    Sockets made there count in its own /proc/net/protocols, which starts
    at zero; sockets inherited from the parent stay counted in the old one.
    """
    unshare = getattr(os, "unshare", None)  # Python >= 3.12
    if unshare is not None:
        try:
            unshare(CLONE_NEWNET)
        except OSError as exc:
            raise ChildSkip(f"unshare(CLONE_NEWNET) is not allowed here: {exc}") from exc
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise ChildSkip(
            f"unshare(CLONE_NEWNET) is not allowed here: {errno.errorcode.get(code, code)}"
        )
