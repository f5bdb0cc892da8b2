"""Shared call mapping of the anyio backends (``anyio-asyncio``, ``anyio-trio``).

anyio passes fds with ``UNIXSocketStream.send_fds(message, fds)`` and
``UNIXSocketStream.receive_fds(msglen, maxfds)``. A stream comes from
``await UNIXSocketStream.from_socket(sock_or_fd)``, which *takes ownership*
of what it is given (closing the stream closes it) and makes it
non-blocking. Each call here is: wrap, then send or receive; the
synchronous backends run each in one ``anyio.run`` (:class:`AnyioCalls`),
the native ones (``anyio-asyncio-native``, ``anyio-trio-native``) are the
coroutines themselves, awaited on the suite's loop for the test.

**Ownership.** The fdsend shape leaves the socket with the caller, and anyio
has no way to borrow one, so the adapter never lets the stream close it:
``aclose`` is not called. A socket object is handed to anyio as it is (the
stream wraps that same object, which the caller keeps). For an int anyio
makes its own ``socket.socket(fileno=...)``, which would close the caller's
fd once collected; the adapter detaches it after the call. No fd is
duplicated, so no new fd number appears that could stand in for one the
caller closed. What anyio does to the socket still shows: ``from_socket``
calls ``setblocking(False)``, which sets O_NONBLOCK on the open file
description (and, for a socket object, its timeout to 0.0), and nothing
undoes it. An object with ``fileno()`` goes to anyio unchanged, which
refuses it.

Everything else is passed through: ``fds`` as given (``None`` becomes an
empty list), ``msg`` as given. anyio has no flags argument (``flags`` is not
used), works on SOCK_STREAM only, and returns ``(message, fds)`` without
msg_flags, so truncation is not reported (style ``none``). ``sendfds``
returns the payload length: anyio sends all of it or raises.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import version as _dist_version
from typing import Any, TypeVar

import anyio  # type: ignore[import-not-found, unused-ignore]
import anyio.abc  # type: ignore[import-not-found, unused-ignore]

from fdsend_conformance.backend import Feature

__all__ = ["ANYIO_VERSION", "TRUNCATION", "UNSUPPORTED", "AnyioCalls", "receive_fds", "send_fds"]

ANYIO_VERSION: str = _dist_version("anyio")

#: anyio returns no msg_flags: truncation is not reported.
TRUNCATION = "none"

#: anyio's fd passing is on UNIX stream sockets only, and takes no flags.
UNSUPPORTED = frozenset({Feature.FLAGS, Feature.SEQPACKET, Feature.DGRAM})

_T = TypeVar("_T")


async def _on_stream(sock: Any, use: Callable[[Any], Awaitable[_T]]) -> _T:
    """Wrap ``sock`` in a stream, ``use`` it, and keep the caller's socket open."""
    stream = await anyio.abc.UNIXSocketStream.from_socket(sock)
    try:
        return await use(stream)
    finally:
        if not isinstance(sock, socket.socket):
            # anyio wrapped the caller's int in a socket object of its
            # own: detach it so that collecting it closes nothing.
            stream.extra(anyio.abc.SocketAttribute.raw_socket).detach()


async def send_fds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """``await stream.send_fds(msg, fds)`` on the running loop; ``flags`` is not used."""
    given: Any = [] if fds is None else fds  # passed on as is

    async def send(stream: Any) -> None:
        await stream.send_fds(msg, given)

    await _on_stream(sock, send)
    return memoryview(msg).nbytes


async def receive_fds(sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
    """``await stream.receive_fds(len, numfds)`` on the running loop; ``flags`` is not used."""

    async def receive(stream: Any) -> Any:
        return await stream.receive_fds(len, numfds)

    return await _on_stream(sock, receive)


class AnyioCalls:
    """``sendfds``/``recvfds`` run on one anyio event-loop back end.

    An anyio backend module exposes an instance's bound methods as its own
    ``sendfds`` and ``recvfds``.
    """

    def __init__(self, loop_backend: str) -> None:
        self.loop_backend = loop_backend

    def sendfds(self, sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
        """:func:`send_fds` in one ``anyio.run``."""
        sent: int = anyio.run(send_fds, sock, msg, flags, fds, backend=self.loop_backend)
        return sent

    def recvfds(self, sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
        """:func:`receive_fds` in one ``anyio.run``."""
        return anyio.run(receive_fds, sock, len, flags, numfds, backend=self.loop_backend)
