"""Backend: anyio's ``UNIXSocketStream.send_fds``/``receive_fds`` on Trio.

Optional: loads only where anyio and Trio are installed
(``pip install 'fdsend-conformance[anyio]'``). The call mapping, and how the caller's
socket is kept out of anyio's ownership (the stream is never closed), are
in :mod:`fdsend_conformance.adapters._anyio`.
"""

from __future__ import annotations

from importlib.metadata import version as _dist_version

import trio  # type: ignore[import-not-found, unused-ignore]  # noqa: F401  (unavailable without it)

from fdsend_conformance.adapters._anyio import ANYIO_VERSION, AnyioCalls
from fdsend_conformance.adapters._anyio import TRUNCATION as truncation
from fdsend_conformance.adapters._anyio import UNSUPPORTED as unsupported

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "anyio-trio"
version = f"anyio {ANYIO_VERSION} (trio {_dist_version('trio')})"

_calls = AnyioCalls("trio")
sendfds, recvfds = _calls.sendfds, _calls.recvfds
