"""A process's file descriptors: which are open, and what holds a file.

Used to prove that a call leaked nothing: take a snapshot before, another
after, and describe whatever appeared in between; and that an fd dropped in
flight was released (a pipe whose every write end is closed reads EOF).
Functions with a ``pid`` look at another process (a driver) through /proc,
without opening an fd there; the default is this process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
from collections.abc import Callable, Iterator

import pytest

__all__ = [
    "at_eof",
    "close_leaked",
    "close_on_exec",
    "describe",
    "identity_in",
    "is_open",
    "leaked_since",
    "no_leaks",
    "open_below",
    "open_fds",
]

#: O_CLOEXEC as fdinfo's ``flags:`` line shows it (octal): set when the fd is close-on-exec.
_FDINFO_CLOEXEC = 0o2000000


def _fd_dir(pid: int | None) -> str:
    return f"/proc/{'self' if pid is None else pid}/fd"


def open_fds(pid: int | None = None) -> frozenset[int]:
    """Return the fds open in this process (or process ``pid``) right now."""
    listed = {int(name) for name in os.listdir(_fd_dir(pid))}
    if pid is not None:
        return frozenset(listed)
    # listdir opens the directory itself: its fd shows in the listing but is
    # closed again by the time we return, so drop entries that are gone.
    return frozenset(fd for fd in listed if is_open(fd))


def is_open(fd: int) -> bool:
    """Whether ``fd`` is open in this process."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def describe(fd: int, pid: int | None = None) -> str:
    """Say what ``fd`` (of process ``pid``) refers to, e.g. ``'7 -> pipe:[1234]'``."""
    try:
        target = os.readlink(f"{_fd_dir(pid)}/{fd}")
    except OSError as exc:
        target = f"<unreadable: {exc.strerror}>"
    return f"{fd} -> {target}"


def leaked_since(before: frozenset[int]) -> list[int]:
    """Return the fds open now that were not open in ``before``, sorted."""
    return sorted(open_fds() - before)


def close_leaked(before: frozenset[int]) -> list[str]:
    """Close every fd opened since ``before``; return what each was (none: no leak).

    For leak checks: one leak is reported, then cannot spill into the next test.
    """
    leaked = leaked_since(before)
    described = [describe(fd) for fd in leaked]
    for fd in leaked:
        with contextlib.suppress(OSError):  # closed meanwhile, by another thread
            os.close(fd)
    return described


@contextlib.contextmanager
def no_leaks(
    already_failed: Callable[[], bool] = lambda: False,
    held: Callable[[], frozenset[int]] = frozenset,
) -> Iterator[None]:
    """Fail the test if the block leaves an fd open that was not open before.

    ``held()`` names fds opened meanwhile that are not the test's (a driver's
    pipes). Leaked fds are closed either way, so one leak does not spill into
    the next test; a test that ``already_failed()`` is not failed twice.
    """
    before = open_fds()
    yield
    leaked = close_leaked(before | held())
    if leaked and not already_failed():
        pytest.fail(f"leaked {len(leaked)} fd(s): {'; '.join(leaked)}", pytrace=False)


def open_below(limit: int) -> frozenset[int]:
    """The open fds below ``limit``, found without opening one.

    For a process at its RLIMIT_NOFILE, where listing /proc/self/fd would
    need a free descriptor.
    """
    return frozenset(fd for fd in range(limit) if is_open(fd))


def close_on_exec(fd: int, pid: int | None = None) -> bool:
    """Whether ``fd`` (of process ``pid``: read from its fdinfo) has FD_CLOEXEC set."""
    if pid is None:
        return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)
    with open(f"/proc/{pid}/fdinfo/{fd}") as file:
        for line in file:
            name, _, value = line.partition(":")
            if name == "flags":
                return bool(int(value.strip(), 8) & _FDINFO_CLOEXEC)
    raise OSError(f"/proc/{pid}/fdinfo/{fd} has no flags line")


def identity_in(pid: int, fd: int) -> tuple[int, int] | None:
    """The (st_dev, st_ino) of what fd ``fd`` of process ``pid`` refers to; None: not open."""
    try:
        st = os.stat(f"{_fd_dir(pid)}/{fd}")
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def at_eof(read_end: int) -> bool:
    """Whether the pipe ``read_end`` reads EOF now (every write end is closed).

    Never blocks: a pipe with a writer still open answers False.
    """
    ready, _, _ = select.select([read_end], [], [], 0)
    if not ready:
        return False
    blocking = os.get_blocking(read_end)
    os.set_blocking(read_end, False)
    try:
        return os.read(read_end, 1) == b""
    except BlockingIOError:
        return False
    finally:
        os.set_blocking(read_end, blocking)
