"""Assertions the suite's tests share: same file, payload, truncation, no traffic."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from fdsend_conformance.backend import Caller, Feature
from fdsend_conformance.harness.closer import Closer
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.outcome import Outcome

__all__ = [
    "SEVERAL_FDS",
    "Truncated",
    "Unsupported",
    "assert_same_file",
    "check_arrived",
    "check_payload",
    "close_all",
    "per_call",
    "receive_truncated",
    "unsupported",
]


def check_payload(backend: Caller, received: Any, sent: Any, why: str = "") -> None:
    """``received == sent``, for a backend that carries payloads (else nothing to compare)."""
    if backend.supports(Feature.PAYLOAD):
        assert received == sent, why or "the payload changed on the way"


def check_arrived(
    backend: Caller,
    closer: Closer,
    received: Any,
    payload: bytes,
    sent: Sequence[int],
    why: str = "",
) -> None:
    """A receive's ``(msg, fds)`` is ``payload`` with ``sent``'s files, in order.

    The received fds go to ``closer`` before any check, so a failed check
    leaks none; the payload is compared as :func:`check_payload` does.
    """
    msg, fds = received
    closer.fds(*fds)
    assert identities(fds) == identities(sent), why or "other files arrived, or in another order"
    check_payload(backend, msg, payload)


class Unsupported(Exception):
    """What the backend lacks, as the cause of a test's skip: the mark of an UNSUPPORTED test.

    :func:`unsupported` raises pytest's own skip with this as its cause
    (``raise ... from``); the plugin tells an UNSUPPORTED skip from any other
    by that cause. pytest shows the skip as it shows every skip
    (``UNSUPPORTED: <reason>``).
    """


def unsupported(reason: str) -> NoReturn:
    """Skip the test as UNSUPPORTED by the backend (not a failure)."""
    raise pytest.skip.Exception(Outcome.UNSUPPORTED.labelled(reason)) from Unsupported(reason)


#: The mark of a test whose point is several fds in one call (or none): it is
#: UNSUPPORTED for an API that sends exactly one fd per call (it declares
#: ``one-fd`` in ``unsupported``).
SEVERAL_FDS = pytest.mark.requires(Feature.ONE_FD)


def per_call(backend: Caller, count: int) -> int:
    """How many fds a test that is not about their number sends in one call.

    ``count``, or 1 for an API that sends exactly one fd per call: the rest
    of the contract judges it with one fd.
    """
    return count if backend.supports(Feature.ONE_FD) else 1


def close_all(fds: Sequence[int]) -> None:
    """Close every fd in ``fds``."""
    for fd in fds:
        os.close(fd)


def assert_same_file(sent: int, received: int) -> None:
    """``received`` is a new fd for the open file description of ``sent``.

    Checks a different number, the same st_dev/st_ino, and shared status
    flags (O_NONBLOCK set through one shows through the other).
    """
    assert received != sent, "received fd has the sender's number: not a new fd"
    a, b = os.fstat(sent), os.fstat(received)
    assert (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino), "received fd is another file"
    flags = fcntl.fcntl(sent, fcntl.F_GETFL)
    try:
        fcntl.fcntl(sent, fcntl.F_SETFL, flags ^ os.O_NONBLOCK)
        shared = fcntl.fcntl(received, fcntl.F_GETFL) & os.O_NONBLOCK
        assert shared == (flags ^ os.O_NONBLOCK) & os.O_NONBLOCK, (
            "status flags are not shared: not the same open file description"
        )
    finally:
        fcntl.fcntl(sent, fcntl.F_SETFL, flags)


@dataclass
class Truncated:
    """What a receive that cut fds came to."""

    reported: bool
    msg: bytes | None  # None when the backend raised
    fds: list[int] | None  # None when the backend raised
    result: Any = None


def receive_truncated(backend: Caller, receive: Callable[[], Any]) -> Truncated:
    """Run ``receive``, which must cut fds, and see whether that was reported.

    Reported means: the result's ``.truncated`` is true (style
    ``attribute``) or the declared ``truncation_error`` was raised (style
    ``exception``). A backend of style ``none`` never reports.
    """
    if backend.truncation == "exception":
        try:
            result = receive()
        except backend.truncation_error:
            return Truncated(reported=True, msg=None, fds=None)
        msg, fds = result
        return Truncated(reported=False, msg=msg, fds=list(fds), result=result)
    result = receive()
    msg, fds = result
    reported = backend.truncation == "attribute" and bool(getattr(result, "truncated", False))
    return Truncated(reported=reported, msg=msg, fds=list(fds), result=result)
