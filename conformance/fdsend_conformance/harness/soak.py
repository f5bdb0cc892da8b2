"""Soak: pass many fds between two processes and account for every one.

The parent sends messages of up to SCM_MAX_FD (253) fds, each fd one of a fixed set of
distinct pipe ends, to a receiver started with multiprocessing's "spawn"
(a fresh interpreter that loads the backend by name). The receiver checks
every fd's identity and order and closes it; after the last message the
sender shuts its side down and the receiver reads on to end of stream, so
anything more (a duplicated message, stray fds) is counted too.

Both sides measure their own fd table (before the first message and after
the last) and their resident memory (after a warm-up of a tenth of the
messages, and at the end). :meth:`SoakResult.problems` judges a run: every
fd once, in order, as the right file; neither fd table changed; neither
side's RSS grew by more than :data:`RSS_GROWTH_BOUND_KIB`.

LOAD-3 runs it in the suite; ``fdsend-conformance soak`` runs it outside
pytest (:mod:`fdsend_conformance.tools.soak`). Both sides open the backend
with the opener they are given (see :data:`~fdsend_conformance.backend.Opener`).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fdsend_conformance.backend import Feature, Opener
from fdsend_conformance.harness.fds import distinct_fds, identity
from fdsend_conformance.harness.limits import SCM_MAX_FD
from fdsend_conformance.harness.sockets import recv_stream, set_io_timeout

__all__ = ["RSS_GROWTH_BOUND_KIB", "SOAK_IO_TIMEOUT", "SOAK_TIMEOUT", "SoakResult", "Usage", "soak"]

PER_MESSAGE = SCM_MAX_FD

#: One blocking call of either side, and the whole run.
SOAK_IO_TIMEOUT = 60.0
SOAK_TIMEOUT = 600.0

#: The most either side's RSS may grow between the warm-up and the end.
#: A leak of 8 bytes per fd (one list slot) over the 900,000 fds after the
#: warm-up of a 1,000,000-fd soak is about 7,000 KiB; the growth measured
#: for the built-in backends at 1,000,000 fds was 0 KiB (CPython 3.11,
#: Linux 6.18), and pymalloc takes memory in arenas of at most 1 MiB.
RSS_GROWTH_BOUND_KIB = 2048


@dataclass
class Usage:
    """One process's fd count and RSS, early in the run and at its end."""

    fds_before: int  # before the first message
    fds_after: int  # after the last message
    rss_early_kib: int  # after the warm-up
    rss_end_kib: int

    @property
    def rss_growth_kib(self) -> int:
        return self.rss_end_kib - self.rss_early_kib


@dataclass
class SoakResult:
    """What the receiver counted, and what the run cost on each side."""

    sent: int
    received: int  # fds in the messages the receiver expected
    wrong: int  # fds that arrived out of order or as another file
    extra_fds: int  # fds that arrived after the last message
    extra_bytes: int  # payload bytes that arrived after the last message
    sender: Usage
    receiver: Usage
    seconds: float

    @property
    def fds_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    @property
    def lost(self) -> int:
        return max(0, self.sent - self.received)

    @property
    def duplicated(self) -> int:
        return max(0, self.received - self.sent) + self.extra_fds

    def problems(self) -> list[str]:
        """Everything wrong with the run, one sentence each; empty if clean."""
        found = []
        if self.lost:
            found.append(f"{self.lost} fds lost")
        if self.duplicated or self.extra_bytes:
            found.append(
                f"{self.duplicated} fds and {self.extra_bytes} payload bytes more than were sent"
            )
        if self.wrong:
            found.append(f"{self.wrong} fds arrived out of order or as another file")
        for side, usage in (("sender", self.sender), ("receiver", self.receiver)):
            if usage.fds_after != usage.fds_before:
                found.append(f"the {side}'s fds went {usage.fds_before} -> {usage.fds_after}")
            if usage.rss_growth_kib > RSS_GROWTH_BOUND_KIB:
                found.append(
                    f"the {side}'s RSS grew by {usage.rss_growth_kib} KiB "
                    f"(bound {RSS_GROWTH_BOUND_KIB} KiB)"
                )
        return found


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _fd_count() -> int:
    # listdir's own fd is in the listing, on both sides alike.
    return len(os.listdir("/proc/self/fd"))


def _counts(total_fds: int, one_fd: bool = False) -> list[int]:
    """The number of fds in each message: full messages, then the remainder.

    For an API that sends one fd per call (``one_fd``), as many messages of one fd.
    """
    full, rest = divmod(total_fds, PER_MESSAGE)
    return [1 if one_fd else PER_MESSAGE] * full + ([1 if one_fd else rest] if rest else [])


def _warm(index: int, messages: int) -> bool:
    return index == messages // 10


def _drain(sock: socket.socket) -> tuple[int, int]:
    """Read ``sock`` to end of stream; return the bytes and fds that came."""
    sock.setblocking(True)  # whatever the backend left; the kernel timeout holds
    extra, fds = recv_stream(sock)
    for fd in fds:
        os.close(fd)
    return len(extra), len(fds)


def _receiver(address: str, opener: Opener, identities: list[list[int]], total: int) -> None:
    """Spawned child: receive ``total`` fds, check and close every one."""
    expected = [tuple(pair) for pair in identities]
    # (a driver starts as the caller opens, before the fd count)
    with opener() as backend, socket.socket(socket.AF_UNIX) as sock:
        counts = _counts(total, not backend.supports(Feature.ONE_FD))
        set_io_timeout(sock, SOAK_IO_TIMEOUT)
        sock.connect(address)
        fds_before = _fd_count()
        received = wrong = 0
        rss_early = 0
        payload = backend.supports(Feature.PAYLOAD)
        for index, count in enumerate(counts):
            msg, fds = backend.recvfds(sock, 16, 0, PER_MESSAGE)
            if payload and msg != b"%015d" % index:
                wrong += len(fds) or 1
            for position, fd in enumerate(fds):
                if position >= count or identity(fd) != expected[position]:
                    wrong += 1
                os.close(fd)
            received += len(fds)
            if _warm(index, len(counts)):
                rss_early = _rss_kib()
        fds_after = _fd_count()
        rss_end = _rss_kib()
        extra_bytes, extra_fds = _drain(sock)
        report = {
            "received": received,
            "wrong": wrong,
            "extra_fds": extra_fds,
            "extra_bytes": extra_bytes,
            "usage": [fds_before, fds_after, rss_early, rss_end],
        }
        sock.sendall(json.dumps(report).encode())


def soak(opener: Opener, total_fds: int, timeout: float = SOAK_TIMEOUT) -> SoakResult:
    """Send ``total_fds`` fds to a spawned receiver, both sides on the backend ``opener`` opens."""
    if total_fds < 1:
        raise ValueError(f"total_fds must be at least 1, not {total_fds}")
    calls = contextlib.ExitStack()
    backend = calls.enter_context(opener())  # (a driver starts here, before the fd count)
    counts = _counts(total_fds, not backend.supports(Feature.ONE_FD))
    files = distinct_fds(PER_MESSAGE)
    address = "\0fdsend-soak-" + uuid.uuid4().hex
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    child = None
    try:
        listener.bind(address)
        listener.listen(1)
        listener.settimeout(SOAK_IO_TIMEOUT)
        identities = [list(identity(fd)) for fd in files]
        context = multiprocessing.get_context("spawn")
        child = context.Process(target=_receiver, args=(address, opener, identities, total_fds))
        child.start()
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(None)
            set_io_timeout(conn, SOAK_IO_TIMEOUT)
            fds_before = _fd_count()
            rss_early = 0
            started = time.monotonic()
            for index, count in enumerate(counts):
                backend.sendfds(conn, b"%015d" % index, 0, files[:count])
                if _warm(index, len(counts)):
                    rss_early = _rss_kib()
            fds_after = _fd_count()
            rss_end = _rss_kib()
            conn.shutdown(socket.SHUT_WR)
            data, _ = recv_stream(conn)  # the receiver's report: bytes only
            seconds = time.monotonic() - started
        child.join(timeout)
        if child.exitcode != 0:
            raise RuntimeError(f"soak receiver exited with {child.exitcode}")
        report: dict[str, Any] = json.loads(data)
        return SoakResult(
            sent=sum(counts),
            received=report["received"],
            wrong=report["wrong"],
            extra_fds=report["extra_fds"],
            extra_bytes=report["extra_bytes"],
            sender=Usage(fds_before, fds_after, rss_early, rss_end),
            receiver=Usage(*report["usage"]),
            seconds=seconds,
        )
    finally:
        calls.close()
        listener.close()
        for fd in files:
            os.close(fd)
        if child is not None:
            if child.is_alive():
                child.kill()
                child.join()
            child.close()
