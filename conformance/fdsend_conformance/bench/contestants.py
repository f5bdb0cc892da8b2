"""What is measured: the floors and the backends, as round runners.

A runner gets a connected socket pair and a case, and runs ``rounds``
rounds: the sender side sends, the receiver side receives the payload (all
of it, on a stream) and closes the fds.
"""

from __future__ import annotations

import array
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from fdsend_conformance.backend import Backend, Feature

__all__ = ["Case", "Contestant", "backend_contestant", "call_floor", "inline"]

_SOL_SOCKET = int(socket.SOL_SOCKET)
_SCM_RIGHTS = int(socket.SCM_RIGHTS)
_CLOEXEC = int(socket.MSG_CMSG_CLOEXEC)


@dataclass(frozen=True)
class Case:
    """One benchmark configuration."""

    fds: int
    payload: int
    cross_process: bool

    @property
    def label(self) -> str:
        where = "2 processes" if self.cross_process else "in-process"
        size = f"{self.payload // 1024} KiB" if self.payload >= 1024 else f"{self.payload} B"
        return f"{self.fds} fd{'s' if self.fds > 1 else ''}, {size}, {where}"


Send = Callable[[socket.socket, bytes, list[int]], None]
Receive = Callable[[socket.socket, int, int], int]  # returns payload bytes still to read


@dataclass(frozen=True)
class Contestant:
    """A named pair of send/receive steps."""

    name: str
    send: Send
    receive: Receive
    carries_payload: bool = True

    def receive_round(self, sock: socket.socket, size: int, numfds: int) -> None:
        """Receive one message, drain the rest of the payload, close the fds."""
        left = self.receive(sock, size if self.carries_payload else 0, numfds)
        while left > 0:
            chunk = sock.recv(left)
            if not chunk:
                raise EOFError("peer closed mid-payload")
            left -= len(chunk)


def _close(fds: object) -> None:
    for fd in fds:  # type: ignore[attr-defined]
        os.close(fd)


# The inline floor: sendmsg/recvmsg written out, nothing else.
def _inline_send(sock: socket.socket, payload: bytes, fds: list[int]) -> None:
    sock.sendmsg([payload], [(_SOL_SOCKET, _SCM_RIGHTS, array.array("i", fds))])


def _inline_receive(sock: socket.socket, size: int, numfds: int) -> int:
    msg, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(4 * numfds), _CLOEXEC)
    for _, _, data in ancillary:
        for fd in array.array("i", data):
            os.close(fd)
    return size - len(msg)


inline = Contestant("inline", _inline_send, _inline_receive)


# The Python call floor: the smallest function API doing the same work.
def floor_sendfds(sock: socket.socket, msg: bytes, fds: list[int]) -> int:
    """sendmsg with one SCM_RIGHTS entry built by array from a list of ints."""
    return sock.sendmsg([msg], [(_SOL_SOCKET, _SCM_RIGHTS, array.array("i", fds))])


def floor_recvfds(sock: socket.socket, size: int, numfds: int) -> tuple[bytes, tuple[int, ...]]:
    """recvmsg with MSG_CMSG_CLOEXEC; fds parsed with array.frombytes."""
    msg, ancillary, _, _ = sock.recvmsg(size, socket.CMSG_SPACE(4 * numfds), _CLOEXEC)
    fds = array.array("i")
    for _, _, data in ancillary:
        fds.frombytes(data[: len(data) - len(data) % 4])
    return msg, tuple(fds)


def _floor_send(sock: socket.socket, payload: bytes, fds: list[int]) -> None:
    floor_sendfds(sock, payload, fds)


def _floor_receive(sock: socket.socket, size: int, numfds: int) -> int:
    msg, fds = floor_recvfds(sock, size, numfds)
    _close(fds)
    return size - len(msg)


call_floor = Contestant("call-floor", _floor_send, _floor_receive)


def backend_contestant(backend: Backend) -> Contestant:
    """A backend measured as it is, adapter included."""
    send_fds, recv_fds = backend.impl.sendfds, backend.impl.recvfds

    def send(sock: socket.socket, payload: bytes, fds: list[int]) -> None:
        send_fds(sock, payload, 0, fds)

    def receive(sock: socket.socket, size: int, numfds: int) -> int:
        msg, fds = recv_fds(sock, size, 0, numfds)
        _close(fds)
        return size - len(msg)

    return Contestant(backend.name, send, receive, backend.supports(Feature.PAYLOAD))
