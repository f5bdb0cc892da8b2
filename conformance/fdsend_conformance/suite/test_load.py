"""LOAD: many fds, many threads, several senders: every fd exactly once."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable

import pytest

from fdsend_conformance.backend import Caller, Feature
from fdsend_conformance.harness.checks import check_payload, unsupported
from fdsend_conformance.harness.fds import distinct_fds, identities, identity
from fdsend_conformance.harness.limits import SCM_MAX_FD
from fdsend_conformance.harness.soak import soak
from fdsend_conformance.harness.sockets import set_io_timeout
from fdsend_conformance.harness.timeouts import IO_TIMEOUT, LOAD_TEST_TIMEOUT

THREADS = 8
MESSAGES = 200


def run_threads(targets: list[Callable[[], None]]) -> None:
    """Run every target in its own thread; re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=guarded(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(IO_TIMEOUT * 6)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def tag(backend: Caller, sender: int, sequence: int) -> bytes:
    return b"%02d:%06d" % (sender, sequence) if backend.supports(Feature.PAYLOAD) else b""


@pytest.mark.clause("LOAD-1")
def test_threads_each_on_their_own_pair(backend, closer):
    files = closer.distinct_fds(THREADS)
    pairs = [socket.socketpair() for _ in range(THREADS)]
    for pair in pairs:
        closer.objects(*pair)
        for sock in pair:
            set_io_timeout(sock)
    seen: list[list[tuple[bytes, list[tuple[int, int]]]]] = [[] for _ in range(THREADS)]

    def worker(index: int) -> Callable[[], None]:
        a, b = pairs[index]

        def run() -> None:
            for sequence in range(MESSAGES):
                backend.sendfds(a, tag(backend, index, sequence), 0, [files[index]])
                msg, fds = backend.recvfds(b, 16, 0, 2)
                seen[index].append((msg, identities(fds)))
                for fd in fds:
                    os.close(fd)

        return run

    run_threads([worker(i) for i in range(THREADS)])
    for index in range(THREADS):
        expected = [(tag(backend, index, s), [identity(files[index])]) for s in range(MESSAGES)]
        assert seen[index] == expected, f"thread {index}: fds or payloads lost or mixed up"


def _several_senders(backend: Caller, senders: list[socket.socket], receiver: socket.socket):
    files = distinct_fds(len(senders))
    try:
        per_sender = MESSAGES // 2

        def sender(index: int) -> Callable[[], None]:
            def run() -> None:
                for sequence in range(per_sender):
                    backend.sendfds(
                        senders[index], tag(backend, index, sequence), 0, [files[index]]
                    )

            return run

        received: list[tuple[bytes, tuple[int, int]]] = []

        def receive_all() -> None:
            for _ in range(per_sender * len(senders)):
                msg, fds = backend.recvfds(receiver, 16, 0, 2)
                assert len(fds) == 1, f"a message arrived with {len(fds)} fds"
                received.append((msg, identity(fds[0])))
                os.close(fds[0])

        run_threads([sender(i) for i in range(len(senders))] + [receive_all])
        for index in range(len(senders)):
            mine = [r for r in received if r[1] == identity(files[index])]
            assert len(mine) == per_sender, f"sender {index}: {len(mine)} of {per_sender} arrived"
            tags = [tag(backend, index, s) for s in range(per_sender)]
            check_payload(backend, [msg for msg, _ in mine], tags, f"sender {index}: mixed up")
    finally:
        for fd in files:
            os.close(fd)


@pytest.mark.clause("LOAD-2")
def test_several_senders_to_one_datagram_receiver(backend, closer):
    if not backend.supports(Feature.DGRAM):
        unsupported(f"{backend.name} lacks dgram")
    address = "\0fdsend-load-" + uuid.uuid4().hex
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    closer.objects(receiver)
    receiver.bind(address)
    set_io_timeout(receiver)
    senders = []
    for _ in range(4):
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        closer.objects(sender)
        sender.connect(address)
        set_io_timeout(sender)
        senders.append(sender)
    _several_senders(backend, senders, receiver)


@pytest.mark.clause("LOAD-2")
def test_several_threads_sending_on_one_seqpacket_socket(backend, make_pair):
    a, b = make_pair(socket.SOCK_SEQPACKET)
    _several_senders(backend, [a] * 4, b)


@pytest.mark.clause("LOAD-3")
@pytest.mark.timeout(LOAD_TEST_TIMEOUT)
def test_soak_between_two_processes(backend, backend_opener, spawn_context):
    total = int(os.environ.get("FDSEND_SOAK_FDS", "50000"))
    result = soak(backend_opener, total)
    # An API of one fd per call sends as many messages, one fd each.
    messages = -(-total // SCM_MAX_FD)
    assert result.sent == (total if backend.supports(Feature.ONE_FD) else messages)
    # Lost, duplicated, out of order; a change in either side's fd table or
    # RSS growth beyond the bound on either side.
    problems = result.problems()
    assert not problems, "; ".join(problems)
