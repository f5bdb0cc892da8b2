"""Backend: scgi's ``scgi.passfd.sendfd(sockfd, fd)`` / ``recvfd(sockfd)``.

Optional: loads only where scgi is installed (``pip install
'fdsend-conformance[scgi]'``). The original fdsend README names it first
among the related implementations.

Both calls take the socket as an int fd, and ``sendfd`` exactly one int fd:
the adapter passes a socket object's ``fileno()``, as an scgi caller writes
it, and any other spelling as given. ``sendfd`` sends a one-byte payload of
its own and takes no flags; ``recvfd`` returns the one fd and nothing else,
so the backend lacks the ``payload``, ``flags`` and ``one-fd`` features and
reports no truncation.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from importlib.metadata import version as _distribution_version
from typing import Any

from scgi import passfd  # type: ignore[import-not-found, import-untyped, unused-ignore]

from fdsend_conformance.backend import Feature

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "scgi"
version = f"scgi {_distribution_version('scgi')}"
truncation = "none"
unsupported = frozenset({Feature.PAYLOAD, Feature.FLAGS, Feature.ONE_FD})


def _sockfd(sock: Any) -> Any:
    """A socket object's fd, as scgi's callers pass it; anything else as given."""
    return sock.fileno() if isinstance(sock, socket.socket) else sock


def sendfds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """``passfd.sendfd(sockfd, fd)`` for the one fd; ``msg`` and ``flags`` are not carried."""
    given = [] if fds is None else list(fds)
    if len(given) != 1:
        raise ValueError(f"scgi's sendfd sends exactly one fd per call, not {len(given)}")
    passfd.sendfd(_sockfd(sock), given[0])
    return 1  # the one byte sendfd writes


def recvfds(sock: Any, len: int, flags: int = 0, numfds: int = 64) -> tuple[bytes, list[int]]:
    """``passfd.recvfd(sockfd)``: one fd, no payload."""
    return b"", [passfd.recvfd(_sockfd(sock))]
