"""Timed batches of rounds, in one process or across two."""

from __future__ import annotations

import gc
import os
import signal
import socket
import time

from fdsend_conformance.bench.contestants import Case, Contestant
from fdsend_conformance.processes import fork_call, reap
from fdsend_conformance.sockets import set_io_timeout

__all__ = ["batch_ns"]


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    for sock in (a, b):
        set_io_timeout(sock, 30.0)
    return a, b


def batch_ns(contestant: Contestant, case: Case, rounds: int) -> float:
    """Nanoseconds per round over one batch of ``rounds`` rounds."""
    read_end, write_end = os.pipe()
    fds = [read_end] * case.fds  # one file, passed case.fds times per message
    payload = b"\x5a" * case.payload
    a, b = _pair()
    try:
        if case.cross_process:
            return _cross_process(contestant, case, rounds, a, b, payload, fds)
        send, receive = contestant.send, contestant.receive_round
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            start = time.perf_counter_ns()
            for _ in range(rounds):
                send(a, payload, fds)
                receive(b, case.payload, case.fds)
            return (time.perf_counter_ns() - start) / rounds
        finally:
            if gc_was_enabled:
                gc.enable()
    finally:
        a.close()
        b.close()
        os.close(read_end)
        os.close(write_end)


def _cross_process(
    contestant: Contestant,
    case: Case,
    rounds: int,
    a: socket.socket,
    b: socket.socket,
    payload: bytes,
    fds: list[int],
) -> float:
    # Acks go through a pipe of their own: a backend may make the socket
    # non-blocking (anyio does), and the harness must not depend on its mode.
    ack_read, ack_write = os.pipe()

    def receiver() -> None:
        a.close()
        os.close(ack_read)
        os.write(ack_write, b"r")  # ready: the timing starts now
        for _ in range(rounds):
            contestant.receive_round(b, case.payload, case.fds)
            os.write(ack_write, b"k")

    pid = fork_call(receiver)
    os.close(ack_write)
    finished = False
    try:
        if os.read(ack_read, 1) != b"r":
            raise RuntimeError(f"{contestant.name}: the receiver process did not start")
        send = contestant.send
        start = time.perf_counter_ns()
        for _ in range(rounds):
            send(a, payload, fds)
            if not os.read(ack_read, 1):
                raise RuntimeError(f"{contestant.name}: the receiver process stopped")
        elapsed = (time.perf_counter_ns() - start) / rounds
        finished = True
        return elapsed
    finally:
        os.close(ack_read)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        status = reap(pid)
        if finished and status != 0:
            raise RuntimeError(f"{contestant.name}: receiver process exited with {status}")
