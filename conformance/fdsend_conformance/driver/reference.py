"""The reference (fdsend) served through the driver protocol: ``reference-driver``.

Run as ``python -m fdsend_conformance.driver.reference``. A driver like any
other (docs/drivers.md), written in Python: the suite checks the protocol
itself with it, since its report must equal the in-process ``reference``'s
(except the clauses the protocol makes UNSUPPORTED). It imports nothing of
pytest and nothing of the suite but :mod:`fdsend_conformance.driver.pidfd`.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import sys
import time
from typing import Any, BinaryIO, TextIO

import fdsend
from fdsend_conformance.driver.pidfd import pidfd_getfd, pidfd_open

__all__ = ["main"]

PROTOCOL_VERSION = 1


class _Driver:
    """The state of one driver: the suite's pidfd, once started."""

    def __init__(self) -> None:
        self.suite: int | None = None  # a pidfd for the suite's process

    def start(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("version") != PROTOCOL_VERSION:
            return {"ok": False, "errno": None, "error": f"I speak version {PROTOCOL_VERSION}"}
        self.suite = pidfd_open(int(request["suite_pid"]))
        return {
            "ok": True,
            "version": PROTOCOL_VERSION,
            "implementation": {
                "name": "fdsend",
                "language": f"Python {platform.python_version()}",
                "library": "fdsend",
                "version": fdsend.__version__,
                "homepage": "https://pypi.org/project/fdsend/",
            },
            "truncation": "attribute",
            "unsupported": [],
        }

    def take(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.suite is not None, "take before start"
        taken: list[int] = []
        try:
            for fd in request["fds"]:
                taken.append(pidfd_getfd(self.suite, fd))
        except OSError:
            for fd in taken:
                os.close(fd)
            raise
        return {"ok": True, "fds": taken}

    def sendfds(self, request: dict[str, Any]) -> dict[str, Any]:
        msg = base64.b64decode(request["msg"])
        sent = fdsend.sendfds(request["sock"], msg, request["flags"], request["fds"])
        return {"ok": True, "sent": sent}

    def recvfds(self, request: dict[str, Any]) -> dict[str, Any]:
        result = fdsend.recvfds(
            request["sock"], request["len"], request["flags"], request["numfds"]
        )
        return {
            "ok": True,
            "msg": base64.b64encode(result.msg).decode("ascii"),
            "fds": list(result.fds),
            "truncated": result.truncated,
            "msg_truncated": result.msg_truncated,
            "pidfd": result.pidfd,
            "credentials": None if result.credentials is None else list(result.credentials),
        }

    def bench(self, request: dict[str, Any]) -> dict[str, Any]:
        """Rounds of send, receive and close inside the driver, timed as a whole."""
        send_sock, recv_sock, fd = request["send_sock"], request["recv_sock"], request["fd"]
        payload = b"\x5a" * request["payload"]
        size = len(payload)
        sendfds, recvfds, close = fdsend.sendfds, fdsend.recvfds, os.close
        started = time.monotonic_ns()
        for _ in range(request["rounds"]):
            sendfds(send_sock, payload, 0, [fd])
            for received in recvfds(recv_sock, size, 0, 1).fds:
                close(received)
        return {"ok": True, "ns": time.monotonic_ns() - started}

    def close(self, request: dict[str, Any]) -> dict[str, Any]:
        for fd in request["fds"]:
            os.close(fd)
        return {"ok": True}


def _failure(exc: Exception) -> dict[str, Any]:
    """An error reply: the errno of an OSError; none for a refusal without one."""
    reply: dict[str, Any] = {"ok": False, "errno": getattr(exc, "errno", None), "error": str(exc)}
    if isinstance(exc, EOFError):
        reply["eof"] = True
    return reply


def serve(requests: BinaryIO, replies: TextIO) -> None:
    """Answer each request line of ``requests`` with one line on ``replies``."""
    driver = _Driver()
    commands = {
        "start": driver.start,
        "take": driver.take,
        "sendfds": driver.sendfds,
        "recvfds": driver.recvfds,
        "close": driver.close,
        "bench": driver.bench,
    }
    for line in requests:
        request = json.loads(line)
        cmd = request.get("cmd")
        if cmd == "stop":
            replies.write('{"ok": true}\n')
            replies.flush()
            return
        handler = commands.get(cmd)
        if handler is None:
            reply: dict[str, Any] = {"ok": False, "errno": None, "error": f"unknown cmd {cmd}"}
        else:
            try:
                reply = handler(request)
            except (OSError, ValueError, TypeError, EOFError) as exc:
                reply = _failure(exc)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if cmd == "start" and not reply["ok"]:
            return


def main() -> None:
    """Serve on standard input and output."""
    serve(sys.stdin.buffer, sys.stdout)


if __name__ == "__main__":
    main()
