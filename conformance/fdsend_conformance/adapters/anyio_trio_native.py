"""Backend (async): anyio's own ``send_fds``/``receive_fds``, awaited natively on trio.

Optional: loads only where anyio is installed (``pip install fdsend[anyio]``).
The coroutines are :func:`fdsend_conformance.adapters._anyio.send_fds` and
``receive_fds``: no ``anyio.run`` per call, the suite awaits them on its
one loop for the test. anyio makes the socket non-blocking itself, so the
suite passes sockets as they are.
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
