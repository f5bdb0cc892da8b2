"""Backend (async): anyio-asyncio-native's coroutines, awaited natively on trio.

Loads only where anyio and Trio are installed. See
:mod:`~fdsend_conformance.adapters.anyio_asyncio_native` for what is awaited.
"""

from __future__ import annotations

from importlib.metadata import version as _dist_version

import trio  # type: ignore[import-not-found, unused-ignore]  # noqa: F401  (unavailable without it)

from fdsend_conformance.adapters._anyio import ANYIO_VERSION, UNSUPPORTED
from fdsend_conformance.adapters._anyio import receive_fds as recvfds
from fdsend_conformance.adapters._anyio import send_fds as sendfds

__all__ = ["event_loops", "name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "anyio-trio-native"
version = f"anyio {ANYIO_VERSION} (native, trio {_dist_version('trio')})"
truncation = "none"
unsupported = UNSUPPORTED
event_loops = ("trio",)
