"""Backend: the standard library's ``socket.send_fds`` / ``socket.recv_fds``.

Both take a socket object (no int, no ``fileno()`` object) and a list of int
fds; ``recv_fds`` returns the kernel's msg_flags, which this adapter exposes
as the result's truncation attributes.
"""

from __future__ import annotations

import platform
import socket
from collections.abc import Iterable
from typing import Any

from fdsend_conformance.backend import FlagsResult

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "stdlib"
version = f"Python {platform.python_version()}"
truncation = "attribute"
unsupported: frozenset[str] = frozenset()


def sendfds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """``socket.send_fds(sock, [msg], fds, flags)``; ``fds=None`` means no fds."""
    given: Any = [] if fds is None else fds  # passed on as is: stdlib's own checks apply
    return socket.send_fds(sock, [msg], given, flags)


def recvfds(sock: Any, len: int, flags: int = 0, numfds: int = 64) -> FlagsResult:
    """``socket.recv_fds(sock, len, numfds, flags)``, keeping msg_flags."""
    msg, fds, msg_flags, _address = socket.recv_fds(sock, len, numfds, flags)
    return FlagsResult(msg, fds, msg_flags)
