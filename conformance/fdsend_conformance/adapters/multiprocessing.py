"""Backend: ``multiprocessing.reduction.sendfds`` / ``recvfds``.

They carry no payload of their own (the one byte they send is the fd count
modulo 256, checked on receipt) and take no flags, so this backend lacks the
``payload`` and ``flags`` features. A short receive raises: ``recvfds``
asserts that the count matches, so truncation surfaces as an exception.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from multiprocessing import reduction
from typing import Any

from fdsend_conformance.backend import Feature

__all__ = [
    "name",
    "recvfds",
    "sendfds",
    "truncation",
    "truncation_error",
    "unsupported",
    "version",
]

name = "multiprocessing"
version = f"Python {platform.python_version()}"
truncation = "exception"
truncation_error = (AssertionError, RuntimeError)
unsupported = frozenset({Feature.PAYLOAD, Feature.FLAGS})


def sendfds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """``reduction.sendfds(sock, fds)``; ``msg`` and ``flags`` are not carried."""
    given: Any = [] if fds is None else fds  # passed on as is
    reduction.sendfds(sock, given)
    return 1  # the one count byte reduction.sendfds writes


def recvfds(sock: Any, len: int, flags: int = 0, numfds: int = 64) -> tuple[bytes, list[int]]:
    """``reduction.recvfds(sock, numfds)``; there is no payload to return."""
    fds: list[int] = reduction.recvfds(sock, numfds)
    return b"", fds
