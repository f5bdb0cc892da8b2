"""Shared call mapping of the anyio backends (``anyio-asyncio``, ``anyio-trio``).

anyio passes fds with ``UNIXSocketStream.send_fds(message, fds)`` and
``UNIXSocketStream.receive_fds(msglen, maxfds)``. A stream comes from
``await UNIXSocketStream.from_socket(sock_or_fd)``, which *takes ownership*
of what it is given (closing the stream closes it) and makes it
non-blocking. Each call here is one ``anyio.run`` of: wrap, send or
receive, ``aclose``.

**Ownership.** The fdsend shape leaves the socket with the caller, and anyio
has no way to borrow one, so the adapter gives anyio a handle of its own: a
duplicate (``socket.dup()`` of a socket object, ``os.dup()`` of an int),
which the stream owns and ``aclose`` closes. A duplicate is another fd for
the same open file description, so it changes nothing the peer sees; what
anyio does to the description itself still shows: ``setblocking(False)``
sets O_NONBLOCK there, and the caller's socket sees it. When the descriptor
cannot be duplicated (closed, negative), or is of a type anyio does not
take (an object with ``fileno()``), the original goes to anyio unchanged,
so anyio's own error is what the caller gets.

Everything else is passed through: ``fds`` as given (``None`` becomes an
empty list), ``msg`` as given. anyio has no flags argument (``flags`` is not
used), works on SOCK_STREAM only, and returns ``(message, fds)`` without
msg_flags, so truncation is not reported (style ``none``). ``sendfds``
returns the payload length: anyio sends all of it or raises.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from importlib.metadata import version as _dist_version
from typing import Any, TypeVar

import anyio  # type: ignore[import-not-found, unused-ignore]
import anyio.abc  # type: ignore[import-not-found, unused-ignore]

from fdsend_conformance.backend import Feature

__all__ = ["ANYIO_VERSION", "UNSUPPORTED", "AnyioCalls"]

ANYIO_VERSION: str = _dist_version("anyio")

#: anyio's fd passing is on UNIX stream sockets only, and takes no flags.
UNSUPPORTED = frozenset({Feature.FLAGS, Feature.SEQPACKET, Feature.DGRAM})

_T = TypeVar("_T")


def _own_handle(sock: Any) -> tuple[Any, bool]:
    """What to give ``from_socket``: (handle, whether the adapter made it)."""
    try:
        if isinstance(sock, socket.socket):
            return sock.dup(), True
        if isinstance(sock, int) and not isinstance(sock, bool):
            return os.dup(sock), True
    except OSError:
        pass  # anyio reports the bad descriptor its own way
    return sock, False


def _discard(handle: Any) -> None:
    """Close a duplicate that no stream came to own."""
    if isinstance(handle, socket.socket):
        handle.close()
    else:
        os.close(handle)


class AnyioCalls:
    """``sendfds``/``recvfds`` run on one anyio event-loop back end."""

    def __init__(self, loop_backend: str) -> None:
        self.loop_backend = loop_backend

    def _run(self, sock: Any, use: Callable[[Any], Awaitable[_T]]) -> _T:
        async def main() -> _T:
            handle, ours = _own_handle(sock)
            try:
                stream = await anyio.abc.UNIXSocketStream.from_socket(handle)
            except BaseException:
                if ours:
                    _discard(handle)
                raise
            try:
                return await use(stream)
            finally:
                await stream.aclose()

        result: _T = anyio.run(main, backend=self.loop_backend)
        return result

    def sendfds(self, sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
        """``stream.send_fds(msg, fds)``; ``flags`` is not used."""
        given: Any = [] if fds is None else fds  # passed on as is

        async def send(stream: Any) -> None:
            await stream.send_fds(msg, given)

        self._run(sock, send)
        return memoryview(msg).nbytes

    def recvfds(self, sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
        """``stream.receive_fds(len, numfds)``; ``flags`` is not used."""

        async def receive(stream: Any) -> Any:
            return await stream.receive_fds(len, numfds)

        return self._run(sock, receive)
