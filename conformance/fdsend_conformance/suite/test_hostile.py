"""HOSTILE: a raw peer, written here with plain sendmsg, breaks the rules.

Whatever it sends, the backend under test must hand every fd it installed
back to the caller or close it, and must not crash. Raising is allowed; a
leak is not.
"""

from __future__ import annotations

import array
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

import pytest

from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import SEVERAL_FDS, check_payload, per_call
from fdsend_conformance.harness.closer import Closer
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.limits import SCM_MAX_FD

RIGHTS = (socket.SOL_SOCKET, socket.SCM_RIGHTS)


def rights(fds: list[int]) -> tuple[int, int, bytes]:
    """One SCM_RIGHTS control message carrying ``fds``."""
    return (*RIGHTS, array.array("i", fds).tobytes())


def credentials() -> tuple[int, int, bytes]:
    """An explicit SCM_CREDENTIALS message with this process's own ids."""
    ucred = struct.pack("3i", os.getpid(), os.getuid(), os.getgid())
    return (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, ucred)


def account(closer: Closer, receive: Callable[[], Any]) -> tuple[Any, list[int], list[int]]:
    """Run ``receive``; return (result or None if it raised, fds returned, fds new).

    Every fd new in this process afterwards is handed to ``closer``.
    """
    before = fdtable.open_fds()
    try:
        result = receive()
    except Exception:
        result = None
    new = fdtable.leaked_since(before)
    closer.fds(*new)
    returned = sorted(result[1]) if result is not None else []
    return result, returned, new


def assert_nothing_leaked(returned: list[int], new: list[int]) -> None:
    leaked = sorted(set(new) - set(returned))
    assert not leaked, f"installed and neither returned nor closed: {leaked}"


@pytest.mark.clause("HOSTILE-1")
def test_flood_of_fds_to_a_receiver_asking_for_one(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(SCM_MAX_FD)
    a.sendmsg([b"flood"], [rights(sent)])
    _, returned, new = account(closer, lambda: backend.recvfds(b, 16, 0, 1))
    assert_nothing_leaked(returned, new)
    assert len(returned) <= 1


@pytest.mark.clause("HOSTILE-2")
def test_explicit_credentials_beside_fds(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(per_call(backend, 2))
    a.sendmsg([b"creds"], [credentials(), rights(sent)])
    result, returned, new = account(closer, lambda: backend.recvfds(b, 16, 0, len(sent)))
    assert_nothing_leaked(returned, new)
    assert result is not None, "the receive failed on a message with credentials"
    assert identities(result[1]) == identities(sent)


@pytest.mark.clause("HOSTILE-3")
@SEVERAL_FDS
def test_two_rights_messages_in_one_send(backend, pair, closer):
    # Measured on Linux 6.18: the kernel merges them into one list, in order.
    a, b = pair
    first, second = closer.distinct_fds(2), closer.distinct_fds(3)
    a.sendmsg([b"two"], [rights(first), rights(second)])
    result, returned, new = account(closer, lambda: backend.recvfds(b, 16, 0, 8))
    assert_nothing_leaked(returned, new)
    assert result is not None
    assert identities(result[1]) == identities(first + second)


@pytest.mark.clause("HOSTILE-4")
def test_fds_with_no_payload_on_seqpacket(backend, make_pair, closer):
    a, b = make_pair(socket.SOCK_SEQPACKET)
    sent = closer.distinct_fds(per_call(backend, 2))
    a.sendmsg([b""], [rights(sent)])
    result, returned, new = account(closer, lambda: backend.recvfds(b, 16, 0, len(sent)))
    assert_nothing_leaked(returned, new)
    assert result is not None, "an empty message with fds made the receive fail"
    check_payload(backend, result[0], b"")
    assert identities(result[1]) == identities(sent)


SIZES = {
    "longer-than-len-dgram": (socket.SOCK_DGRAM, b"x" * 4096, 4),
    "longer-than-len-seqpacket": (socket.SOCK_SEQPACKET, b"x" * 4096, 4),
    "shorter-than-len-stream": (socket.SOCK_STREAM, b"x", 4),
    "one-byte-len-stream": (socket.SOCK_STREAM, b"abcdef", 1),
}


@pytest.mark.clause("HOSTILE-5")
@pytest.mark.parametrize("case", list(SIZES))
def test_unexpected_payload_sizes(backend, make_pair, closer, case):
    kind, payload, length = SIZES[case]
    a, b = make_pair(kind)
    sent = closer.distinct_fds(per_call(backend, 2))
    a.sendmsg([payload], [rights(sent)])
    _, returned, new = account(closer, lambda: backend.recvfds(b, length, 0, len(sent)))
    assert_nothing_leaked(returned, new)
