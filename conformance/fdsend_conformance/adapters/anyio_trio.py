"""Backend: anyio's ``UNIXSocketStream.send_fds``/``receive_fds`` on Trio.

Optional: loads only where anyio and Trio are installed
(``pip install 'fdsend-conformance[anyio]'``). The call mapping, and how the caller's
socket is kept out of anyio's ownership (the stream is never closed), are
in :mod:`fdsend_conformance.adapters._anyio`.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version as _dist_version
from typing import Any

import trio  # type: ignore[import-not-found, unused-ignore]  # noqa: F401  (unavailable without it)

from fdsend_conformance.adapters._anyio import ANYIO_VERSION, UNSUPPORTED, AnyioCalls

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "anyio-trio"
version = f"anyio {ANYIO_VERSION} (trio {_dist_version('trio')})"
truncation = "none"
unsupported = UNSUPPORTED

_calls = AnyioCalls("trio")


def sendfds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """``send_fds(msg, fds)`` on a stream over ``sock``."""
    return _calls.sendfds(sock, msg, flags, fds)


def recvfds(sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
    """``receive_fds(len, numfds)`` on a stream over ``sock``."""
    return _calls.recvfds(sock, len, flags, numfds)
