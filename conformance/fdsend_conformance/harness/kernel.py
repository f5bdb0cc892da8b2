"""Raw SCM_RIGHTS helpers for the KERNEL checks, which bypass every backend.

The KERNEL clauses pin down what Linux itself does with fds in flight, so
their tests call ``socket.sendmsg``/``recvmsg`` directly through these
helpers. Checks that change process-wide state (resource limits, user ids)
run in a forked child through :func:`call_in_child`, so the test process is
never touched.
"""

from __future__ import annotations

import array
import fcntl
import grp
import os
import platform
import pwd
import random
import re
import select
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fdsend_conformance.harness.limits import SCM_MAX_FD
from fdsend_conformance.harness.processes import ChildSkip, call_in_child, set_soft_nofile
from fdsend_conformance.harness.sockets import UNIX_TYPES, rights_fds, socket_pair

__all__ = [
    "CAP_SYS_ADMIN",
    "CAP_SYS_RESOURCE",
    "CREDENTIALS_SIZE",
    "SCM_MAX_FD",
    "SCM_PIDFD",
    "SO_PASSPIDFD",
    "UNIX_TYPES",
    "ChildSkip",
    "Message",
    "at_eof",
    "become_a_fresh_user",
    "call_in_child",
    "close_on_exec",
    "fd_space",
    "has_capability",
    "in_initial_user_namespace",
    "kernel_at_least",
    "kick_unix_gc",
    "receive",
    "rights",
    "send_fds",
    "set_soft_nofile",
    "unix_pair",
    "unix_socket_inodes",
    "unprivileged_problem",
    "wait_until",
]

#: Linux >= 6.5; Python's socket module may not name them yet.
SO_PASSPIDFD: int = getattr(socket, "SO_PASSPIDFD", 76)
SCM_PIDFD: int = getattr(socket, "SCM_PIDFD", 0x04)

#: Capability bits (linux/capability.h) that lift the in-flight fd limit.
CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24

#: ``struct ucred``: pid, uid, gid.
_UCRED = struct.Struct("iII")
CREDENTIALS_SIZE = _UCRED.size

_INT_SIZE = array.array("i").itemsize


def unix_pair(
    own: Callable[..., object], kind: int = socket.SOCK_STREAM
) -> tuple[socket.socket, socket.socket]:
    """A connected AF_UNIX pair (with kernel timeouts), handed to ``own`` to close."""
    a, b = socket_pair(kind)
    own(a, b)
    return a, b


def rights(fds: Sequence[int]) -> list[tuple[int, int, bytes]]:
    """The ancillary data of one SCM_RIGHTS message carrying ``fds``."""
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]


def fd_space(count: int) -> int:
    """Control-buffer bytes for exactly one SCM_RIGHTS message of ``count`` fds."""
    return socket.CMSG_SPACE(count * _INT_SIZE)


def send_fds(sock: socket.socket, data: bytes, fds: Sequence[int], flags: int = 0) -> int:
    """``sendmsg`` of ``data`` with ``fds`` as SCM_RIGHTS; returns bytes sent."""
    return sock.sendmsg([data], rights(fds), flags)


@dataclass
class Message:
    """What one ``recvmsg`` returned, with the fds it installed decoded."""

    data: bytes
    fds: list[int]
    flags: int
    ancdata: list[tuple[int, int, bytes]]

    @property
    def ctrunc(self) -> bool:
        """Whether the kernel set MSG_CTRUNC."""
        return bool(self.flags & socket.MSG_CTRUNC)

    def items(self, level: int, kind: int) -> list[bytes]:
        """The payloads of every control message of ``level``/``kind``."""
        return [payload for lvl, knd, payload in self.ancdata if (lvl, knd) == (level, kind)]

    @property
    def credentials(self) -> tuple[int, int, int] | None:
        """(pid, uid, gid) of a whole SCM_CREDENTIALS message, if one came."""
        for payload in self.items(socket.SOL_SOCKET, socket.SCM_CREDENTIALS):
            if len(payload) >= CREDENTIALS_SIZE:
                pid, uid, gid = _UCRED.unpack_from(payload)
                return pid, uid, gid
        return None

    @property
    def pidfds(self) -> list[int]:
        """The fds of SCM_PIDFD messages."""
        return [_ints(payload)[0] for payload in self.items(socket.SOL_SOCKET, SCM_PIDFD)]

    @property
    def installed(self) -> list[int]:
        """Every fd this receive installed: SCM_RIGHTS and SCM_PIDFD."""
        return self.fds + self.pidfds


def _ints(payload: bytes) -> list[int]:
    whole = array.array("i")
    whole.frombytes(payload[: len(payload) - len(payload) % _INT_SIZE])
    return list(whole)


def receive(sock: socket.socket, bufsize: int, ancbufsize: int, flags: int = 0) -> Message:
    """``recvmsg`` with a control buffer of exactly ``ancbufsize`` bytes.

    The caller owns (and must close) every fd in :attr:`Message.installed`.
    """
    data, ancdata, msg_flags, _address = sock.recvmsg(bufsize, ancbufsize, flags)
    return Message(data, rights_fds(ancdata), msg_flags, list(ancdata))


def close_on_exec(fd: int) -> bool:
    """Whether ``fd`` has FD_CLOEXEC set."""
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


def at_eof(read_end: int) -> bool:
    """Whether the pipe ``read_end`` reads EOF now (every write end is closed).

    Never blocks: a pipe with a writer still open answers False.
    """
    ready, _, _ = select.select([read_end], [], [], 0)
    if not ready:
        return False
    blocking = os.get_blocking(read_end)
    os.set_blocking(read_end, False)
    try:
        return os.read(read_end, 1) == b""
    except BlockingIOError:
        return False
    finally:
        os.set_blocking(read_end, blocking)


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


def kick_unix_gc() -> None:
    """Release an AF_UNIX socket, which schedules the kernel's fd garbage collector.

    The collector runs when an AF_UNIX socket is released while fds are in
    flight; closing the last user fd of a socket that is itself in flight
    releases nothing, so an unreachable cycle may wait for the next release
    anywhere on the system (measured on Linux 6.18: seconds).
    """
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()


def kernel_at_least(major: int, minor: int) -> bool:
    """Whether the running kernel's release is at least ``major.minor``."""
    match = re.match(r"(\d+)\.(\d+)", platform.release())
    return match is not None and (int(match[1]), int(match[2])) >= (major, minor)


def has_capability(bit: int) -> bool:
    """Whether this process has capability ``bit`` in its effective set."""
    # Binary: after a drop to nobody the codec modules may be unreadable.
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def in_initial_user_namespace() -> bool:
    """Whether this process's user namespace maps every id to itself.

    Only then does root's capability count for checks made against the
    initial namespace, such as the in-flight fd limit.
    """
    try:
        with open("/proc/self/uid_map", encoding="utf-8") as uid_map:
            return uid_map.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return True  # no user namespaces at all


def unprivileged_problem() -> str | None:
    """Why a forked child cannot run without limit-lifting privileges, or None."""
    if os.geteuid() == 0:
        return None
    for bit, name in ((CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")):
        if has_capability(bit):
            return f"not root but holds {name}, which cannot be dropped here"
    return None


# Where to pick a fresh id: above the usual account, container and systemd
# ranges, below the ids a 32-bit signed field cannot hold.
FRESH_IDS = range(1 << 24, (1 << 31) - 1)


def _ids_in_use() -> set[int]:
    """Every uid and gid an account, a group or a running process has."""
    used = {entry.pw_uid for entry in pwd.getpwall()}
    used |= {entry.pw_gid for entry in pwd.getpwall()}
    used |= {entry.gr_gid for entry in grp.getgrall()}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                for line in status:
                    if line.startswith((b"Uid:", b"Gid:")):
                        used.update(int(field) for field in line.split()[1:])
        except OSError:
            continue  # gone, or not ours to read
    return used


def _fresh_id() -> int:
    """An id no one has: a user of its own, with nothing in flight yet.

    Random, so that two runs at once (other suites, other checkouts) do not
    pick the same one.
    """
    used = _ids_in_use()
    chooser = random.SystemRandom()
    while True:
        candidate = chooser.choice(FRESH_IDS)
        if candidate not in used:
            return candidate


def become_a_fresh_user() -> bool:
    """In a forked child: drop root to a fresh uid/gid; False if not root.

    The in-flight count is per user: under 'nobody' or the caller's own
    uid, fds other processes have in flight would count too.
    """
    if os.geteuid() != 0:
        return False
    fresh = _fresh_id()
    try:
        os.setgroups([])
        os.setgid(fresh)
        os.setuid(fresh)
    except OSError as exc:  # EPERM, or EINVAL for an id a namespace does not map
        raise ChildSkip(f"cannot drop root to the fresh uid/gid {fresh}: {exc}") from exc
    for bit in (CAP_SYS_RESOURCE, CAP_SYS_ADMIN):
        if has_capability(bit):
            raise ChildSkip(f"capability {bit} survived the drop to uid {fresh}")
    return True
