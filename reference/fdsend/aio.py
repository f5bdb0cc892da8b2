"""fdsend for asyncio: :func:`sendfds` and :func:`recvfds` as coroutines.

The same arguments, rules, exceptions and :class:`fdsend.Received` as the
synchronous API, on the running asyncio event loop (uvloop's too)::

    import asyncio, socket, fdsend.aio

    async def main(sock: socket.socket) -> None:
        sock.setblocking(False)
        msg, fds = await fdsend.aio.recvfds(sock, 1024, numfds=4)

**The socket.** ``sock`` is a non-blocking AF_UNIX socket: a socket object
whose timeout is 0.0 (``setblocking(False)``), or an int or ``fileno()``
object whose open file has O_NONBLOCK. A blocking socket, or one with a
timeout, raises ValueError before anything is done, because a call on it
would stall the whole loop; as with ``loop.sock_recv``, nothing changes the
socket's mode for you (O_NONBLOCK belongs to the open file, which other
processes may share). A socket already closed gets the synchronous API's
OSError (EBADF).

**Waiting.** Each call first makes the synchronous call. When that can
complete it does, and the coroutine returns without yielding to the loop.
On EAGAIN it waits for the socket to poll readable (writable, for a send)
through the loop's reader (writer) callbacks, then tries again. With
``MSG_DONTWAIT`` in ``flags`` it does not wait: BlockingIOError, as from the
synchronous call.

**Cancellation is safe.** While a call waits it has done nothing: a
cancelled receive has consumed no byte and installed no fd (the next
receive gets the whole message), and a cancelled send has sent nothing. The
kernel installs fds inside the synchronous call, and no await lies between
that and the return. A timeout (``asyncio.timeout()``, ``wait_for``) is a
cancellation, so it leaves the socket usable, with nothing lost.

**Concurrency.** Any number of tasks may wait on one socket. On
SOCK_SEQPACKET and SOCK_DGRAM each receive takes one whole message with its
own fds: nothing is lost, duplicated or mixed. On SOCK_STREAM, as with any
stream, two tasks receiving at once split the bytes between them at
arbitrary points; every fd still reaches exactly one of them, with the
bytes of the send it came with (the kernel ends a read where fds begin),
but which task gets which is not defined, and a sender that needs several
calls for one payload must not share the socket with another sender. While
a call waits, do not register your own reader (writer) for the same fd on
the loop, and close the socket only once the calls waiting on it are
cancelled: the loop is not told of the close.
"""

from __future__ import annotations

import _socket
import os
import socket
from asyncio import AbstractEventLoop, Future, get_running_loop
from collections.abc import Callable, Iterable
from functools import partial
from itertools import islice
from typing import Any, TypeVar

from fdsend import SCM_MAX_FD, Received
from fdsend import recvfds as _recvfds
from fdsend import sendfds as _sendfds

__all__ = ["recvfds", "sendfds"]

_MSG_DONTWAIT = int(socket.MSG_DONTWAIT)
_SocketBase = _socket.socket

#: The futures of the calls waiting on one (loop, fd, direction), oldest first.
#: One loop callback per fd serves them all: the loop keeps one reader per fd,
#: and a second add_reader would silently replace the first task's.
_waiting: dict[tuple[AbstractEventLoop, int, bool], list[Future[None]]] = {}


def _refuse_blocking(sock: Any) -> None:
    """Raise ValueError if ``sock`` is a blocking socket (or has a timeout).

    What is not a usable fd at all is left to the synchronous call, which
    raises its own error for it (EBADF, ENOTSOCK, TypeError, ...).
    """
    if isinstance(sock, _SocketBase):
        if sock.gettimeout() == 0.0:  # the common case first: one C call
            return
        blocking = sock.fileno() != -1
    else:
        try:
            fd = sock.fileno() if hasattr(type(sock), "fileno") else int(sock)
            blocking = fd >= 0 and os.get_blocking(fd)
        except Exception:
            return
    if blocking:
        raise ValueError("the socket must be non-blocking (setblocking(False))")


def _fd_of(sock: Any) -> int:
    """The fd number to wait on (``sock`` passed :func:`_refuse_blocking` and one call)."""
    return int(sock.fileno() if hasattr(type(sock), "fileno") else sock)


def _wake(key: tuple[AbstractEventLoop, int, bool]) -> None:
    """The loop's callback for a ready fd: wake its oldest waiter not yet woken.

    Readiness is level-triggered: while the fd stays ready and others wait,
    the loop calls this again, so a woken task that was cancelled before it
    ran passes nothing over.
    """
    for future in _waiting.get(key, ()):
        if not future.done():
            future.set_result(None)
            return


async def _until_ready(loop: AbstractEventLoop, fd: int, writing: bool) -> None:
    """Wait until ``fd`` polls readable (or writable); nothing stays registered after."""
    key = (loop, fd, writing)
    future: Future[None] = loop.create_future()
    waiters = _waiting.get(key)
    if waiters is None:
        # add before recording: if the loop refuses the fd, nothing is left behind
        (loop.add_writer if writing else loop.add_reader)(fd, _wake, key)
        waiters = _waiting[key] = []
    waiters.append(future)
    try:
        await future
    finally:
        waiters.remove(future)
        if not waiters:
            del _waiting[key]
            (loop.remove_writer if writing else loop.remove_reader)(fd)


async def sendfds(sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
    """Send ``msg`` with the open files ``fds`` on ``sock``, waiting for room.

    As :func:`fdsend.sendfds`, on a non-blocking socket (see the module
    docstring). Returns the number of payload bytes sent, which on
    SOCK_STREAM may be fewer than ``len(msg)``, as from the synchronous call.
    """
    _refuse_blocking(sock)
    if fds is not None and type(fds) is not list and type(fds) is not tuple:
        fds = list(islice(fds, SCM_MAX_FD + 1))  # an iterator must survive a retry
    try:
        return _sendfds(sock, msg, flags, fds)
    except BlockingIOError:
        if flags & _MSG_DONTWAIT:  # the caller asked not to wait
            raise
    return await _retry(partial(_sendfds, sock, msg, flags, fds), sock, writing=True)


async def recvfds(
    sock: Any,
    len: int,
    flags: int = 0,
    numfds: int = 64,
    *,
    strict: bool = False,
    cloexec: bool = True,
) -> Received:
    """Receive up to ``len`` bytes and ``numfds`` fds from ``sock``, waiting for a message.

    As :func:`fdsend.recvfds`, on a non-blocking socket (see the module
    docstring); the returned fds are the caller's.
    """
    _refuse_blocking(sock)
    try:
        return _recvfds(sock, len, flags, numfds, strict=strict, cloexec=cloexec)
    except BlockingIOError:
        if flags & _MSG_DONTWAIT:  # the caller asked not to wait
            raise
    call = partial(_recvfds, sock, len, flags, numfds, strict=strict, cloexec=cloexec)
    return await _retry(call, sock, writing=False)


_T = TypeVar("_T")


async def _retry(call: Callable[[], _T], sock: Any, *, writing: bool) -> _T:
    """The waiting path: ``call`` found ``sock`` not ready; wait until it is and call again.

    The ready path never comes here. ``call`` is a partial, not a lambda: a
    closure would turn the caller's arguments into cells, which cost on every call.
    """
    while True:
        await _until_ready(get_running_loop(), _fd_of(sock), writing)
        try:
            return call()
        except BlockingIOError:
            pass
