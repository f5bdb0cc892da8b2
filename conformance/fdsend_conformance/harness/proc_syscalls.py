"""Tell when a thread is asleep in the kernel, inside a given system call.

Reads ``/proc/<pid>/task/<tid>/syscall`` (the number and arguments of the
system call a stopped thread is in) and ``.../stat`` (its scheduler state),
so that a test can act on a thread that is really blocked in recvmsg(2) or
sendmsg(2) -- signal it, kill it -- instead of guessing with a timer.

System call numbers differ between architectures; the ones known here were
read from the kernel's uapi headers (``asm/unistd_64.h`` on x86_64,
``asm-generic/unistd.h`` on aarch64 and riscv64).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

__all__ = [
    "EVENT_LOOP_WAITS",
    "Reading",
    "Unavailable",
    "read",
    "syscall_name",
    "syscall_numbers",
    "wait_until_blocked",
]

_X86_64 = {
    "poll": 7,
    "select": 23,
    "sendmsg": 46,
    "recvmsg": 47,
    "epoll_wait": 232,
    "pselect6": 270,
    "ppoll": 271,
    "epoll_pwait": 281,
    "epoll_pwait2": 441,
}
_GENERIC = {
    "epoll_pwait": 22,
    "pselect6": 72,
    "ppoll": 73,
    "sendmsg": 211,
    "recvmsg": 212,
    "epoll_pwait2": 441,
}
_NUMBERS: dict[str, dict[str, int]] = {
    "x86_64": _X86_64,
    "aarch64": _GENERIC,
    "riscv64": _GENERIC,
}

#: Where a backend built on an event loop sleeps while its socket is not
#: ready (its socket is non-blocking, so it never sleeps in the transfer).
EVENT_LOOP_WAITS = (
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
)

#: Seconds between two looks at a thread that is not blocked yet.
_POLL_INTERVAL = 0.001


class Unavailable(Exception):
    """This machine cannot say which system call a thread is blocked in."""


@dataclass(frozen=True)
class Reading:
    """One look at a thread: its state and the system call it sleeps in."""

    state: str  # from /proc/.../stat: 'R' running, 'S' interruptible sleep, ...
    syscall: int | None  # None: running, or not in a system call
    args: tuple[int, ...]  # the call's six arguments (empty when syscall is None)

    def blocked_in(self, numbers: frozenset[int]) -> bool:
        """Asleep (interruptibly) in one of the system calls ``numbers``."""
        return self.state == "S" and self.syscall in numbers


def syscall_numbers(*names: str) -> frozenset[int]:
    """The numbers of the system calls ``names`` on this architecture.

    Names this architecture lacks (aarch64 has no ``poll``) are left out.
    Raises :class:`Unavailable` on an architecture not known here.
    """
    machine = os.uname().machine
    table = _NUMBERS.get(machine)
    if table is None:
        raise Unavailable(f"system call numbers for {machine} are not known")
    return frozenset(table[name] for name in names if name in table)


def syscall_name(number: int | None) -> str:
    """The name of system call ``number`` on this architecture, or the number."""
    table = _NUMBERS.get(os.uname().machine, {})
    names = [name for name, known in table.items() if known == number]
    return names[0] if names else str(number)


def _task(tid: int, pid: int | None) -> str:
    return f"/proc/{'self' if pid is None else pid}/task/{tid}"


def read(tid: int, pid: int | None = None) -> Reading:
    """Look at thread ``tid`` of process ``pid`` (default: this process).

    Raises :class:`Unavailable` if /proc does not let us (no such file, no
    permission, a kernel without the syscall file); OSError otherwise.
    """
    task = _task(tid, pid)
    try:
        with open(f"{task}/syscall") as file:
            before = file.read().split()
        with open(f"{task}/stat") as file:
            stat = file.read()
        with open(f"{task}/syscall") as file:
            after = file.read().split()
    except (FileNotFoundError, PermissionError) as exc:
        raise Unavailable(f"cannot read {task}/syscall or stat: {exc.strerror}") from exc
    # The command name in stat may hold spaces and parentheses: the state
    # follows the last ')'.
    state = stat.rpartition(")")[2].split()[0]
    # The kernel reports 'running' for a thread on a CPU, '-1 sp pc' for one
    # stopped outside a system call. Two equal readings around the state
    # mean the thread stayed in that call while we looked.
    if before != after or not before or before[0] in ("running", "-1"):
        return Reading(state, None, ())
    return Reading(state, int(before[0]), tuple(int(arg, 16) for arg in before[1:7]))


def wait_until_blocked(
    tid: int,
    numbers: frozenset[int],
    timeout: float,
    *,
    pid: int | None = None,
    stop: threading.Event | None = None,
) -> Reading | None:
    """Look at a thread until it is asleep in one of the system calls ``numbers``.

    Returns that reading, or None if ``timeout`` seconds passed first, the
    thread ended (or its process exited), or ``stop`` was set (by a caller that knows the thread
    went past the call).
    """
    pause = stop if stop is not None else threading.Event()
    deadline = time.monotonic() + timeout
    while not pause.is_set() and time.monotonic() < deadline:
        try:
            reading = read(tid, pid)
        except (Unavailable, ProcessLookupError):
            return None  # the thread is gone
        if reading.blocked_in(numbers):
            return reading
        if reading.state in ("Z", "X"):
            return None  # exited, not reaped yet
        pause.wait(_POLL_INTERVAL)
    return None
