"""OWN-1 around every backend call: the caller's socket and fds stay as they were.

:class:`Ownership` notes, before a call, what the caller gave it: the socket
and every fd passed, in whatever spelling (a socket object, an int, an object
with ``fileno()``, a file object). For each it notes the file the fd refers
to, its fd flags (F_GETFD: close-on-exec), its open-file status flags
(F_GETFL: O_NONBLOCK among them), and for a socket object its timeout (which
is its blocking mode too); and the process's default socket timeout, which a
caller may have set (:func:`socket.setdefaulttimeout`). After the call, any
difference raises :class:`CallerStateChanged`, whose message starts "OWN-1:"
and names what changed.

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
from dataclasses import dataclass
from typing import Any

__all__ = ["OWN_1_FAILURE", "CallerStateChanged", "Ownership"]


class CallerStateChanged(BaseException):
    """OWN-1: a backend call changed the caller's socket or fds ("OWN-1: ..." names what).

    A BaseException, as pytest's own test outcomes are, so that a test's
    ``except Exception`` around a call that may raise does not hide it.
    """


#: How a failure by :class:`CallerStateChanged` reads in a test's report.
OWN_1_FAILURE = f"{CallerStateChanged.__name__}: OWN-1:"


@dataclass(frozen=True)
class _FdState:
    """What a call must leave as it found it about one fd."""

    file: tuple[int, int] | None  # (st_dev, st_ino); None: not open
    fd_flags: int | None
    status_flags: int | None

    @classmethod
    def of(cls, fd: int) -> _FdState:
        try:
            stat = os.fstat(fd)
            return cls(
                (stat.st_dev, stat.st_ino),
                fcntl.fcntl(fd, fcntl.F_GETFD),
                fcntl.fcntl(fd, fcntl.F_GETFL),
            )
        except OSError:
            return cls(None, None, None)

    def changes(self, after: _FdState) -> list[str]:
        if self.file is None:  # not open when given: nothing the caller owned
            return []
        if after.file is None:
            return ["closed"]
        if after.file != self.file:
            return ["now refers to another file"]
        found = []
        if after.fd_flags != self.fd_flags:
            found.append(f"fd flags (F_GETFD) {self.fd_flags:#x} -> {after.fd_flags:#x}")
        if after.status_flags != self.status_flags:  # both ints: the file is open, before and after
            found.append(_status_change(self.status_flags or 0, after.status_flags or 0))
        return found


def _status_change(before: int, after: int) -> str:
    text = f"status flags (F_GETFL) {before:#x} -> {after:#x}"
    if (before ^ after) & os.O_NONBLOCK:
        text += " (O_NONBLOCK " + ("set" if after & os.O_NONBLOCK else "cleared") + ")"
    return text


def _fd_of(given: Any) -> int | None:
    """The fd ``given`` stands for, or None when it stands for none (the backend refuses it)."""
    if isinstance(given, bool):
        return None
    if isinstance(given, int):
        return given if given >= 0 else None
    fileno = getattr(given, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
    except Exception:  # a hostile fileno(): the backend's to refuse
        return None
    return fd if type(fd) is int and fd >= 0 else None


@dataclass(frozen=True)
class _Given:
    """One socket or fd as the caller gave it."""

    what: str  # "the socket", "fds[1]"
    fd: int
    obj: Any
    state: _FdState
    timeout: Any  # a socket object's gettimeout(); None for other spellings

    @classmethod
    def of(cls, what: str, obj: Any) -> _Given | None:
        fd = _fd_of(obj)
        if fd is None:
            return None
        timeout = _timeout_of(obj) if isinstance(obj, socket.socket) else None
        return cls(what, fd, obj, _FdState.of(fd), timeout)

    def changes(self) -> list[str]:
        found = self.state.changes(_FdState.of(self.fd))
        if isinstance(self.obj, socket.socket):
            now = _timeout_of(self.obj)
            if now != self.timeout:
                found.append(f"socket timeout {self.timeout!r} -> {now!r}")
        return [f"{self.what} (fd {self.fd}): {change}" for change in found]


def _timeout_of(sock: socket.socket) -> Any:
    return "closed" if sock.fileno() == -1 else sock.gettimeout()


class Ownership:
    """Checks OWN-1 around calls; one per caller (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[int, tuple[int, _Given]] = {}  # fd: (calls on it, first note)

    @contextlib.contextmanager
    def around(self, sock: Any, fds: Iterable[Any] | None = None) -> Iterator[None]:
        """Raise :class:`CallerStateChanged` if the block changes ``sock`` or ``fds``.

        ``fds`` is looked at only when it is a list or tuple: an iterator is
        the backend's to consume.
        """
        given = [_Given.of("the socket", sock)]
        if isinstance(fds, (list, tuple)):
            given += [_Given.of(f"fds[{i}]", fd) for i, fd in enumerate(fds)]
        default = socket.getdefaulttimeout()
        mine = self._enter([g for g in given if g is not None])
        try:
            yield
        finally:
            found = self._leave(mine)
            now = socket.getdefaulttimeout()
            if now != default:
                found.append(f"the process's default socket timeout {default!r} -> {now!r}")
            if found:
                raise CallerStateChanged("OWN-1: the call changed " + "; ".join(found))

    def _enter(self, given: list[_Given]) -> list[int]:
        with self._lock:
            fds = []
            for note in given:
                if note.fd in fds:  # the same fd twice in one call: noted once
                    continue
                calls, first = self._open.get(note.fd, (0, note))
                self._open[note.fd] = (calls + 1, first)
                fds.append(note.fd)
            return fds

    def _leave(self, fds: list[int]) -> list[str]:
        found: list[str] = []
        with self._lock:
            for fd in fds:
                calls, first = self._open.pop(fd)
                if calls > 1:
                    self._open[fd] = (calls - 1, first)
                else:
                    found += first.changes()
        return found
