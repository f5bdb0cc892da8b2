"""Backend: anyio's ``UNIXSocketStream.send_fds``/``receive_fds`` on asyncio.

Optional: loads only where anyio is installed (``pip install 'fdsend-conformance[anyio]'``).
The call mapping, and how the caller's socket is kept out of anyio's
ownership (the stream is never closed), are in
:mod:`fdsend_conformance.adapters._anyio`.
"""

from __future__ import annotations

from fdsend_conformance.adapters._anyio import ANYIO_VERSION, AnyioCalls
from fdsend_conformance.adapters._anyio import TRUNCATION as truncation
from fdsend_conformance.adapters._anyio import UNSUPPORTED as unsupported

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "anyio-asyncio"
version = f"anyio {ANYIO_VERSION} (asyncio)"

_calls = AnyioCalls("asyncio")
sendfds, recvfds = _calls.sendfds, _calls.recvfds
