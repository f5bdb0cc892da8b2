"""Fds of every kind the suite passes, and how to tell one file from another.

:data:`FD_KINDS` makes one fd of each kind (file, pipe ends, sockets, memfd,
eventfd, /dev/null); :func:`distinct_fds` makes many cheap ones that are each a
different file; :func:`identity` names the file an fd refers to, so a test
can check that the fds received are the ones sent, in order.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable, Iterable

__all__ = ["FD_KINDS", "distinct_fds", "identities", "identity", "make_fd"]


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


def identities(fds: Iterable[int]) -> list[tuple[int, int]]:
    """The :func:`identity` of each fd of ``fds``, in order.

    Equal for the fds received and the fds sent when the same files arrived
    in the same order.
    """
    return [identity(fd) for fd in fds]


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
