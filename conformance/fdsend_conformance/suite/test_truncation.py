"""TRUNC: a receive that cannot take every fd says so and leaks nothing."""

from __future__ import annotations

import socket

import pytest

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import (
    SEVERAL_FDS,
    check_payload,
    receive_truncated,
    unsupported,
)
from fdsend_conformance.harness.fds import identities, identity
from fdsend_conformance.harness.sockets import pending

SENT = 8


@pytest.mark.clause("TRUNC-1")
@SEVERAL_FDS
@pytest.mark.parametrize("numfds", [1, SENT - 1, SENT, SENT + 8])
def test_truncation_is_reported_exactly_when_fds_are_cut(backend, pair, closer, numfds):
    sent = closer.distinct_fds(SENT)
    a, b = pair
    backend.sendfds(a, b"t", 0, sent)
    got = receive_truncated(backend, lambda: backend.recvfds(b, 16, 0, numfds))
    arrived = got.fds or []
    closer.fds(*arrived)
    assert len(arrived) <= numfds, (
        f"asked for at most {numfds} fds, got {len(arrived)}: numfds is not a limit"
    )
    if numfds >= SENT:  # room to spare: nothing was cut, nothing may be reported
        assert not got.reported, f"{SENT} fds sent, room for {numfds}: truncation reported"
        assert identities(arrived) == identities(sent), "the fds did not all arrive, in order"
        return
    assert got.reported, (
        f"{SENT} fds sent, room for {numfds}: "
        f"{len(arrived)} arrived and truncation was not reported "
        f"(declared style: {backend.truncation})"
    )


@pytest.mark.clause("TRUNC-2")
@SEVERAL_FDS
def test_arrived_fds_are_the_first_in_order(backend, pair, closer):
    sent = closer.distinct_fds(SENT)
    a, b = pair
    backend.sendfds(a, b"t", 0, sent)
    got = receive_truncated(backend, lambda: backend.recvfds(b, 16, 0, 3))
    if got.fds is None:
        unsupported(f"{backend.name} raises on truncation; nothing arrives to check")
    closer.fds(*got.fds)
    assert identities(got.fds) == identities(sent[:3])


@pytest.mark.clause("TRUNC-3")
@SEVERAL_FDS
@pytest.mark.parametrize("numfds", [1, 3])
def test_dropped_fds_leave_nothing_open(backend, pair, closer, numfds):
    sent = closer.distinct_fds(SENT)
    a, b = pair
    backend.sendfds(a, b"t", 0, sent)
    before = fdtable.open_fds()
    got = receive_truncated(backend, lambda: backend.recvfds(b, 16, 0, numfds))
    arrived = got.fds or []
    new = fdtable.leaked_since(before)
    closer.fds(*new)
    assert sorted(arrived) == new, (
        f"fds open after the receive that the backend did not return: "
        f"{[fdtable.describe(fd) for fd in sorted(set(new) - set(arrived))]}"
    )
    assert len(arrived) <= numfds
    assert not pending(b), "the cut fds are still queued on the socket"


@pytest.mark.clause("TRUNC-4")
@SEVERAL_FDS
def test_numfds_zero_reports_and_leaks_nothing(backend, pair, closer):
    sent = closer.distinct_fds(2)
    a, b = pair
    backend.sendfds(a, b"zero", 0, sent)
    before = fdtable.open_fds()
    got = receive_truncated(backend, lambda: backend.recvfds(b, 16, 0, 0))
    new = fdtable.leaked_since(before)
    closer.fds(*new)
    assert new == [], f"fds installed by numfds=0: {[fdtable.describe(fd) for fd in new]}"
    assert got.fds in (None, [])
    assert got.reported, "numfds=0 dropped 2 fds without reporting truncation"
    if got.msg is not None:
        check_payload(backend, got.msg, b"zero")


@pytest.mark.clause("TRUNC-5")
@pytest.mark.requires(Feature.PAYLOAD)
@pytest.mark.parametrize(
    "kind", [socket.SOCK_SEQPACKET, socket.SOCK_DGRAM], ids=["seqpacket", "dgram"]
)
@pytest.mark.parametrize("size", [4, 0], ids=["cut-to-4", "cut-to-0"])  # 0: the fds alone
def test_payload_truncation_is_reported(backend, make_pair, closer, kind, size):
    a, b = make_pair(kind)
    sent = closer.distinct_fds(1)
    backend.sendfds(a, b"0123456789", 0, sent)
    try:
        result = backend.recvfds(b, size, 0, 4)
    except backend.truncation_error:
        if backend.truncation != "exception":
            raise
        return  # reported by raising, as declared
    msg, fds = result
    closer.fds(*fds)
    assert msg == b"0123456789"[:size]
    assert getattr(result, "msg_truncated", False), f"payload cut to {size} bytes, not reported"
    assert identities(fds) == [identity(sent[0])]
    backend.sendfds(a, b"0123", 0, sent)
    whole = backend.recvfds(b, 4, 0, 4)
    closer.fds(*whole[1])  # (msg, fds)
    assert not getattr(whole, "msg_truncated", False), "a payload that fit reported as cut"
