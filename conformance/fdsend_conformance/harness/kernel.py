"""What the running kernel is and offers: its release, and feature probes.

A KERNEL check of a feature newer than the oldest kernel it runs on probes
for it first and skips with a reason that names the feature and the
release that brought it, instead of failing.
"""

from __future__ import annotations

import errno
import platform
import re
import socket

import pytest

__all__ = ["kernel_at_least", "require_sockopt"]


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
