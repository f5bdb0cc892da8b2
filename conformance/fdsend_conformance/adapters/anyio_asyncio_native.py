"""Backend (async): anyio's own ``send_fds``/``receive_fds``, awaited natively on asyncio.

Optional: loads only where anyio is installed (``pip install fdsend[anyio]``).
The coroutines are :func:`fdsend_conformance.adapters._anyio.send_fds` and
``receive_fds``: no ``anyio.run`` per call, the suite awaits them on its
one loop for the test. anyio makes the socket non-blocking itself, so the
suite passes sockets as they are.
"""

from __future__ import annotations

from fdsend_conformance.adapters._anyio import ANYIO_VERSION, UNSUPPORTED
from fdsend_conformance.adapters._anyio import receive_fds as recvfds
from fdsend_conformance.adapters._anyio import send_fds as sendfds

__all__ = ["event_loops", "name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "anyio-asyncio-native"
version = f"anyio {ANYIO_VERSION} (native, asyncio)"
truncation = "none"
unsupported = UNSUPPORTED
event_loops = ("asyncio", "uvloop")
