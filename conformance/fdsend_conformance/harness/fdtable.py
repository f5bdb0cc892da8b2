"""The process's file descriptors: which are open, and what holds a file.

Used to prove that a call leaked nothing: take a snapshot before, another
after, and describe whatever appeared in between; and that an fd dropped in
flight was released (a pipe whose every write end is closed reads EOF).
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
    "leaked_since",
    "no_leaks",
    "open_below",
    "open_fds",
]

_FD_DIR = "/proc/self/fd"


def open_fds() -> frozenset[int]:
    """Return the fds open in this process right now."""
    # listdir opens the directory itself: its fd shows in the listing but is
    # closed again by the time we return, so drop entries that are gone.
    listed = {int(name) for name in os.listdir(_FD_DIR)}
    return frozenset(fd for fd in listed if _is_open(fd))


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def describe(fd: int) -> str:
    """Say what ``fd`` refers to, e.g. ``'7 -> pipe:[1234]'``."""
    try:
        target = os.readlink(f"{_FD_DIR}/{fd}")
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
def no_leaks(already_failed: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Fail the test if the block leaves an fd open that was not open before.

    Leaked fds are closed either way, so one leak does not spill into the
    next test; a test that ``already_failed()`` is not failed twice.
    """
    before = open_fds()
    yield
    leaked = close_leaked(before)
    if leaked and not already_failed():
        pytest.fail(f"leaked {len(leaked)} fd(s): {'; '.join(leaked)}", pytrace=False)


def open_below(limit: int) -> frozenset[int]:
    """The open fds below ``limit``, found without opening one.

    For a process at its RLIMIT_NOFILE, where listing /proc/self/fd would
    need a free descriptor.
    """
    return frozenset(fd for fd in range(limit) if _is_open(fd))


def close_on_exec(fd: int) -> bool:
    """Whether ``fd`` has FD_CLOEXEC set."""
    return bool(fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC)


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
