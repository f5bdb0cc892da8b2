"""fdsend: pass open file descriptors between processes over UNIX-domain sockets.

A process can hand an open file to another one: it sends the descriptor as
SCM_RIGHTS ancillary data on an AF_UNIX socket, and the kernel installs a
new descriptor in the receiver that refers to the same open file description
(same file, shared offset and status flags), much as dup(2) would across the
process boundary. A few payload bytes travel with the descriptors.

This is the reference implementation of the fdsend API, in pure Python on
``socket.sendmsg``/``socket.recvmsg``::

    >>> import fdsend, os
    >>> a, b = fdsend.socketpair()
    >>> r, w = os.pipe()
    >>> fdsend.sendfds(a, b"here", fds=[w])
    4
    >>> msg, fds = fdsend.recvfds(b, 16)
    >>> msg, len(fds)
    (b'here', 1)

Beyond fdsend 0.3 it reports control-data truncation (``Received.truncated``,
or :class:`TruncatedError` with ``strict=True``), makes received fds
close-on-exec atomically, refuses the two sends where the kernel would drop
fds silently, and never leaks an fd on any path.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import operator
import os
import socket
import struct
from array import array
from collections.abc import Iterable
from itertools import islice
from typing import Any, Union

__all__ = [
    "SCM_MAX_FD",
    "Received",
    "TruncatedError",
    "__version__",
    "recvfds",
    "sendfds",
    "socketpair",
]

__version__ = "1.0.0"

#: Most fds the kernel carries in one message (include/net/scm.h).
SCM_MAX_FD = 253

# Plain ints: socket.MSG_* are IntFlag members, and enum arithmetic is slow.
_SOL_SOCKET = int(socket.SOL_SOCKET)
_SCM_RIGHTS = int(socket.SCM_RIGHTS)
_MSG_CMSG_CLOEXEC = int(socket.MSG_CMSG_CLOEXEC)
_MSG_CTRUNC = int(socket.MSG_CTRUNC)
_MSG_TRUNC = int(socket.MSG_TRUNC)
_AF_UNIX = int(socket.AF_UNIX)
_SOCK_STREAM = int(socket.SOCK_STREAM)
_INT_MAX = 2**31 - 1
_SocketBase = _socket.socket
_getdefaulttimeout = _socket.getdefaulttimeout
# The C-level getters give plain ints; socket.socket's properties build enums.
_family_of = _socket.socket.family.__get__
_type_of = _socket.socket.type.__get__
# SO_PASSCRED puts a struct ucred (12 bytes) ahead of the fds: leave room for
# it, or a buffer sized for the fds alone loses every fd (measured, Linux 6.18).
_CREDENTIALS_SPACE = socket.CMSG_SPACE(12)
_CONTROL_SPACE = [socket.CMSG_SPACE(4 * n) + _CREDENTIALS_SPACE for n in range(SCM_MAX_FD + 1)]
# One unpacker per fd count that fits the largest control buffer.
_UNPACK = [
    struct.Struct(f"={n}i").unpack
    for n in range((_CONTROL_SPACE[SCM_MAX_FD] - socket.CMSG_LEN(0)) // 4 + 1)
]
_new_tuple = tuple.__new__
_count = len  # recvfds has a parameter named len, as fdsend 0.3 did
#: msg_flags of a plain receive with MSG_CMSG_CLOEXEC (the kernel echoes it)
_COMMON_FLAGS = _MSG_CMSG_CLOEXEC

FdLike = Union[int, Any]  # an int, or any object with fileno()


class TruncatedError(OSError):
    """Fds were lost to a short control buffer (MSG_CTRUNC) in a strict receive.

    Every fd that did arrive has been closed. ``msg`` is the payload that
    arrived and ``flags`` the kernel's msg_flags.
    """

    def __init__(self, msg: bytes, flags: int) -> None:
        super().__init__("control data truncated (MSG_CTRUNC): fds were lost; none kept")
        self.msg = msg
        self.flags = flags


class Received(tuple):  # type: ignore[type-arg]
    """What :func:`recvfds` returns: unpacks as ``(msg, fds)`` like fdsend 0.3.

    ``flags`` is the kernel's msg_flags; ``truncated`` says fds were lost
    (MSG_CTRUNC) and ``msg_truncated`` that the payload was cut (MSG_TRUNC).
    """

    # The kernel echoes MSG_CMSG_CLOEXEC in msg_flags: that value is the class
    # default, and an instance stores its own only when it differs (cheaper).
    flags: int = _MSG_CMSG_CLOEXEC

    @property
    def msg(self) -> bytes:
        """The payload bytes."""
        return self[0]  # type: ignore[no-any-return]

    @property
    def fds(self) -> tuple[int, ...]:
        """The received fds, in the order they were sent."""
        return self[1]  # type: ignore[no-any-return]

    @property
    def truncated(self) -> bool:
        """Whether fds were lost: the control buffer was too short (MSG_CTRUNC)."""
        return bool(self.flags & _MSG_CTRUNC)

    @property
    def msg_truncated(self) -> bool:
        """Whether the payload was cut to ``len`` bytes (MSG_TRUNC)."""
        return bool(self.flags & _MSG_TRUNC)

    def __repr__(self) -> str:
        return f"Received(msg={self[0]!r}, fds={self[1]!r}, flags={self.flags:#x})"


def _fileno(obj: Any) -> int:
    """An fd from an int or a ``fileno()`` object, by PyObject_AsFileDescriptor's rules.

    One addition, as ``os.dup()`` and the fast path's ``array`` have it:
    objects with ``__index__`` (numpy integers, say) count as ints.
    """
    if isinstance(obj, int):
        fd = obj
    elif hasattr(type(obj), "__index__"):
        fd = operator.index(obj)
    else:
        method = getattr(obj, "fileno", None)
        if method is None:
            raise TypeError(
                f"argument must be an int, or have a fileno() method, not {type(obj).__name__}"
            )
        fd = method()
        if not isinstance(fd, int):
            raise TypeError(f"fileno() returned a non-integer ({type(fd).__name__})")
    if fd < 0:
        raise ValueError(f"file descriptor cannot be a negative integer ({fd})")
    if fd > _INT_MAX:
        raise OverflowError(f"file descriptor {fd} is beyond the range of a C int")
    return fd


def _fd_array(fds: Iterable[FdLike]) -> array[int]:
    """The fds as a native int array; raises before anything is sent.

    Plain ints take the fast path: ``array('I')`` itself refuses negatives
    and non-ints (objects with ``__index__`` pass, as :func:`_fileno` takes
    them too). Ints in (INT_MAX, UINT_MAX] slip through it; the kernel then
    fails with EBADF and :func:`sendfds` turns that into OverflowError.
    """
    if type(fds) is not list and type(fds) is not tuple:
        # TypeError for a non-iterable; one past the limit is enough to refuse
        fds = list(islice(fds, SCM_MAX_FD + 1))
    try:
        packed = array("I", fds)
    except (TypeError, OverflowError):
        packed = array("I", [_fileno(obj) for obj in fds])
    if len(packed) > SCM_MAX_FD:
        raise OSError(errno.EINVAL, f"more than SCM_MAX_FD ({SCM_MAX_FD}) fds in one message")
    return packed


def _refuse_silent_loss(sock: Any, msg: Any) -> None:
    """Raise ValueError where the kernel would accept fds and then drop them.

    Called off the fast path: for any socket that is not AF_UNIX, and for a
    SOCK_STREAM one whose payload is empty or not plain bytes.
    """
    if _family_of(sock) != _AF_UNIX:
        raise ValueError("fds can only be passed over AF_UNIX sockets; the kernel drops them")
    # nbytes, not truthiness: some buffers (ctypes, PickleBuffer) are always true
    if _type_of(sock) == _SOCK_STREAM and memoryview(msg).nbytes == 0:
        raise ValueError("fds need at least one payload byte on SOCK_STREAM; else they are lost")


def _borrow(fd: Any) -> Any:
    """A socket object on the caller's fd, which the caller must ``detach()``.

    With ``socket.setdefaulttimeout()`` in force the constructor makes the fd
    non-blocking (a flag of the open file, shared with the caller): put the
    caller's own mode back, so the call behaves as the fd says and leaves it
    as it was.
    """
    number = _fileno(fd)
    if _getdefaulttimeout() is None:
        return _SocketBase(fileno=number)
    blocking = os.get_blocking(number)  # EBADF here for a closed fd, as below
    sock = _SocketBase(fileno=number)
    try:
        sock.settimeout(None if blocking else 0.0)
    except BaseException:
        sock.detach()  # else collecting it would close the caller's fd
        raise
    return sock


def _check_range(packed: array[int]) -> None:
    """After EBADF: raise OverflowError if an fd was beyond C int range."""
    for fd in packed:
        _fileno(fd)


def sendfds(fd: Any, msg: Any, flags: int = 0, fds: Iterable[FdLike] | None = None) -> int:
    """Send ``msg`` with the open files ``fds`` over the AF_UNIX socket ``fd``.

    ``fd`` is a socket, an object with ``fileno()`` or an int; ``msg`` is
    bytes-like (a str is UTF-8 encoded); ``fds`` holds ints, files, sockets or
    other ``fileno()`` objects, at most :data:`SCM_MAX_FD` (else
    ``OSError(EINVAL)``). Returns the number of payload bytes sent. Raises
    ValueError instead of sending fds the kernel would drop silently (an
    empty payload on SOCK_STREAM, a TCP or UDP socket)::

        sendfds(sock, b"log", fds=[open("app.log", "ab")])
    """
    if type(msg) is str:
        msg = msg.encode()
    packed = None
    if fds is not None:
        if type(fds) is list or type(fds) is tuple:
            # Plain ints: 'I' itself refuses negatives and non-ints. (Not
            # contextlib.suppress: its context manager costs 0.3 µs a call.)
            try:  # noqa: SIM105
                packed = array("I", fds)
            except (TypeError, OverflowError):
                pass
        if packed is None:
            packed = _fd_array(fds)
        elif len(packed) > SCM_MAX_FD:
            _fd_array(packed)  # raises the EINVAL
    sock = fd if isinstance(fd, _SocketBase) else _borrow(fd)
    try:
        if not packed:
            return sock.sendmsg((msg,), (), flags)
        if _family_of(sock) != _AF_UNIX or (
            (type(msg) is not bytes or not msg) and _type_of(sock) == _SOCK_STREAM
        ):
            _refuse_silent_loss(sock, msg)
        return sock.sendmsg((msg,), ((_SOL_SOCKET, _SCM_RIGHTS, packed),), flags)
    except OSError as exc:
        if packed and exc.errno == errno.EBADF:
            _check_range(packed)
        raise
    finally:
        if sock is not fd:
            sock.detach()  # the fd is the caller's: never close it


def recvfds(
    fd: Any,
    len: int,
    flags: int = 0,
    numfds: int = 64,
    *,
    strict: bool = False,
    cloexec: bool = True,
) -> Received:
    """Receive up to ``len`` payload bytes and up to ``numfds`` fds from ``fd``.

    Returns :class:`Received`, which unpacks as ``(msg, fds)``. ``numfds``
    above :data:`SCM_MAX_FD` is treated as SCM_MAX_FD (the kernel never sends
    more). Fds beyond ``numfds`` are closed and reported like MSG_CTRUNC in
    ``truncated``. With ``strict=True`` truncation raises
    :class:`TruncatedError` after closing every fd received. Received fds are
    close-on-exec unless ``cloexec=False``. With MSG_PEEK each call returns
    fresh fds, which the caller owns like any others::

        msg, fds = recvfds(sock, 1024, numfds=4)
    """
    if len < 0:
        raise ValueError(f"negative payload length {len}")
    if numfds < 0:
        raise ValueError(f"negative fd count {numfds}")
    if numfds > SCM_MAX_FD:
        numfds = SCM_MAX_FD
    if cloexec:
        flags = int(flags) | _MSG_CMSG_CLOEXEC if flags else _MSG_CMSG_CLOEXEC
    try:
        space = _CONTROL_SPACE[numfds]
    except TypeError:
        raise TypeError(f"numfds must be an int, not {type(numfds).__name__}") from None
    if isinstance(fd, _SocketBase):
        msg, ancillary, msg_flags, _ = fd.recvmsg(len, space, flags)
    else:
        sock = _borrow(fd)
        try:
            msg, ancillary, msg_flags, _ = sock.recvmsg(len, space, flags)
        finally:
            sock.detach()
    if not ancillary:
        if strict and msg_flags & _MSG_CTRUNC:
            raise TruncatedError(msg, msg_flags)
        result: Received = _new_tuple(Received, (msg, ()))
        if msg_flags != _COMMON_FLAGS:
            result.flags = msg_flags
        return result
    try:  # the common case, written out: one SCM_RIGHTS message, nothing cut
        if _count(ancillary) == 1 and not msg_flags & _MSG_CTRUNC:
            level, kind, data = ancillary[0]
            size = _count(data)
            if level == _SOL_SOCKET and kind == _SCM_RIGHTS and size <= numfds << 2:
                result = _new_tuple(Received, (msg, _UNPACK[size >> 2](data[: size & ~3])))
                if msg_flags != _COMMON_FLAGS:
                    result.flags = msg_flags
                return result
    except BaseException:
        _close_all(_take_fds(ancillary))
        raise
    return _with_fds(msg, ancillary, msg_flags, numfds, strict)


def _take_fds(ancillary: list[tuple[int, int, bytes]]) -> tuple[int, ...]:
    """The fds of every SCM_RIGHTS message, in order; other messages ignored.

    Plain and independent of the fast path's unpackers, so that it can also
    find what to close when the fast path fails.
    """
    fds = array("i")
    for level, kind, data in ancillary:
        if level == _SOL_SOCKET and kind == _SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % 4])  # whole ints only
    return tuple(fds)


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            _socket.close(fd)


def _with_fds(
    msg: bytes, ancillary: list[tuple[int, int, bytes]], msg_flags: int, numfds: int, strict: bool
) -> Received:
    """Build the result of a receive that brought control messages.

    From here on the fds are installed in this process: whatever fails,
    every one of them is either returned or closed.
    """
    try:
        fds = _take_fds(ancillary)
    except BaseException:
        _close_all(_take_fds(ancillary))  # parsing is pure: a second pass finds them all
        raise
    try:
        if len(fds) > numfds:  # the room kept for credentials held more than asked
            fds, excess = fds[:numfds], fds[numfds:]
            msg_flags |= _MSG_CTRUNC
            _close_all(excess)
        if strict and msg_flags & _MSG_CTRUNC:
            doomed, fds = fds, ()
            _close_all(doomed)
            raise TruncatedError(msg, msg_flags)
        result: Received = _new_tuple(Received, (msg, fds))
        if msg_flags != _COMMON_FLAGS:
            result.flags = msg_flags
        return result
    except BaseException:
        _close_all(fds)
        raise


def socketpair(
    family: int = socket.AF_UNIX, type: int = socket.SOCK_STREAM, proto: int = 0
) -> tuple[int, int]:
    """A connected pair of sockets as plain fds, owned by the caller.

    As fdsend 0.3; ``socket.socketpair`` gives socket objects instead.
    """
    a, b = socket.socketpair(family, type, proto)
    return a.detach(), b.detach()
