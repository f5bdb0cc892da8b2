"""Backend: anyio's ``UNIXSocketStream.send_fds``/``receive_fds`` on asyncio.

Optional: loads only where anyio is installed (``pip install 'fdsend-conformance[anyio]'``).
The call mapping, and how the caller's socket is kept out of anyio's
ownership (the stream is never closed), are in
:mod:`fdsend_conformance.adapters._anyio`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fdsend_conformance.adapters._anyio import ANYIO_VERSION, UNSUPPORTED, AnyioCalls

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "anyio-asyncio"
version = f"anyio {ANYIO_VERSION} (asyncio)"
truncation = "none"
unsupported = UNSUPPORTED

_calls = AnyioCalls("asyncio")


def sendfds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """``send_fds(msg, fds)`` on a stream over ``sock``."""
    return _calls.sendfds(sock, msg, flags, fds)


def recvfds(sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
    """``receive_fds(len, numfds)`` on a stream over ``sock``."""
    return _calls.recvfds(sock, len, flags, numfds)
