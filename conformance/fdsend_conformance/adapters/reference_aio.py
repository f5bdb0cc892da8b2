"""Backend: the reference's asyncio API, :mod:`fdsend.aio` (async backend).

It takes non-blocking sockets only (ValueError for a blocking one), so the
suite hands it each socket non-blocking for the call (``needs_nonblocking``).
"""

from __future__ import annotations

import fdsend
from fdsend.aio import recvfds, sendfds

__all__ = [
    "event_loops",
    "name",
    "needs_nonblocking",
    "recvfds",
    "sendfds",
    "truncation",
    "unsupported",
    "version",
]

name = "reference-aio"
version = fdsend.__version__
truncation = "attribute"
unsupported: frozenset[str] = frozenset()
event_loops = ("asyncio", "uvloop")
needs_nonblocking = True
