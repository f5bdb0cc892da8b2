"""Copy an fd out of another process: ``pidfd_open(2)`` and ``pidfd_getfd(2)``.

The plumbing of the driver protocol: fds cross between the suite and a
driver this way, never through the implementation under test. The copy
refers to the same open file description and has FD_CLOEXEC set. No module
of pytest is imported here: the reference driver uses this module too.
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["allow_ptracer", "pidfd_getfd", "pidfd_open"]

# pidfd_getfd is 438 on every architecture that numbers new system calls
# from the table unified in Linux 5.1 (x86_64, arm64, riscv64, ...; alpha and
# ia64 add offsets of their own). pidfd_open comes from os.pidfd_open.
_PIDFD_GETFD = 438
_PR_SET_PTRACER = 0x59616D61  # "Yama"
_PR_SET_PTRACER_ANY = -1 & 0xFFFFFFFFFFFFFFFF

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]


def pidfd_open(pid: int) -> int:
    """A pidfd for process ``pid`` (close-on-exec)."""
    return os.pidfd_open(pid)


def pidfd_getfd(pidfd: int, fd: int) -> int:
    """A copy, in this process, of fd ``fd`` of the process ``pidfd`` refers to.

    Raises OSError with the kernel's errno: EBADF when that process has no
    fd ``fd``, EPERM when this process may not ptrace it.
    """
    copy = _libc.syscall(
        ctypes.c_long(_PIDFD_GETFD), ctypes.c_int(pidfd), ctypes.c_int(fd), ctypes.c_uint(0)
    )
    if copy < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"pidfd_getfd(fd {fd}): {os.strerror(err)}")
    return int(copy)


def allow_ptracer(pid: int | None = None) -> None:
    """Let process ``pid`` (None: any) copy fds from this one under Yama's ptrace scope 1.

    Yama lets a process ptrace only its descendants; a driver, the suite's
    child, copies fds from its parent. Where Yama is absent the call fails
    with EINVAL and nothing needs allowing.
    """
    who = _PR_SET_PTRACER_ANY if pid is None else pid
    if _libc.prctl(_PR_SET_PTRACER, who, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        if err != 22:  # EINVAL: no Yama here
            raise OSError(err, f"prctl(PR_SET_PTRACER): {os.strerror(err)}")
