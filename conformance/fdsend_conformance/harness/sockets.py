"""Socket pairs for the suite, each with a kernel timeout, and plain reads of them.

Every socket the suite creates gets SO_RCVTIMEO and SO_SNDTIMEO, so a
blocking call fails with EAGAIN instead of hanging, whatever the backend
does with the fd (socket object, int, ``fileno()``). The reads here use
plain ``recvmsg``, never the backend: they collect what a backend left
behind.
"""

from __future__ import annotations

import array
import os
import select
import socket
import struct
from collections.abc import Callable

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness.limits import MAX_RIGHTS_SPACE
from fdsend_conformance.harness.timeouts import IO_TIMEOUT

__all__ = [
    "CONNECTION_TYPES",
    "TYPE_FEATURES",
    "UNIX_TYPES",
    "fill_send_buffer",
    "pending",
    "recv_stream",
    "rights_fds",
    "set_io_timeout",
    "socket_pair",
    "tcp_pair",
    "unix_listener",
    "unix_pair",
]


def set_io_timeout(sock: socket.socket, seconds: float = IO_TIMEOUT) -> None:
    """Set the kernel's SO_RCVTIMEO/SO_SNDTIMEO on ``sock``."""
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


def socket_pair(kind: int = socket.SOCK_STREAM) -> tuple[socket.socket, socket.socket]:
    """A connected AF_UNIX pair of ``kind``, both ends with kernel timeouts."""
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    for sock in (a, b):
        set_io_timeout(sock)
    return a, b


#: The AF_UNIX socket types that pass fds, by the name tests use.
UNIX_TYPES = {
    "stream": socket.SOCK_STREAM,
    "seqpacket": socket.SOCK_SEQPACKET,
    "dgram": socket.SOCK_DGRAM,
}

#: The connection-oriented ones among them (listen, accept, embryo sockets).
CONNECTION_TYPES = {name: kind for name, kind in UNIX_TYPES.items() if kind != socket.SOCK_DGRAM}

#: The backend feature each AF_UNIX type other than SOCK_STREAM needs.
TYPE_FEATURES: dict[int, str] = {
    socket.SOCK_SEQPACKET: Feature.SEQPACKET,
    socket.SOCK_DGRAM: Feature.DGRAM,
}


def unix_pair(
    own: Callable[..., object], kind: int = socket.SOCK_STREAM
) -> tuple[socket.socket, socket.socket]:
    """A connected AF_UNIX pair (with kernel timeouts), handed to ``own`` to close."""
    a, b = socket_pair(kind)
    own(a, b)
    return a, b


def unix_listener(
    own: Callable[..., object], kind: int = socket.SOCK_STREAM, backlog: int = 8
) -> tuple[socket.socket, Callable[[], socket.socket]]:
    """A listening AF_UNIX socket on an autobound abstract address, and a connector.

    The connector returns a new client connected to it (not yet accepted:
    the listener holds the embryo). Every socket gets kernel timeouts and is
    handed to ``own`` to close.
    """
    listener = socket.socket(socket.AF_UNIX, kind)
    own(listener)
    set_io_timeout(listener)
    listener.bind("")  # an empty address autobinds to a fresh abstract name
    listener.listen(backlog)
    address = listener.getsockname()

    def connect() -> socket.socket:
        client = socket.socket(socket.AF_UNIX, kind)
        own(client)
        set_io_timeout(client)
        client.connect(address)
        return client

    return listener, connect


def tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair over loopback, both ends with kernel timeouts."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(IO_TIMEOUT)
        client = socket.create_connection(listener.getsockname(), timeout=IO_TIMEOUT)
        server, _ = listener.accept()
    for sock in (client, server):
        sock.settimeout(None)
        set_io_timeout(sock)
    return client, server


def fill_send_buffer(sock: socket.socket) -> int:
    """Fill ``sock``'s send buffer to the last byte; return how many bytes went in.

    Leaves ``sock`` in the mode it had (blocking, or not), for the backend's calls to decide.
    """
    mode = sock.gettimeout()
    sock.setblocking(False)
    total = 0
    try:
        for chunk in (b"\0" * 65536, b"\0"):  # big writes, then byte by byte into the last gap
            try:
                while True:
                    total += sock.send(chunk)
            except BlockingIOError:
                pass
    finally:
        sock.settimeout(mode)
    return total


def pending(sock: socket.socket) -> bool:
    """Whether ``sock`` has anything to read right now (data or ancillary)."""
    try:
        data, ancdata, _flags, _addr = sock.recvmsg(
            1, MAX_RIGHTS_SPACE, socket.MSG_PEEK | socket.MSG_DONTWAIT
        )
    except BlockingIOError:
        return False
    # A peek installs the fds again: close them, they are only evidence.
    for fd in rights_fds(ancdata):
        os.close(fd)
    return bool(data or ancdata)


def rights_fds(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The fds of every SCM_RIGHTS message of a ``recvmsg`` result, in order.

    Whole ints only: a cut message's trailing bytes are not an fd.
    """
    fds = array.array("i")
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    return list(fds)


def recv_stream(
    sock: socket.socket, size: int | None = None, wait: float = IO_TIMEOUT
) -> tuple[bytes, list[int]]:
    """Receive ``size`` bytes of a stream (None: up to its end) with plain ``recvmsg``.

    Returns the bytes and every fd that came along, which the caller owns.
    Raises EOFError if the stream ends before ``size`` bytes. A socket a
    backend left non-blocking is waited on for at most ``wait`` seconds a
    read (TimeoutError after); a blocking one is bounded by its own kernel
    timeouts.
    """
    chunks: list[bytes] = []
    fds: list[int] = []
    got = 0
    while size is None or got < size:
        want = 1 << 16 if size is None else min(size - got, 1 << 20)
        try:
            data, ancdata, _flags, _addr = sock.recvmsg(want, MAX_RIGHTS_SPACE)
        except BlockingIOError:
            if not select.select([sock], [], [], wait)[0]:
                raise TimeoutError(f"nothing to read for {wait:g} s") from None
            continue
        fds += rights_fds(ancdata)
        if not data and not ancdata:
            if size is None:
                break
            raise EOFError(f"the stream ended after {got} of {size} bytes")
        chunks.append(data)
        got += len(data)
    return b"".join(chunks), fds
