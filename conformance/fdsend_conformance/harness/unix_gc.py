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

from fdsend_conformance.harness.cmsg import send_fds
from fdsend_conformance.harness.processes import ChildSkip

__all__ = [
    "Canary",
    "become_a_fresh_user",
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


class Canary:
    """Garbage only the collector frees, which tells whether it has walked since.

    A bound SOCK_DGRAM socket, closed, whose one reference is its own fd in
    flight in its own receive queue: an unreachable cycle, which every walk
    of the collector (Linux >= 6.10's __unix_gc(); any run of the older
    unix_gc()) reclaims. Its queue is full (net.unix.max_dgram_qlen), so a
    non-blocking send to it from the socket connected to it fails with
    EAGAIN until a walk empties that queue: unix_collect_skb() splices it out
    under the collector's lock, in the walk itself. Kept for the whole of a
    window (made before it, :meth:`untouched` after), it tells whether the
    collector ran at any moment in between, whoever made it run. The
    collector's graph is global: any AF_UNIX socket released anywhere while
    fds are in flight runs it (unix_release_sock()). Two sockets in the
    namespace, the sender among them: :meth:`close` it with the rest.
    """

    SOCKETS = 2

    def __init__(self) -> None:
        target = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with target:
            target.bind("")  # autobind: an abstract address of this namespace
            self.sender.connect(target.getsockname())
            send_fds(self.sender, b"c", [target.fileno()])
            for _ in range(_QUEUE_BOUND):
                if not self._sends():
                    return
        raise AssertionError(f"{_QUEUE_BOUND} datagrams did not fill a receive queue")

    def _sends(self) -> bool:
        """Whether a non-blocking datagram to the canary is taken (False: EAGAIN, full)."""
        try:
            self.sender.send(b"c", socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:  # ECONNREFUSED: reclaimed, and released already
            return True
        return True

    def untouched(self) -> bool:
        """Whether the collector has not walked since the canary was made."""
        return not self._sends()

    def close(self) -> None:
        """Close the sender; the canary itself is left to the collector."""
        self.sender.close()


#: More datagrams than any queue of the fresh namespace takes (net.unix.max_dgram_qlen: 10).
_QUEUE_BOUND = 1000


#: Where :func:`become_a_fresh_user` takes its uids: past any account's,
#: one uid a process id (so a uid is never taken twice while pids last).
FRESH_UID_BASE = 1_000_000_000


def become_a_fresh_user() -> bool:
    """In a forked child run as root: take a uid of its own, with no fd in flight.

    The kernel charges each AF_UNIX fd in flight to the user who sent it,
    and runs the collector at every send of one by a user with SCM_MAX_FD * 8
    (2024) or more in flight (unix_schedule_gc(); wait_for_unix_gc() before
    it): a long-running machine whose root has leaked that many (a kernel
    that never reclaims some cycle) walks the graph at each edge sent. Under
    a uid no other process has, sends run nothing. Returns False where this
    is not root (the sends run as they are).
    """
    if os.geteuid() != 0:
        return False
    uid = FRESH_UID_BASE + os.getpid()
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    return True


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
