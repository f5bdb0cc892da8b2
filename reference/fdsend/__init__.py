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
fds silently, and never loses or leaks an fd, whatever options the receiving
socket has switched on (credentials, pidfds, timestamps, ...).
``fdsend.aio`` has the same calls for asyncio.
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
from typing import Any, NamedTuple, Union

__all__ = [
    "CONTROL_HEADROOM",
    "SCM_MAX_FD",
    "Credentials",
    "Received",
    "TruncatedError",
    "__version__",
    "recvfds",
    "sendfds",
    "socketpair",
]

__version__ = "1.1.1"

#: Most fds the kernel carries in one message (include/net/scm.h).
SCM_MAX_FD = 253

#: SCM_PIDFD (include/linux/socket.h, Linux 6.5); the socket module may lack it.
SCM_PIDFD = getattr(socket, "SCM_PIDFD", 4)

#: Longest SCM_SECURITY label (SO_PASSSEC) given room: one page. The kernel
#: sets no bound of its own; a longer label is cut and the cut shows as MSG_CTRUNC.
SECURITY_LABEL_ROOM = 4096

#: The payload of every control message Linux can write beside SCM_RIGHTS on an
#: AF_UNIX receive, whatever SOL_SOCKET options the receiving socket has on, in
#: the order the kernel writes them (net/unix/af_unix.c __unix_dgram_recvmsg and
#: unix_stream_read_generic, net/core/scm.c scm_recv_unix; sizes measured on
#: Linux 6.18, x86_64). Timestamps come first on datagrams only; the pidfd and
#: SCM_INQ come after the fds. The last three are not written by 6.18's
#: af_unix.c (it never calls sock_recv_cmsgs): room kept for a kernel that does.
OTHER_CONTROL_MESSAGES = {
    "SO_TIMESTAMP(NS)(_OLD/_NEW) (datagrams)": 16,  # one of the four, at most 16 bytes
    "SCM_TIMESTAMPING(_NEW) (SO_TIMESTAMPING with SO_TIMESTAMP, datagrams)": 48,
    "SCM_CREDENTIALS (SO_PASSCRED)": 12,  # struct ucred
    "SCM_SECURITY (SO_PASSSEC, with an LSM label)": SECURITY_LABEL_ROOM,
    "SCM_PIDFD (SO_PASSPIDFD)": 4,
    "SCM_INQ (SO_INQ, SOCK_STREAM)": 4,
    "SO_RXQ_OVFL": 4,
    "SO_RCVMARK": 4,
    "SO_RCVPRIORITY": 4,
}

#: Control-buffer bytes every receive keeps beyond the fds' own: room for all of
#: the messages above at once, so that they never take the fds' room. One fixed
#: size: no syscall per receive to ask the socket what it has switched on.
CONTROL_HEADROOM = sum(socket.CMSG_SPACE(size) for size in OTHER_CONTROL_MESSAGES.values())

#: The control buffer of a receive of up to n fds, by n (a lookup, cheaper than
#: computing it on every receive).
_CONTROL_SPACE = [socket.CMSG_SPACE(4 * n) + CONTROL_HEADROOM for n in range(SCM_MAX_FD + 1)]

_INT_MAX = 2**31 - 1
# Plain ints: socket.MSG_* are IntFlag members, and every `|` or `&` with one
# builds a new enum member.
_MSG_CMSG_CLOEXEC = int(socket.MSG_CMSG_CLOEXEC)
_MSG_CTRUNC = int(socket.MSG_CTRUNC)
_MSG_TRUNC = int(socket.MSG_TRUNC)
_SOL_SOCKET = int(socket.SOL_SOCKET)
_AF_UNIX = int(socket.AF_UNIX)
_SOCK_STREAM = int(socket.SOCK_STREAM)
_SCM_RIGHTS = int(socket.SCM_RIGHTS)
_SCM_CREDENTIALS = int(socket.SCM_CREDENTIALS)
_UCRED = struct.Struct("=iII")  # struct ucred: pid, uid, gid

# socket.socket's family and type properties build an IntEnum on every read;
# the C getters give plain ints.
_family_of = _socket.socket.family.__get__
_type_of = _socket.socket.type.__get__

FdLike = Union[int, Any]  # an int, or any object with fileno()


class Credentials(NamedTuple):
    """The sender's SCM_CREDENTIALS (SO_PASSCRED on the receiving socket)."""

    pid: int
    uid: int
    gid: int


class TruncatedError(OSError):
    """Fds were lost to a short control buffer (MSG_CTRUNC) in a strict receive.

    Every fd that did arrive, the pidfd included, has been closed. ``msg`` is
    the payload that arrived and ``flags`` the kernel's msg_flags.
    """

    def __init__(self, msg: bytes, flags: int) -> None:
        super().__init__("control data truncated (MSG_CTRUNC): fds were lost; none kept")
        self.msg = msg
        self.flags = flags


class Received(tuple):  # type: ignore[type-arg]
    """What :func:`recvfds` returns: unpacks as ``(msg, fds)`` like fdsend 0.3.

    ``flags`` is the kernel's msg_flags; ``truncated`` says fds were lost
    (MSG_CTRUNC) and ``msg_truncated`` that the payload was cut (MSG_TRUNC).
    ``pidfd`` is the sender's pidfd when the socket has SO_PASSPIDFD on, and
    ``credentials`` its :class:`Credentials` when it has SO_PASSCRED on. The
    caller owns ``fds`` and ``pidfd`` and must close them.
    """

    #: The kernel's msg_flags; 0 for a Received built by hand.
    flags: int = 0
    #: The sender's pidfd (SO_PASSPIDFD), else None.
    pidfd: int | None = None
    #: The sender's credentials (SO_PASSCRED), else None.
    credentials: Credentials | None = None

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
        extra = "".join(
            f", {name}={value!r}"
            for name, value in (("pidfd", self.pidfd), ("credentials", self.credentials))
            if value is not None
        )
        return f"Received(msg={self[0]!r}, fds={self[1]!r}, flags={self.flags:#x}{extra})"


def _fileno(obj: Any) -> int:
    """An fd from an int or a ``fileno()`` object, by PyObject_AsFileDescriptor's rules.

    One addition, as ``os.dup()`` has it: objects with ``__index__`` (numpy
    integers, say) count as ints.
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


def _checked_fds(objs: Iterable[FdLike]) -> array[int]:
    """The fds of ``objs``, each by :func:`_fileno`, the one home of COERCE-3's rules."""
    return array("i", [_fileno(obj) for obj in objs])


def _fd_array(fds: Iterable[FdLike] | None) -> array[int]:
    """The fds to send as a C int array; raises before anything is sent.

    Plain ints go into the array in one C call, and what that refuses (a
    non-int, an int beyond C int range) goes through :func:`_checked_fds`. A
    negative int passes; the kernel refuses the send with EBADF before anything
    is queued, and :func:`sendfds` then asks :func:`_checked_fds` too: checking
    every fd here first would cost every send more than the rest of this
    function. An endless iterable is read only one past the limit.
    """
    if fds is None:
        return array("i")
    if type(fds) is not list and type(fds) is not tuple:
        fds = list(islice(fds, SCM_MAX_FD + 1))  # TypeError for a non-iterable
    try:
        packed = array("i", fds)
    except (TypeError, OverflowError):
        packed = _checked_fds(fds)
    if len(packed) > SCM_MAX_FD:
        raise OSError(errno.EINVAL, f"more than SCM_MAX_FD ({SCM_MAX_FD}) fds in one message")
    return packed


def _refuse_silent_loss(sock: _socket.socket, msg: Any) -> None:
    """Raise ValueError where the kernel would accept fds and then drop them."""
    if _family_of(sock) != _AF_UNIX:
        raise ValueError("fds can only be passed over AF_UNIX sockets; the kernel drops them")
    # nbytes, not truthiness: some buffers (ctypes, PickleBuffer) are always true
    if _type_of(sock) == _SOCK_STREAM and memoryview(msg).nbytes == 0:
        raise ValueError("fds need at least one payload byte on SOCK_STREAM; else they are lost")


def _borrow(fd: Any) -> socket.socket:
    """A socket object on the caller's fd number, which the caller must ``detach()``.

    With ``socket.setdefaulttimeout()`` in force its constructor makes the fd
    non-blocking (a flag of the open file, shared with the caller): the fd's
    own mode is put back, so that the call behaves as the fd says.
    """
    number = _fileno(fd)
    if socket.getdefaulttimeout() is None:
        return _socket.socket(fileno=number)  # type: ignore[return-value]
    blocking = os.get_blocking(number)  # EBADF here for a closed fd, as below
    sock = _socket.socket(fileno=number)
    try:
        sock.settimeout(None if blocking else 0.0)
    except BaseException:
        sock.detach()  # else collecting it would close the caller's fd
        raise
    return sock  # type: ignore[return-value]


def sendfds(fd: Any, msg: Any, flags: int = 0, fds: Iterable[FdLike] | None = None) -> int:
    """Send ``msg`` with the open files ``fds`` over the AF_UNIX socket ``fd``.

    ``fd`` is a socket, an object with ``fileno()`` or an int; ``msg`` is
    bytes-like (a str is UTF-8 encoded); ``fds`` holds ints, files, sockets or
    other ``fileno()`` objects, at most :data:`SCM_MAX_FD` (else
    ``OSError(EINVAL)``). Returns the number of payload bytes sent. Raises
    ValueError instead of sending fds the kernel would drop silently (an
    empty payload on SOCK_STREAM, a TCP or UDP socket); a receiver that
    refuses fds (SO_PASSRIGHTS off) makes it raise PermissionError (EPERM)::

        sendfds(sock, b"log", fds=[open("app.log", "ab")])
    """
    if isinstance(msg, str):
        msg = msg.encode()
    packed = _fd_array(fds)
    sock = fd if isinstance(fd, _socket.socket) else _borrow(fd)
    try:
        if not packed:
            return sock.sendmsg((msg,), (), flags)
        if type(msg) is not bytes or not msg or _family_of(sock) != _AF_UNIX:
            _refuse_silent_loss(sock, msg)  # the common case skips the call and its checks
        return sock.sendmsg((msg,), ((_SOL_SOCKET, _SCM_RIGHTS, packed),), flags)
    except OSError as exc:
        if exc.errno == errno.EBADF:
            _checked_fds(packed)  # a negative fd gets COERCE-3's ValueError, not EBADF
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
    :class:`TruncatedError` after closing every fd received. Received fds,
    the pidfd included, are close-on-exec unless ``cloexec=False``. With
    MSG_PEEK each call returns fresh fds, which the caller owns like any
    others::

        msg, fds = recvfds(sock, 1024, numfds=4)
    """
    if len < 0:
        raise ValueError(f"negative payload length {len}")
    if not isinstance(numfds, int):
        raise TypeError(f"numfds must be an int, not {type(numfds).__name__}")
    if numfds < 0:
        raise ValueError(f"negative fd count {numfds}")
    if numfds > SCM_MAX_FD:
        numfds = SCM_MAX_FD
    if cloexec:
        flags |= _MSG_CMSG_CLOEXEC
    space = _CONTROL_SPACE[numfds]
    sock = fd if isinstance(fd, _socket.socket) else _borrow(fd)
    try:
        msg, ancillary, msg_flags, _ = sock.recvmsg(len, space, flags)
    finally:
        if sock is not fd:
            sock.detach()
    return _received(msg, ancillary, msg_flags, numfds, strict, cloexec)


# One unpacker per fd count: a receive carries at most SCM_MAX_FD fds (the
# kernel's limit per send, and a stream read stops after one send's fds).
_INTS = [struct.Struct(f"={count}i") for count in range(SCM_MAX_FD + 1)]


def _parse_control(
    ancillary: list[tuple[int, int, bytes]],
) -> tuple[tuple[int, ...], int | None, Credentials | None]:
    """The fds of every SCM_RIGHTS message in order, the pidfd and the credentials.

    Pure, so that it can be run again to find what to close when it fails.
    Only whole ints count: a cut message can end in part of one. A negative
    SCM_PIDFD is the errno of a pidfd the kernel could not make: no fd.
    """
    fds: tuple[int, ...] = ()
    pidfd = credentials = None
    for level, kind, data in ancillary:
        if level != _SOL_SOCKET:
            continue
        if kind == _SCM_RIGHTS:
            fds += _INTS[len(data) >> 2].unpack_from(data)
        elif kind == SCM_PIDFD and len(data) >= 4:
            pidfd = _INTS[1].unpack_from(data)[0]
            if pidfd < 0:
                pidfd = None
        elif kind == _SCM_CREDENTIALS and len(data) >= _UCRED.size:
            credentials = Credentials._make(_UCRED.unpack_from(data))
    return fds, pidfd, credentials


def _close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _received(
    msg: bytes,
    ancillary: list[tuple[int, int, bytes]],
    msg_flags: int,
    numfds: int,
    strict: bool,
    cloexec: bool,
) -> Received:
    """The result of one receive.

    From here on the fds are installed in this process: whatever fails,
    every one of them is either returned or closed, exactly once.
    """
    try:
        fds, pidfd, credentials = _parse_control(ancillary)
    except BaseException:
        fds, pidfd, _ = _parse_control(ancillary)  # pure: a second pass finds them all
        _close_all(fds if pidfd is None else (*fds, pidfd))
        raise
    try:
        if len(fds) > numfds:  # the headroom held more fds than asked for
            fds, excess = fds[:numfds], fds[numfds:]
            msg_flags |= _MSG_CTRUNC
            _close_all(excess)
        if strict and msg_flags & _MSG_CTRUNC:
            raise TruncatedError(msg, msg_flags)
        if pidfd is not None and not cloexec:
            os.set_inheritable(pidfd, True)  # the kernel installs it close-on-exec
        result = Received((msg, fds))
        result.flags = msg_flags
        if pidfd is not None:
            result.pidfd = pidfd
        if credentials is not None:
            result.credentials = credentials
        return result
    except BaseException:
        _close_all(fds if pidfd is None else (*fds, pidfd))
        raise


def socketpair(
    family: int = socket.AF_UNIX, type: int = socket.SOCK_STREAM, proto: int = 0
) -> tuple[int, int]:
    """A connected pair of sockets as plain fds, owned by the caller.

    As fdsend 0.3; ``socket.socketpair`` gives socket objects instead.
    """
    a, b = socket.socketpair(family, type, proto)
    return a.detach(), b.detach()
