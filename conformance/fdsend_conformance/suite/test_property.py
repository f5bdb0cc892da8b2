"""PROP: the transfer invariants hold for generated inputs (hypothesis).

Derandomised, with no example database: a failure reproduces on every run
and every machine, and hypothesis prints the smallest failing example.
"""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fdsend_conformance import fdtable
from fdsend_conformance.backend import Backend, Feature
from fdsend_conformance.checks import receive_truncated
from fdsend_conformance.sockets import identity, make_fd, socket_pair

SOCKET_TYPES = {
    "stream": socket.SOCK_STREAM,
    "seqpacket": socket.SOCK_SEQPACKET,
    "dgram": socket.SOCK_DGRAM,
}
KINDS = ["pipe-read", "pipe-write", "file", "devnull", "unix", "memfd"]

reproducible = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    # The suite's autouse leak check wraps the whole test; each example
    # checks its own fds.
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@st.composite
def transfers(draw: Any) -> dict[str, Any]:
    """One send and its receive: socket type, fds, payload, numfds, len."""
    kind = draw(st.sampled_from(list(SOCKET_TYPES)))
    count = draw(st.one_of(st.integers(0, 4), st.integers(0, 253)))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=count, max_size=count))
    # A stream needs a payload byte to carry fds (LOSS-2); the rest may be empty.
    smallest = 1 if kind == "stream" else 0
    size = draw(st.one_of(st.integers(smallest, 64), st.integers(smallest, 65536)))
    numfds = draw(st.integers(0, 260))
    # On a stream `len` covers the payload (the rest is read after); on
    # message sockets it may cut it.
    length = size if kind == "stream" else draw(st.integers(0, size + 8))
    return {"kind": kind, "kinds": kinds, "size": size, "numfds": numfds, "len": length}


def _check_transfer(backend: Backend, case: dict[str, Any]) -> None:
    socket_type = SOCKET_TYPES[case["kind"]]
    feature = {socket.SOCK_SEQPACKET: Feature.SEQPACKET, socket.SOCK_DGRAM: Feature.DGRAM}
    if socket_type in feature and not backend.supports(feature[socket_type]):
        return
    payload = os.urandom(case["size"])
    opened: list[int] = []
    a, b = socket_pair(socket_type)
    try:
        sent = []
        for kind in case["kinds"]:
            fds = make_fd(kind)
            opened += fds
            sent.append(fds[0])
        backend.sendfds(a, payload, 0, sent)
        before = fdtable.open_fds()
        got = receive_truncated(backend, lambda: backend.recvfds(b, case["len"], 0, case["numfds"]))
        new = fdtable.leaked_since(before)
        opened += new
        arrived = got.fds if got.fds is not None else []
        cut = len(sent) > case["numfds"]
        assert sorted(arrived) == new, "fds installed that were neither returned nor closed"
        if got.fds is not None:
            expected = [identity(fd) for fd in sent[: case["numfds"]]]
            assert [identity(fd) for fd in got.fds] == expected
        assert got.reported == cut, (
            f"{len(sent)} sent, numfds {case['numfds']}: reported={got.reported}"
        )
        if got.msg is not None and backend.supports(Feature.PAYLOAD):
            _check_payload(got, payload, case, b)
    finally:
        a.close()
        b.close()
        for fd in opened:
            os.close(fd)


def _check_payload(got: Any, payload: bytes, case: dict[str, Any], b: socket.socket) -> None:
    if case["kind"] == "stream":
        rest = b""
        while len(got.msg) + len(rest) < len(payload):
            chunk = b.recv(len(payload))
            assert chunk, "the stream ended before the payload did"
            rest += chunk
        assert got.msg + rest == payload
        return
    assert got.msg == payload[: case["len"]]
    if case["len"] < len(payload):
        assert getattr(got.result, "msg_truncated", False), "payload cut and not reported"


@pytest.mark.clause("PROP-1")
@reproducible
@given(case=transfers())
def test_transfer_invariants(backend, case):
    _check_transfer(backend, case)
