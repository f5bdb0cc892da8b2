"""Things that stand for an fd: the spellings the coercion clauses exercise."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

__all__ = ["SOCKET_SPELLINGS", "Fileno"]


class Fileno:
    """An object whose ``fileno()`` returns whatever it was given, or raises it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def fileno(self) -> Any:
        if isinstance(self.value, BaseException):
            raise self.value
        return self.value


def _as_socket(sock: socket.socket) -> Any:
    return sock


def _as_int(sock: socket.socket) -> Any:
    return sock.fileno()


def _as_fileno_object(sock: socket.socket) -> Any:
    return Fileno(sock.fileno())


#: How a caller may give the socket to sendfds/recvfds.
SOCKET_SPELLINGS: dict[str, Callable[[socket.socket], Any]] = {
    "socket": _as_socket,
    "int": _as_int,
    "fileno-object": _as_fileno_object,
}
