"""OWN-1 around every backend call: the caller's socket and fds stay as they were.

:class:`Ownership` notes, before a call, what the caller gave it: the socket
and every fd passed, in whatever spelling (a socket object, an int, an object
with ``fileno()``, a file object). For each it notes the fd flags (F_GETFD:
close-on-exec) and the open-file status flags (F_GETFL: O_NONBLOCK among
them); for the socket also the file it refers to, and for a socket object its
timeout (which is its blocking mode too); and the process's default socket
timeout, which a caller may have set (:func:`socket.setdefaulttimeout`).
After the call, any difference raises :class:`CallerStateChanged`, whose
message starts "OWN-1:" and names what changed. (Whether each fd passed
still refers to the same file, OWN-1's own tests check.)

Calls that overlap on one fd (threads, tasks of one loop) share the note:
the first one in takes it and the last one out compares, so a change one
call makes for its duration and undoes is not taken for another's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["OWN_1_FAILURE", "CallerStateChanged", "Ownership"]


class CallerStateChanged(BaseException):
    """OWN-1: a backend call changed the caller's socket or fds ("OWN-1: ..." names what).

    A BaseException, as pytest's own test outcomes are, so that a test's
    ``except Exception`` around a call that may raise does not hide it.
    """


#: How a failure by :class:`CallerStateChanged` reads in a test's report.
OWN_1_FAILURE = f"{CallerStateChanged.__name__}: OWN-1:"

_CLOSED = "closed"


def _fd_of(given: Any) -> int | None:
    """The fd ``given`` stands for, or None when it stands for none (the backend refuses it)."""
    if type(given) is int:
        return given if given >= 0 else None
    if isinstance(given, bool) or not hasattr(given, "fileno"):
        return None
    try:
        fd = given.fileno()
    except Exception:  # a hostile fileno(): the backend's to refuse
        return None
    return fd if type(fd) is int and fd >= 0 else None


def _state(fd: int, sock: Any) -> tuple[Any, ...] | str:
    """What a call must leave as it found it about ``fd`` (``sock``: the socket object given)."""
    try:
        flags = (fcntl.fcntl(fd, fcntl.F_GETFD), fcntl.fcntl(fd, fcntl.F_GETFL))
        if sock is None:
            return flags
        stat = os.fstat(fd)
        timeout = sock.gettimeout() if isinstance(sock, socket.socket) else None
        return (*flags, (stat.st_dev, stat.st_ino), timeout)
    except OSError:
        return _CLOSED


def _changes(what: str, before: tuple[Any, ...] | str, after: tuple[Any, ...] | str) -> list[str]:
    if isinstance(before, str):  # not open when given: nothing the caller owned
        return []
    if isinstance(after, str):
        return [f"{what}: closed"]
    found = []
    if after[0] != before[0]:
        found.append(f"{what}: fd flags (F_GETFD) {before[0]:#x} -> {after[0]:#x}")
    if after[1] != before[1]:
        change = f"{what}: status flags (F_GETFL) {before[1]:#x} -> {after[1]:#x}"
        if (before[1] ^ after[1]) & os.O_NONBLOCK:
            change += " (O_NONBLOCK " + ("set" if after[1] & os.O_NONBLOCK else "cleared") + ")"
        found.append(change)
    if len(before) > 2 and after[2] != before[2]:
        found.append(f"{what}: now refers to another file")
    if len(before) > 3 and after[3] != before[3]:
        found.append(f"{what}: socket timeout {before[3]!r} -> {after[3]!r}")
    return found


class Ownership:
    """Checks OWN-1 around calls; one per caller (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # fd: (calls on it now, where it was given (0: the socket, i: fds[i - 1]),
        #      the socket object or None, its state when first given)
        self._open: dict[int, tuple[int, int, Any, tuple[Any, ...] | str]] = {}

    @contextlib.contextmanager
    def around(self, sock: Any, fds: Iterable[Any] | None = None) -> Iterator[None]:
        """Raise :class:`CallerStateChanged` if the block changes ``sock`` or ``fds``.

        ``fds`` is looked at only when it is a list or tuple: an iterator is
        the backend's to consume.
        """
        given = [sock, *fds] if isinstance(fds, (list, tuple)) else [sock]
        default = socket.getdefaulttimeout()
        mine = self._enter(given)
        try:
            yield
        finally:
            found = self._leave(mine)
            now = socket.getdefaulttimeout()
            if now != default:
                found.append(f"the process's default socket timeout {default!r} -> {now!r}")
            if found:
                raise CallerStateChanged("OWN-1: the call changed " + "; ".join(found))

    def _enter(self, given: list[Any]) -> list[int]:
        mine: dict[int, None] = {}  # in order, each fd once
        with self._lock:
            for position, obj in enumerate(given):
                fd = _fd_of(obj)
                if fd is None or fd in mine:  # no fd, or the same fd again: noted once
                    continue
                mine[fd] = None
                entry = self._open.get(fd)
                if entry is not None:
                    self._open[fd] = (entry[0] + 1, *entry[1:])
                    continue
                sock = obj if position == 0 else None  # the socket: more to note
                self._open[fd] = (1, position, sock, _state(fd, sock))
        return list(mine)

    def _leave(self, mine: list[int]) -> list[str]:
        found: list[str] = []
        with self._lock:
            for fd in mine:
                calls, position, sock, before = self._open.pop(fd)
                if calls > 1:
                    self._open[fd] = (calls - 1, position, sock, before)
                    continue
                after = _state(fd, sock)
                if after != before:
                    what = "the socket" if position == 0 else f"fds[{position - 1}]"
                    found += _changes(f"{what} (fd {fd})", before, after)
        return found
