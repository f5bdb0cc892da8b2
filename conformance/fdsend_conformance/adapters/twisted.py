"""Backend: Twisted's ``twisted.python.sendmsg.sendmsg`` / ``recvmsg``.

Optional: loads only where Twisted is installed and still ships
``twisted.python.sendmsg`` (``pip install 'fdsend-conformance[twisted]'``).

They are Twisted's thin sendmsg(2)/recvmsg(2) wrappers: ancillary data goes
in and comes out as ``(level, type, data)`` tuples, and ``recvmsg`` hands
back the kernel's msg_flags. The adapter does what Twisted's own UNIX
transport (``twisted.internet.unix``) does with them: fds are packed as C
ints with ``struct`` into one SCM_RIGHTS message (the transport sends one
per call, each packed the same way), and on receipt every SCM_RIGHTS message
is unpacked with ``struct`` while other control messages are skipped (the
transport logs them). ``numfds`` becomes ``recvmsg``'s ``cmsgSize`` in bytes,
``numfds * 4``, which ``recvmsg`` itself turns into ``CMSG_SPACE(cmsgSize)``.
Truncation is read from the returned msg_flags (style ``attribute``).
"""

from __future__ import annotations

import builtins
import socket
import struct
from collections.abc import Iterable
from typing import Any

from twisted import __version__ as _twisted_version  # type: ignore[import-not-found, unused-ignore]
from twisted.python import sendmsg as _sendmsg  # type: ignore[import-not-found, unused-ignore]

from fdsend_conformance.backend import FlagsResult

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "twisted"
version = f"Twisted {_twisted_version}"
truncation = "attribute"
unsupported: frozenset[str] = frozenset()

_INT_SIZE = struct.calcsize("i")


def sendfds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """``sendmsg(sock, msg, [(SOL_SOCKET, SCM_RIGHTS, packed fds)], flags)``."""
    given = [] if fds is None else list(fds)
    ancillary = []
    if given:
        packed = struct.pack("i" * len(given), *given)
        ancillary.append((socket.SOL_SOCKET, _sendmsg.SCM_RIGHTS, packed))
    return int(_sendmsg.sendmsg(sock, msg, ancillary, flags))


def recvfds(sock: Any, len: int, flags: int = 0, numfds: int = 64) -> FlagsResult:
    """``recvmsg(sock, len, numfds * 4, flags)``; fds from its SCM_RIGHTS data."""
    received = _sendmsg.recvmsg(sock, len, numfds * _INT_SIZE, flags)
    fds: list[int] = []
    for level, kind, data in received.ancillary:
        if level == socket.SOL_SOCKET and kind == _sendmsg.SCM_RIGHTS:
            count = builtins.len(data) // _INT_SIZE
            fds.extend(struct.unpack("i" * count, data))
    return FlagsResult(received.data, fds, received.flags)
