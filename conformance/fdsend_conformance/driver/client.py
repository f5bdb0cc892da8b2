"""The driver process: start it, send one request, read its reply, stop it.

Every wait is bounded (:data:`~fdsend_conformance.harness.timeouts.DRIVER_REPLY_TIMEOUT`
and friends), and every way a driver can let the suite down ends in a
:class:`DriverFailure` whose ``kind`` says which (see :data:`KINDS`): a
failed test with that message, never a stalled or broken run. The caller
(:mod:`fdsend_conformance.driver.caller`) then starts a fresh driver for the
next call.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Any

from _pytest.outcomes import Failed

from fdsend_conformance.driver.pidfd import allow_ptracer, pidfd_open
from fdsend_conformance.harness.timeouts import (
    DRIVER_REPLY_TIMEOUT,
    DRIVER_START_TIMEOUT,
    DRIVER_STOP_TIMEOUT,
)

__all__ = ["KINDS", "PROTOCOL_VERSION", "Driver", "DriverFailure", "decode", "encode"]

#: The protocol version this suite speaks (docs/drivers.md).
PROTOCOL_VERSION = 1

#: How a driver can fail the suite, each with what it means.
KINDS = {
    "crashed": "the driver exited",
    "hung": "the driver did not reply in time and was killed",
    "garbage": "the driver wrote a line that is not a valid reply",
    "version": "the driver does not speak the suite's protocol version",
    "bad-fd": "the driver named an fd it does not hold",
    "driver-error": "the driver's own part of the protocol (take, close) failed",
    "start": "the driver could not be started",
}

#: The longest reply line read (a 64 KiB payload in base64 is far shorter).
_MAX_LINE = 1 << 26
#: How much of the driver's standard error a failure shows.
_STDERR_TAIL = 2000
_PR_SET_PDEATHSIG = 1


class DriverFailure(Failed):
    """The driver, not the implementation, let the test down; ``kind`` says how.

    A pytest failure outcome (not an Exception): a test's own ``except
    OSError`` or ``except Exception`` cannot swallow it.
    """

    # Shown as pytest's own "Failed: ..." in summaries, not a dotted path.
    __module__ = "builtins"
    __qualname__ = "Failed"

    def __init__(self, kind: str, message: str) -> None:
        assert kind in KINDS, kind
        self.kind = kind
        super().__init__(f"driver {kind}: {message}", pytrace=False)


def encode(data: bytes) -> str:
    """Bytes as the protocol carries them (base64)."""
    return base64.b64encode(data).decode("ascii")


def decode(text: str) -> bytes:
    """Bytes from the protocol's base64; ValueError if ``text`` is not base64."""
    return base64.b64decode(text.encode("ascii"), validate=True)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    """In the driver, before exec: be killed when the process that started it ends.

    So a driver never outlives its test's process (a killed sender, a test
    child killed as hung) holding copies of the test's sockets.
    """
    libc = ctypes.CDLL(None)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Driver:
    """One running driver process, started by :meth:`start` in this process."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        reply_timeout: float = DRIVER_REPLY_TIMEOUT,
        start_timeout: float = DRIVER_START_TIMEOUT,
    ) -> None:
        self.argv = list(argv)
        self.reply_timeout = reply_timeout
        self.start_timeout = start_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.pidfd = -1
        self.hello: dict[str, Any] = {}
        self._stderr = -1  # a memfd the driver's standard error goes to
        self._buffer = b""
        self._owner = os.getpid()

    @property
    def pid(self) -> int:
        """The driver's pid (its main thread's id too)."""
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        """Started in this process and not stopped since."""
        return self.process is not None and self._owner == os.getpid()

    def held_fds(self) -> frozenset[int]:
        """The fds this process holds for the driver (its pipes, its pidfd, its stderr)."""
        if not self.running:
            return frozenset()
        assert self.process is not None
        pipes = (self.process.stdin, self.process.stdout)
        return frozenset(
            [*(pipe.fileno() for pipe in pipes if pipe is not None), self.pidfd, self._stderr]
        )

    def start(self) -> dict[str, Any]:
        """Start the driver and shake hands; return its ``start`` reply."""
        self._stderr = os.memfd_create("fdsend-driver-stderr", os.MFD_CLOEXEC)
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:
            self._forget()
            raise DriverFailure("start", f"cannot run {self.argv!r}: {exc}") from None
        assert self.process.stdin is not None
        os.set_blocking(self.process.stdin.fileno(), False)
        self.pidfd = pidfd_open(self.pid)
        allow_ptracer(self.pid)
        message = {"cmd": "start", "version": PROTOCOL_VERSION, "suite_pid": os.getpid()}
        reply = self._exchange(message, self.start_timeout)
        if not reply["ok"]:
            self.kill()
            raise DriverFailure(
                "version",
                f"refused protocol version {PROTOCOL_VERSION}: {reply.get('error')!r}",
            )
        if reply.get("version") != PROTOCOL_VERSION:
            self.kill()
            raise DriverFailure(
                "version",
                f"speaks protocol version {reply.get('version')!r}; "
                f"the suite speaks {PROTOCOL_VERSION}",
            )
        self.hello = dict(reply)
        return self.hello

    def request(self, message: dict[str, Any], timeout: float | None = None) -> Any:
        """Send ``message``; return its reply (a dict with ``ok``), bounded by ``timeout``.

        The default bound is the driver's ``reply_timeout``.
        """
        return self._exchange(message, self.reply_timeout if timeout is None else timeout)

    def _pipe(self, name: str) -> int:
        """The fd of the driver's ``stdin`` or ``stdout`` pipe."""
        pipe = getattr(self.process, name, None)
        assert pipe is not None, f"no driver {name}: not started"
        return int(pipe.fileno())

    def _exchange(self, message: dict[str, Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        cmd = message["cmd"]
        line = (json.dumps(message) + "\n").encode()
        try:
            self._write(line, deadline, cmd, timeout)
            raw = self._read_line(deadline, cmd, timeout)
        except BrokenPipeError:
            self._fail_exited(cmd)
        try:
            reply = json.loads(raw)
        except ValueError:
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            self.kill()
            raise DriverFailure(
                "garbage",
                f"replied to {cmd!r} with {_shorten(raw)!r}, not a JSON object with "
                f"'ok'{self._stderr_tail()}",
            )
        return reply

    def _write(self, data: bytes, deadline: float, cmd: str, bound: float) -> None:
        fd = self._pipe("stdin")
        view = memoryview(data)
        while view:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([], [fd], [], remaining)[1]:
                self._fail_hung(cmd, "read", bound)
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue

    def _read_line(self, deadline: float, cmd: str, bound: float) -> bytes:
        fd = self._pipe("stdout")
        while b"\n" not in self._buffer:
            if len(self._buffer) > _MAX_LINE:
                self.kill()
                raise DriverFailure(
                    "garbage", f"wrote more than {_MAX_LINE} bytes without a newline"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                self._fail_hung(cmd, "reply", bound)
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._fail_exited(cmd)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _fail_hung(self, cmd: str, what: str, bound: float) -> None:
        tail = self._stderr_tail()
        self.kill()
        raise DriverFailure("hung", f"did not {what} to {cmd!r} within {bound:g} s; killed{tail}")

    def _fail_exited(self, cmd: str) -> Any:
        assert self.process is not None
        try:
            status = self.process.wait(DRIVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise DriverFailure(
                "crashed", f"closed its standard output during {cmd!r}{self._stderr_tail()}"
            ) from None
        tail = self._stderr_tail()
        self.kill()
        raise DriverFailure("crashed", f"exited with {_status(status)} during {cmd!r}{tail}")

    def _stderr_tail(self) -> str:
        if self._stderr < 0:
            return ""
        size = os.fstat(self._stderr).st_size
        data = os.pread(self._stderr, _STDERR_TAIL, max(0, size - _STDERR_TAIL))
        if not data.strip():
            return "; its stderr is empty"
        return "; the tail of its stderr:\n" + data.decode(errors="replace").rstrip()

    def stop(self) -> None:
        """Ask the driver to stop (``stop``, then end of file); kill it if it lingers."""
        if not self.running:
            self.kill()
            return
        assert self.process is not None
        with contextlib.suppress(DriverFailure, OSError):
            self._exchange({"cmd": "stop"}, DRIVER_STOP_TIMEOUT)
        self.kill()

    def kill(self) -> None:
        """End the driver now (if this process started it) and close what is held for it.

        In a forked child, whose copy of a parent's driver this is, only the
        child's copies of the pipes and fds are closed: the driver is the parent's.
        """
        process = self.process
        if process is not None and self._owner == os.getpid():
            if process.poll() is None:
                process.kill()
            process.wait()
        self._forget()

    def _forget(self) -> None:
        """Close this process's pipes and fds for the driver, and drop it."""
        process = self.process
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
            if process.returncode is None:  # a parent's driver: never reaped here, never waited on
                process.returncode = -1
        for fd in (self.pidfd, self._stderr):
            if fd >= 0:
                os.close(fd)
        self.process = None
        self.pidfd = -1
        self._stderr = -1
        self._buffer = b""
        self._owner = os.getpid()


def _status(code: int) -> str:
    if code < 0:
        return f"signal {-code} ({signal.Signals(-code).name})"
    return f"exit status {code}"


def _shorten(raw: bytes, limit: int = 200) -> str:
    text = raw.decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + "..."
