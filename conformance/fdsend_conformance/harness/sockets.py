"""Socket pairs and other fds for the suite, each with a kernel timeout.

Every socket the suite creates gets SO_RCVTIMEO and SO_SNDTIMEO, so a
blocking call fails with EAGAIN instead of hanging, whatever the backend
does with the fd (socket object, int, ``fileno()``).
"""

from __future__ import annotations

import array
import os
import socket
import struct
import tempfile
from collections.abc import Callable

__all__ = [
    "FD_KINDS",
    "IO_TIMEOUT",
    "UNIX_TYPES",
    "distinct_fds",
    "drain_stream",
    "fill_send_buffer",
    "identity",
    "make_fd",
    "pending",
    "read_to_eof",
    "rights_fds",
    "set_io_timeout",
    "socket_pair",
    "tcp_pair",
    "unix_pair",
]

#: Seconds a blocking send or receive may wait before failing.
IO_TIMEOUT = 5.0


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


def pending(sock: socket.socket) -> bool:
    """Whether ``sock`` has anything to read right now (data or ancillary)."""
    try:
        data, ancdata, _flags, _addr = sock.recvmsg(
            1, socket.CMSG_SPACE(4 * 253), socket.MSG_PEEK | socket.MSG_DONTWAIT
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


def read_to_eof(sock: socket.socket) -> tuple[int, list[int]]:
    """Read a stream to its end with plain ``recvmsg``.

    Returns the number of payload bytes and the fds that came along, which
    the caller owns. Bounded by the socket's own (kernel) timeouts.
    """
    size = 0
    fds: list[int] = []
    while True:
        data, ancdata, _flags, _addr = sock.recvmsg(1 << 16, socket.CMSG_SPACE(4 * 253))
        fds += rights_fds(ancdata)
        if not data and not ancdata:
            return size, fds
        size += len(data)


def _regular_file() -> list[int]:
    fd, path = tempfile.mkstemp(prefix="fdsend-")
    os.unlink(path)
    return [fd]


def _tcp_socket() -> list[int]:
    return [socket.socket(socket.AF_INET, socket.SOCK_STREAM).detach()]


def _unix_socket() -> list[int]:
    return [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).detach()]


def _memfd() -> list[int]:
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:
        raise OSError("os.memfd_create is not available")
    return [memfd_create("fdsend")]


def _eventfd() -> list[int]:
    eventfd = getattr(os, "eventfd", None)
    if eventfd is None:
        raise OSError("os.eventfd is not available (Python < 3.10)")
    return [eventfd(0)]


def _devnull() -> list[int]:
    return [os.open(os.devnull, os.O_RDWR)]


def _pipe_read() -> list[int]:
    read_end, write_end = os.pipe()
    return [read_end, write_end]  # the first is the one to pass


def _pipe_write() -> list[int]:
    read_end, write_end = os.pipe()
    return [write_end, read_end]


#: Makers of one fd of each kind. Each returns the fd to pass first, then any
#: companions (the other pipe end) that must be closed with it.
FD_KINDS: dict[str, Callable[[], list[int]]] = {
    "file": _regular_file,
    "pipe-read": _pipe_read,
    "pipe-write": _pipe_write,
    "tcp": _tcp_socket,
    "unix": _unix_socket,
    "memfd": _memfd,
    "eventfd": _eventfd,
    "devnull": _devnull,
}


def make_fd(kind: str) -> list[int]:
    """Open an fd of ``kind`` (see :data:`FD_KINDS`); the caller closes all."""
    return FD_KINDS[kind]()


def identity(fd: int) -> tuple[int, int]:
    """The (st_dev, st_ino) of the file ``fd`` refers to."""
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def distinct_fds(count: int) -> list[int]:
    """``count`` pipe read ends, each a different file (their write ends closed).

    Cheap to make in bulk, and told apart by :func:`identity`, so the order
    of received fds can be checked.
    """
    fds: list[int] = []
    try:
        for _ in range(count):
            read_end, write_end = os.pipe()
            os.close(write_end)
            fds.append(read_end)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return fds


def fill_send_buffer(sock: socket.socket) -> int:
    """Fill ``sock``'s send buffer (it is left non-blocking); return how many bytes went in."""
    sock.setblocking(False)
    total = 0
    try:
        while True:
            total += sock.send(b"\0" * 65536)
    except BlockingIOError:
        pass
    try:
        while True:  # top up byte by byte in the last gap
            total += sock.send(b"\0")
    except BlockingIOError:
        return total


def drain_stream(sock: socket.socket, size: int) -> tuple[bytes, list[int]]:
    """Read ``size`` bytes from a stream, collecting every fd that comes along."""
    chunks: list[bytes] = []
    fds: list[int] = []
    got = 0
    while got < size:
        data, ancillary, _, _ = sock.recvmsg(min(size - got, 1 << 20), socket.CMSG_SPACE(4 * 16))
        assert data, "EOF before every byte arrived"
        fds += rights_fds(ancillary)
        chunks.append(data)
        got += len(data)
    return b"".join(chunks), fds
