"""XFER: fds and payload get across, as the same open files."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from fdsend_conformance.backend import Caller, Feature
from fdsend_conformance.harness.checks import (
    SEVERAL_FDS,
    assert_same_file,
    check_arrived,
    check_payload,
    per_call,
)
from fdsend_conformance.harness.closer import Closer
from fdsend_conformance.harness.fds import FD_KINDS, identities, identity, make_fd
from fdsend_conformance.harness.limits import SCM_MAX_FD
from fdsend_conformance.harness.processes import fork_call, reap, send_file_from_child
from fdsend_conformance.harness.sockets import UNIX_TYPES, recv_stream, set_io_timeout
from fdsend_conformance.harness.timeouts import SPAWN_TIMEOUT, SPAWNED_TEST_TIMEOUT


def _check_round_trip(
    backend: Caller,
    closer: Closer,
    pair: tuple[socket.socket, socket.socket],
    sent: list[int],
    numfds: int | None = None,
) -> None:
    """Send ``sent`` in one call; one receive (room for ``numfds``, else as many) gets them all.

    They arrive in order, each the same file, with the payload.
    """
    a, b = pair
    backend.sendfds(a, b"round trip", 0, sent)
    received = backend.recvfds(b, 16, 0, len(sent) if numfds is None else numfds)
    check_arrived(backend, closer, received, b"round trip", sent)


@pytest.mark.clause("XFER-1")
@SEVERAL_FDS
@pytest.mark.parametrize("count", [1, 2, 16, SCM_MAX_FD])
def test_several_fds_arrive_in_order(backend, pair, closer, count):
    _check_round_trip(backend, closer, pair, closer.distinct_fds(count))


@pytest.mark.clause("XFER-1")
@SEVERAL_FDS
def test_asking_for_more_than_scm_max_fd(backend, pair, closer):
    # room for more fds than the kernel ever sends in one message
    _check_round_trip(backend, closer, pair, closer.distinct_fds(2), numfds=SCM_MAX_FD + 1)


@pytest.mark.clause("XFER-2")
@SEVERAL_FDS
def test_every_kind_of_fd_in_one_call(backend, pair, closer):
    a, _ = pair
    sent = [a.fileno()]  # the AF_UNIX socket itself
    for kind in FD_KINDS:
        try:
            fds = make_fd(kind)
        except OSError:
            continue  # not on this system (e.g. eventfd before Python 3.10)
        closer.fds(*fds)
        sent.append(fds[0])
    assert len(sent) >= 7, "too few fd kinds available to prove anything"
    _check_round_trip(backend, closer, pair, sent)


@pytest.mark.clause("XFER-3")
def test_received_file_shares_offset_flags_and_data(backend, pair, closer, new_fd):
    file_fd = new_fd("file")
    os.write(file_fd, b"0123456789")
    a, b = pair
    backend.sendfds(a, b"f", 0, [file_fd])
    _, fds = backend.recvfds(b, 16, 0, 4)
    closer.fds(*fds)
    [received] = fds
    assert_same_file(file_fd, received)
    os.lseek(file_fd, 3, os.SEEK_SET)
    assert os.lseek(received, 0, os.SEEK_CUR) == 3, "file offset is not shared"
    os.write(received, b"abc")
    assert os.pread(file_fd, 10, 0) == b"012abc6789"


@pytest.mark.clause("XFER-3")
def test_received_pipe_end_carries_data(backend, pair, closer):
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    a, b = pair
    backend.sendfds(a, b"p", 0, [write_end])
    _, fds = backend.recvfds(b, 16, 0, 4)
    closer.fds(*fds)
    assert_same_file(write_end, fds[0])
    os.write(fds[0], b"through the received end")
    assert os.read(read_end, 100) == b"through the received end"


@pytest.mark.clause("XFER-4")
def test_received_fds_outlive_the_senders_copies(backend, pair, closer):
    read_end, write_end = os.pipe()
    closer.fds(read_end)
    a, b = pair
    expected = identity(write_end)
    backend.sendfds(a, b"p", 0, [write_end])
    os.close(write_end)
    _, fds = backend.recvfds(b, 16, 0, 4)
    closer.fds(*fds)
    assert identities(fds) == [expected]  # else the read below could block
    os.write(fds[0], b"still open")
    assert os.read(read_end, 100) == b"still open"


@pytest.mark.clause("XFER-5")
@SEVERAL_FDS  # none at all
@pytest.mark.parametrize("no_fds", [None, []], ids=["None", "empty-list"])
def test_zero_fds_is_a_plain_message(backend, pair, no_fds):
    a, b = pair
    backend.sendfds(a, b"plain", 0, no_fds)
    msg, fds = backend.recvfds(b, 16, 0, 4)
    check_payload(backend, msg, b"plain")
    assert list(fds) == []


def _receive_exactly(backend: Caller, sock: socket.socket, size: int, numfds: int):
    """Receive ``size`` payload bytes on a stream: fds come with the first part."""
    msg, fds = backend.recvfds(sock, size, 0, numfds)
    rest, later = recv_stream(sock, size - len(msg))
    return msg + rest, [*fds, *later]


@pytest.mark.clause("XFER-6")
@pytest.mark.requires(Feature.PAYLOAD)
@pytest.mark.parametrize(
    "payload",
    [b"\x00", b"a\x00b\x00\x00c", bytes(range(256)) * 4, os.urandom(65536), bytearray(b"like")],
    ids=["nul", "embedded-nuls", "all-bytes", "64KiB", "bytearray"],
)
@pytest.mark.parametrize("kind", list(UNIX_TYPES))
def test_payload_arrives_intact(backend, make_pair, closer, payload, kind):
    a, b = make_pair(UNIX_TYPES[kind])
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    sent = backend.sendfds(a, payload, 0, [read_end])
    assert sent == len(payload)
    if kind == "stream":
        msg, fds = _receive_exactly(backend, b, len(payload), 4)
    else:
        msg, fds = backend.recvfds(b, len(payload), 0, 4)
    closer.fds(*fds)
    assert msg == payload
    assert identities(fds) == [identity(read_end)]


@pytest.mark.clause("XFER-7")
@pytest.mark.parametrize("kind", list(UNIX_TYPES))
def test_every_unix_socket_type(backend, make_pair, closer, kind):
    pair = make_pair(UNIX_TYPES[kind])
    _check_round_trip(backend, closer, pair, closer.distinct_fds(per_call(backend, 3)))


@pytest.mark.clause("XFER-8")
def test_forked_sender(backend, pair, closer, tmp_path):
    path = tmp_path / "shared"
    path.write_bytes(b"from the child")
    a, b = pair

    def child() -> None:
        b.close()
        with open(path, "rb") as file:
            file.seek(5)
            backend.sendfds(a, b"forked", 0, [file.fileno()])

    pid = fork_call(child)
    try:
        a.close()
        msg, fds = backend.recvfds(b, 16, 0, 4)
        closer.fds(*fds)
    finally:
        status = reap(pid)  # bounded: a child stuck in a broken send is killed
    assert status == 0
    check_payload(backend, msg, b"forked")
    [received] = fds
    assert os.lseek(received, 0, os.SEEK_CUR) == 5
    assert os.pread(received, 100, 0) == b"from the child"


@pytest.mark.clause("XFER-8")
@pytest.mark.timeout(SPAWNED_TEST_TIMEOUT)
def test_spawned_sender(backend, backend_opener, closer, tmp_path: Path, spawn_context):
    path = tmp_path / "shared"
    path.write_bytes(b"from the spawned child")
    address = "\0fdsend-" + uuid.uuid4().hex  # abstract: no file, no clash
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    closer.objects(listener)
    listener.bind(address)
    listener.listen(1)
    listener.settimeout(SPAWN_TIMEOUT)
    child = spawn_context.Process(
        target=send_file_from_child, args=(address, backend_opener, str(path), b"spawned")
    )
    child.start()
    try:
        conn, _ = listener.accept()
        closer.objects(conn)
        conn.settimeout(None)
        set_io_timeout(conn)
        msg, fds = backend.recvfds(conn, 16, 0, 4)
        closer.fds(*fds)
        conn.send(b"k")  # let the child close its copy and exit
        child.join(SPAWN_TIMEOUT)
        assert child.exitcode == 0
    finally:
        if child.is_alive():
            child.kill()
            child.join()
        child.close()
    check_payload(backend, msg, b"spawned")
    [received] = fds
    assert os.lseek(received, 0, os.SEEK_CUR) == 1
    assert os.pread(received, 100, 0) == b"from the spawned child"
