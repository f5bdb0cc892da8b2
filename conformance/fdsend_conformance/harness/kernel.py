"""What the running kernel is and offers: its release, and feature probes.

A KERNEL check of a feature newer than the oldest kernel it runs on probes
for it first and skips with a reason that names the feature and the
release that brought it, instead of failing.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import platform
import re
import socket
from collections.abc import Callable

import pytest

from fdsend_conformance.harness.sockets import unix_pair

__all__ = [
    "IO_URING_SETUP",
    "NO_UNIX_OOB",
    "SIOCATMARK",
    "at_mark",
    "kernel_at_least",
    "kernel_version",
    "oob_stream_pair",
    "open_io_uring",
    "require_sockopt",
]

#: Why a MSG_OOB check is skipped where AF_UNIX refuses MSG_OOB.
NO_UNIX_OOB = "AF_UNIX MSG_OOB is not in this kernel (CONFIG_AF_UNIX_OOB, Linux >= 5.15)"

#: The io_uring_setup(2) syscall number, by machine: 425 in the unified
#: table (include/uapi/asm-generic/unistd.h) that x86-64 shares for it.
IO_URING_SETUP = {"x86_64": 425, "aarch64": 425, "riscv64": 425}

#: sizeof(struct io_uring_params) (include/uapi/linux/io_uring.h).
_IO_URING_PARAMS_SIZE = 120

_IO_URING_DISABLED = "/proc/sys/kernel/io_uring_disabled"


def kernel_version() -> str:
    """The running kernel's version, without its local suffix: "6.18.44"."""
    match = re.match(r"\d+(\.\d+)*", platform.release())
    return match[0] if match else platform.release()


def kernel_at_least(major: int, minor: int) -> bool:
    """Whether the running kernel's release is at least ``major.minor``."""
    match = re.match(r"(\d+)\.(\d+)", platform.release())
    return match is not None and (int(match[1]), int(match[2])) >= (major, minor)


def require_sockopt(sock: socket.socket, option: int, value: int, name: str, since: str) -> None:
    """Set SOL_SOCKET ``option`` to ``value`` on ``sock``, or skip the test.

    The kernel answers ENOPROTOOPT for an option it does not know (or does
    not offer on this socket type); the skip names ``name`` and ``since``,
    the release that brought it.
    """
    try:
        sock.setsockopt(socket.SOL_SOCKET, option, value)
    except OSError as exc:
        if exc.errno == errno.ENOPROTOOPT:
            pytest.skip(f"{name} is unknown to this kernel (ENOPROTOOPT; Linux >= {since})")
        raise


def oob_stream_pair(
    own: Callable[..., object], inline: bool = False
) -> tuple[socket.socket, socket.socket]:
    """A SOCK_STREAM pair whose receiver has SO_OOBINLINE as given; skips without MSG_OOB.

    Whether AF_UNIX takes MSG_OOB is asked on a throwaway pair, so the pair
    returned has never carried anything: even a read out-of-band byte leaves
    its (empty) skb queued, which some kernels stop at.
    """
    probe, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with probe, peer:
        try:
            probe.send(b"!", socket.MSG_OOB)
        except OSError as exc:
            if exc.errno == errno.EOPNOTSUPP:
                pytest.skip(NO_UNIX_OOB)
            raise
    a, b = unix_pair(own)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, int(inline))
    return a, b


#: ioctl(2) asking whether a stream socket's read position is at the
#: out-of-band mark (include/uapi/linux/sockios.h; sockatmark(3)).
SIOCATMARK = 0x8905


def at_mark(sock: socket.socket) -> bool:
    """SIOCATMARK's answer for ``sock``; OSError where the kernel refuses it."""
    answer = fcntl.ioctl(sock.fileno(), SIOCATMARK, bytes(4))
    return int.from_bytes(answer, "little") != 0


def open_io_uring() -> int:
    """A new io_uring instance's fd (close-on-exec; the caller closes it), or skip.

    Made with the raw io_uring_setup syscall (1 entry), so nothing beyond
    the standard library is needed. Skips where the machine's syscall
    number is not known here, where the sysctl disables io_uring, and
    where the kernel refuses (ENOSYS: not built in; EPERM: not allowed).
    """
    number = IO_URING_SETUP.get(platform.machine())
    if number is None:
        pytest.skip(f"io_uring_setup's syscall number on {platform.machine()} is not known here")
    try:
        with open(_IO_URING_DISABLED, encoding="ascii") as sysctl:
            disabled = int(sysctl.read())
    except OSError:
        disabled = 0  # before Linux 6.6 there is no such switch
    if disabled == 2:
        pytest.skip(f"io_uring is disabled ({_IO_URING_DISABLED} = 2)")
    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(_IO_URING_PARAMS_SIZE)
    fd = int(libc.syscall(number, 1, params))
    if fd < 0:
        code = ctypes.get_errno()
        if code in (errno.ENOSYS, errno.EPERM):
            pytest.skip(f"io_uring_setup failed: {errno.errorcode[code]} ({os.strerror(code)})")
        raise OSError(code, os.strerror(code))
    return fd
