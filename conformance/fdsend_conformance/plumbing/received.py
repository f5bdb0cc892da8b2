"""What a backend hands back as received fds is checked before the suite takes it.

A receive must hand back fds it installed: ints, open, and new. A backend
that returns something else (scgi's ``recvfd`` returns the sender's pid when
SO_PASSCRED is on) fails the test with a message that says so, and the
suite never takes ownership of, and so never closes, an fd that is not the
call's.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from fdsend_conformance.harness import fdtable

__all__ = ["check_received", "snapshot"]


def snapshot() -> dict[int, tuple[int, int]]:
    """The fds open now, each with the identity of the file it refers to."""
    table = {}
    for fd in fdtable.open_fds():
        try:
            st = os.fstat(fd)
        except OSError:  # closed meanwhile (another thread)
            continue
        table[fd] = (st.st_dev, st.st_ino)
    return table


def _problem(value: Any, before: dict[int, tuple[int, int]]) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return f"{value!r} ({type(value).__name__}) is not an fd number"
    try:
        st = os.fstat(value)
    except OSError:
        return f"{value} is not an open fd"
    if before.get(value) == (st.st_dev, st.st_ino):
        return f"{value} was open before the call: not an fd it received"
    return None


def check_received(result: Any, before: dict[int, tuple[int, int]]) -> None:
    """Fail the test if ``result`` hands back an "fd" the receive did not install.

    ``before`` is the :func:`snapshot` taken before the call. The result's
    fds and its ``pidfd`` (if any) are checked; a result that does not
    unpack as ``(msg, fds)`` is left for the test to judge.
    """
    try:
        _, fds = result
        handed = [*fds]
    except (TypeError, ValueError):
        return
    pidfd = getattr(result, "pidfd", None)
    problems = [p for p in (_problem(v, before) for v in handed) if p is not None]
    if pidfd is not None:
        problem = _problem(pidfd, before)
        if problem is not None:
            problems.append(f"pidfd {problem}")
    if problems:
        pytest.fail(
            f"the receive returned {handed!r} as its fds: {'; '.join(problems)} "
            "(nothing it returned was closed or taken over)",
            pytrace=False,
        )
