"""Soak: pass many fds between two processes and account for every one.

The parent sends messages of up to 253 fds, each fd one of a fixed set of
distinct pipe ends, to a receiver started with multiprocessing's "spawn"
(a fresh interpreter that loads the backend by name). The receiver checks
every fd's identity and order, closes it, and at the end reports what it
counted, its fd table and its memory. ``python -m fdsend_conformance.soak``
runs it outside pytest and prints fds/s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fdsend_conformance.backend import Feature
from fdsend_conformance.registry import load_backend
from fdsend_conformance.sockets import distinct_fds, identity, set_io_timeout

__all__ = ["SoakResult", "main", "soak"]

PER_MESSAGE = 253


@dataclass
class SoakResult:
    """What the receiver counted, and what the run cost."""

    sent: int
    received: int
    wrong: int  # fds that arrived out of order or as another file
    receiver_fds_before: int
    receiver_fds_after: int
    rss_early_kib: int
    rss_end_kib: int
    seconds: float

    @property
    def fds_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _receiver(address: str, backend_name: str, identities: list[list[int]], messages: int) -> None:
    """Spawned child: receive ``messages`` messages, check and close every fd."""
    backend = load_backend(backend_name)
    expected = [tuple(pair) for pair in identities]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        set_io_timeout(sock, 60.0)
        sock.connect(address)
        fds_before = len(os.listdir("/proc/self/fd"))
        received = wrong = 0
        rss_early = 0
        payload = backend.supports(Feature.PAYLOAD)
        for index in range(messages):
            msg, fds = backend.recvfds(sock, 16, 0, PER_MESSAGE)
            if payload and msg != b"%015d" % index:
                wrong += len(fds) or 1
            for position, fd in enumerate(fds):
                if position >= len(expected) or identity(fd) != expected[position]:
                    wrong += 1
                os.close(fd)
            received += len(fds)
            if index == messages // 10:
                rss_early = _rss_kib()
        report = {
            "received": received,
            "wrong": wrong,
            "fds_before": fds_before,
            "fds_after": len(os.listdir("/proc/self/fd")),
            "rss_early": rss_early,
            "rss_end": _rss_kib(),
        }
        sock.sendall(json.dumps(report).encode())


def soak(backend_name: str, total_fds: int, timeout: float = 600.0) -> SoakResult:
    """Send ``total_fds`` fds to a spawned receiver through ``backend_name``."""
    backend = load_backend(backend_name)
    messages = max(1, -(-total_fds // PER_MESSAGE))
    files = distinct_fds(PER_MESSAGE)
    address = "\0fdsend-soak-" + uuid.uuid4().hex
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    child = None
    try:
        listener.bind(address)
        listener.listen(1)
        listener.settimeout(60)
        identities = [list(identity(fd)) for fd in files]
        context = multiprocessing.get_context("spawn")
        child = context.Process(
            target=_receiver, args=(address, backend_name, identities, messages)
        )
        child.start()
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(None)
            set_io_timeout(conn, 60.0)
            started = time.monotonic()
            for index in range(messages):
                backend.sendfds(conn, b"%015d" % index, 0, files)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            seconds = time.monotonic() - started
        child.join(timeout)
        if child.exitcode != 0:
            raise RuntimeError(f"soak receiver exited with {child.exitcode}")
        report: dict[str, Any] = json.loads(data)
        return SoakResult(
            sent=messages * PER_MESSAGE,
            received=report["received"],
            wrong=report["wrong"],
            receiver_fds_before=report["fds_before"],
            receiver_fds_after=report["fds_after"],
            rss_early_kib=report["rss_early"],
            rss_end_kib=report["rss_end"],
            seconds=seconds,
        )
    finally:
        listener.close()
        for fd in files:
            os.close(fd)
        if child is not None:
            if child.is_alive():
                child.kill()
                child.join()
            child.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run a soak and print the accounting; non-zero if any fd went astray."""
    parser = argparse.ArgumentParser(prog="python -m fdsend_conformance.soak")
    parser.add_argument("--backend", default="reference")
    parser.add_argument("--fds", type=int, default=1_000_000)
    options = parser.parse_args(argv)
    result = soak(options.backend, options.fds)
    print(
        f"{options.backend}: sent {result.sent} fds, received {result.received}, "
        f"wrong {result.wrong}, lost {result.sent - result.received}; "
        f"receiver fds {result.receiver_fds_before} -> {result.receiver_fds_after}; "
        f"RSS {result.rss_early_kib} -> {result.rss_end_kib} KiB; "
        f"{result.seconds:.2f} s, {result.fds_per_second:,.0f} fds/s"
    )
    clean = (
        result.received == result.sent
        and result.wrong == 0
        and result.receiver_fds_after == result.receiver_fds_before
    )
    return 0 if clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
