"""A driver as a backend: each call becomes requests, and the driver's fd table is mirrored.

:class:`DriverBackend` has ``sendfds``/``recvfds`` in fdsend's shape, so the
suite calls it as it calls an in-process backend. Around every call it looks
at the driver's fd table (/proc/PID/fd) and makes the suite's table show
what an in-process call would have left there:

- the fds the implementation received are copied into the suite
  (``pidfd_getfd``), with the close-on-exec flag the driver's fdinfo shows
  for them, and closed in the driver;
- an fd the call left open in the driver that its reply does not account
  for is the implementation's leak: it is copied into the suite too, where
  the suite's leak checks see it, and closed in the driver;
- a copy of the caller's fd that the call closed or replaced in the driver
  fails the test (OWN-1): the suite's own fd is never closed for it.

A fresh driver is started in each process that calls (a forked sender
starts its own), and after any failure of the driver (see
:class:`~fdsend_conformance.driver.client.DriverFailure`).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import resource
import shlex
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pytest

from fdsend_conformance.backend import TRUNCATION_STYLES, Feature, Kind
from fdsend_conformance.driver.client import Driver, DriverFailure, decode, encode
from fdsend_conformance.driver.pidfd import pidfd_getfd
from fdsend_conformance.harness import fdtable

__all__ = ["DRIVER_PREFIX", "PROTOCOL_UNSUPPORTED", "DriverBackend", "DriverResult"]

#: How a backend name asks for a driver: ``driver:COMMAND``.
DRIVER_PREFIX = "driver:"

#: A bench request: the driver times its rounds and answers (the bench's own
#: bound on one blocking call of a round).
BENCH_REQUEST_TIMEOUT = 30.0

#: What no driver offers, whatever it declares: calls with Python objects.
PROTOCOL_UNSUPPORTED = frozenset({Feature.PYTHON_API})


class DriverResult(tuple):  # type: ignore[type-arg]
    """A driver's receive as the suite sees it: ``(msg, fds)`` and what the driver reported.

    ``truncated``/``msg_truncated`` are None where the implementation does
    not report them; ``pidfd`` and ``credentials`` None where it does not
    hand them over.
    """

    truncated: bool | None
    msg_truncated: bool | None
    pidfd: int | None
    credentials: tuple[int, int, int] | None

    def __new__(
        cls,
        msg: bytes,
        fds: Sequence[int],
        *,
        truncated: bool | None = None,
        msg_truncated: bool | None = None,
        pidfd: int | None = None,
        credentials: tuple[int, int, int] | None = None,
    ) -> DriverResult:
        self = super().__new__(cls, (msg, list(fds)))
        self.truncated = truncated
        self.msg_truncated = msg_truncated
        self.pidfd = pidfd
        self.credentials = credentials
        return self


def _number(fdlike: Any) -> int:
    """The fd number the caller means (an int, or what ``fileno()`` gives)."""
    return fdlike if isinstance(fdlike, int) else int(fdlike.fileno())


def _free_numbers(pid: int, count: int) -> list[int]:
    """``count`` fd numbers not open in ``pid``, from the top of its RLIMIT_NOFILE.

    For an fd the caller gives closed: the driver hands the library a number
    closed in its own table, so the library's EBADF shows. The top numbers
    are the last the kernel hands out.
    """
    soft = 1024
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                soft = int(line.split()[3])
    taken = fdtable.open_fds(pid)
    free = (fd for fd in range(soft - 1, -1, -1) if fd not in taken)
    return [next(free) for _ in range(count)]


def _mirror_fd_limit(pid: int, theirs: frozenset[int]) -> None:
    """Give process ``pid`` (holding ``theirs``) as many free fd numbers as this one has.

    A receive in the driver then meets the limit the caller's would
    (FAULT-5), and the received fds fit into the caller's table.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    free = soft - sum(1 for fd in fdtable.open_fds() if fd < soft)
    limit = free
    while limit - sum(1 for fd in theirs if fd < limit) < free:
        limit = free + sum(1 for fd in theirs if fd < limit)
    current, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    if current != limit:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (min(limit, hard), hard))


class DriverBackend:
    """The backend ``driver:COMMAND`` (or a named driver): calls served by a driver process.

    Its declarations (``name``, ``version``, ``truncation``, ``unsupported``)
    are read from a driver's ``start`` reply when it is made.
    """

    def __init__(
        self, command: str, name: str | None = None, expected_file: Path | None = None
    ) -> None:
        self.command = command
        #: The driver's expected-failure file, when it comes with one (a driver's folder).
        self.expected_file = expected_file
        self.argv = shlex.split(command)
        if not self.argv:
            raise ValueError("driver: needs a command to run")
        self._drivers: dict[int, Driver] = {}  # by calling thread
        self._lock = threading.Lock()
        self._pid = os.getpid()
        hello = self._fresh().hello
        self.stop()
        implementation = hello.get("implementation") or {}
        self.implementation: dict[str, Any] = dict(implementation)
        self.name = name or f"{DRIVER_PREFIX}{command}"
        # "golang.org/x/sys/unix 0.3.0 (Go 1.19)": the library's version and the language's
        library = (implementation.get("library"), implementation.get("version"))
        self.version = " ".join(str(part) for part in library if part)
        if implementation.get("language"):
            self.version += f" ({implementation['language']})"
        self.truncation = hello.get("truncation", "none")
        if self.truncation not in TRUNCATION_STYLES:
            raise ValueError(f"driver {command!r} declares truncation {self.truncation!r}")
        declared = frozenset(hello.get("unsupported", ()))
        unknown = declared - Feature.ALL
        if unknown:
            raise ValueError(f"driver {command!r} declares unknown features {sorted(unknown)}")
        self.unsupported = declared | PROTOCOL_UNSUPPORTED
        self.truncation_error = OSError
        self.kind = Kind.DRIVER

    # The driver processes: one per calling thread of this process.

    def _fresh(self) -> Driver:
        driver = Driver(self.argv)
        with self._lock:
            self._drivers[threading.get_ident()] = driver
        driver.start()
        return driver

    def _live(self) -> Driver:
        self._forget_inherited()
        driver = self._drivers.get(threading.get_ident())
        if driver is None or not driver.running:
            if driver is not None:
                driver.kill()  # failed earlier: nothing runs, its fds are closed again safely
            return self._fresh()
        return driver

    def _forget_inherited(self) -> None:
        """In a forked child: let go of the parent's drivers, closing only the child's copies."""
        if self._pid == os.getpid():
            return
        with self._lock:
            for driver in self._drivers.values():
                driver.kill()  # not this process's: closes the copies, touches nothing else
            self._drivers.clear()
            self._pid = os.getpid()

    def stop(self) -> None:
        """Stop every driver of this process."""
        self._forget_inherited()
        with self._lock:
            drivers = list(self._drivers.values())
            self._drivers.clear()
        for driver in drivers:
            driver.stop()

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """This thread's driver for one test: running from the start, kept for the next test.

        A driver is started only where none runs (the first test, or the one
        after a driver failed); the drivers of the test's other threads are
        stopped at the end.
        """
        self._live()
        try:
            yield
        finally:
            with self._lock:
                mine = threading.get_ident()
                others = [d for ident, d in self._drivers.items() if ident != mine]
                self._drivers = {i: d for i, d in self._drivers.items() if i == mine}
            for driver in others:
                driver.stop()

    def held_fds(self) -> frozenset[int]:
        """The fds this process holds for its drivers: the plumbing's, not a test's."""
        self._forget_inherited()
        with self._lock:
            return frozenset().union(*(d.held_fds() for d in self._drivers.values()))

    def call_thread(self) -> tuple[int, int]:
        """The (pid, tid) of the thread the implementation's calls run on: the driver's main."""
        pid = self._live().pid
        return pid, pid

    # The calls.

    def sendfds(self, sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
        """Send through the driver; return the byte count its implementation reports."""
        fields = {"msg": encode(bytes(msg)), "flags": flags}
        reply, _ = self._call("sendfds", sock, fields, fds=[_number(fd) for fd in (fds or ())])
        sent = reply.get("sent")
        if not isinstance(sent, int) or isinstance(sent, bool):
            self._garbage("sendfds", f"'sent' is {sent!r}, not an int")
        return int(sent)

    def recvfds(self, sock: Any, len: int, flags: int = 0, numfds: int = 64) -> DriverResult:
        """Receive through the driver; the fds it received are copied into this process."""
        fields = {"len": len, "flags": flags, "numfds": numfds}
        reply, copies = self._call("recvfds", sock, fields)
        try:
            msg = decode(reply["msg"])
        except (KeyError, TypeError, ValueError):
            self._close_all(copies)
            self._garbage("recvfds", f"'msg' is {reply.get('msg')!r}, not base64")
        count = builtins.len(reply["fds"])
        pidfd = copies[count] if reply.get("pidfd") is not None else None
        credentials = reply.get("credentials")
        return DriverResult(
            msg,
            copies[:count],
            truncated=_optional_bool(reply.get("truncated")),
            msg_truncated=_optional_bool(reply.get("msg_truncated")),
            pidfd=pidfd,
            credentials=None if credentials is None else (*credentials,),
        )

    def bench(self, send_sock: Any, recv_sock: Any, fd: int, payload: int, rounds: int) -> int:
        """Run ``rounds`` rounds inside the driver (its ``bench``); their nanoseconds.

        Raises NotImplementedError if the driver has no ``bench``.
        """
        driver = self._live()
        mapped, taken = self._take(driver, [_number(send_sock), _number(recv_sock), fd])
        request = {
            "cmd": "bench",
            "send_sock": mapped[0],
            "recv_sock": mapped[1],
            "fd": mapped[2],
            "payload": payload,
            "rounds": rounds,
        }
        try:
            reply = driver.request(request, BENCH_REQUEST_TIMEOUT)
        finally:
            if driver.running:
                self._close_in_driver(driver, list(taken))
        if not reply["ok"]:
            raise NotImplementedError(f"{self.name}: no bench in the driver: {reply.get('error')}")
        ns = reply.get("ns")
        if not _is_int(ns):
            self._garbage("bench", f"'ns' is {ns!r}, not an int")
        return int(ns)

    def _received_fds(self, reply: dict[str, Any]) -> list[int]:
        """The driver fds a recvfds reply hands over: its ``fds``, then its ``pidfd``."""
        fds = reply.get("fds")
        pidfd = reply.get("pidfd")
        if not isinstance(fds, list) or not all(_is_int(fd) for fd in fds):
            self._garbage("recvfds", f"'fds' is {fds!r}, not a list of ints")
        if pidfd is not None and not _is_int(pidfd):
            self._garbage("recvfds", f"'pidfd' is {pidfd!r}, not an int or null")
        return [*fds, *([pidfd] if pidfd is not None else [])]

    def _call(
        self, cmd: str, sock: Any, fields: dict[str, Any], fds: list[int] | None = None
    ) -> tuple[dict[str, Any], list[int]]:
        """One call: take the caller's fds, make the request, mirror the table, close.

        The request is ``cmd`` with the driver's numbers for ``sock`` and (if
        given) ``fds``, and ``fields`` as they are. Returns the (ok) reply and
        the copies of the fds it handed over (a ``recvfds``'s); raises the
        implementation's error for an error reply.
        """
        receiving = cmd == "recvfds"
        numbers = [_number(sock), *(fds or ())]
        driver = self._live()
        mapped, taken = self._take(driver, numbers)
        before = fdtable.open_fds(driver.pid)
        if receiving:
            _mirror_fd_limit(driver.pid, before)
        request = {"cmd": cmd, "sock": mapped[0], **fields}
        if fds is not None:
            request["fds"] = mapped[1:]
        reply = driver.request(request)
        after = fdtable.open_fds(driver.pid)
        handed = self._received_fds(reply) if receiving and reply["ok"] else []
        replaced = [
            fd for fd, ident in taken.items() if fdtable.identity_in(driver.pid, fd) != ident
        ]
        for fd in handed:
            if fd in before or fd not in after:
                held = "held before the call" if fd in before else "does not hold"
                self._fail("bad-fd", f"its reply names fd {fd}, which it {held}")
        copies = self._mirror(driver, handed)
        leaked = sorted(after - before - set(handed))
        self._mirror(driver, leaked)  # the suite's own leak checks see these
        self._close_in_driver(
            driver, [*handed, *leaked, *(fd for fd in taken if fd not in replaced)]
        )
        if replaced:
            self._close_all(copies)
            callers = sorted(n for n, fd in zip(numbers, mapped) if fd in replaced)
            pytest.fail(
                f"OWN-1: the implementation closed or replaced its copy of the caller's "
                f"fd(s) {callers} (the driver's {sorted(replaced)})",
                pytrace=False,
            )
        if not reply["ok"]:
            raise _error(reply)
        return reply, copies

    def _take(self, driver: Driver, numbers: list[int]) -> tuple[list[int], dict[int, Any]]:
        """The driver's numbers for the caller's ``numbers``, and the identity of each taken.

        Open fds are copied into the driver (``take``); a closed or negative
        number maps to a number closed in the driver too.
        """
        wanted = [fd for fd in numbers if fd >= 0 and fdtable.is_open(fd)]
        taken: list[int] = []
        if wanted:
            reply = driver.request({"cmd": "take", "fds": wanted})
            taken = reply.get("fds") if reply["ok"] else None  # type: ignore[assignment]
            if not isinstance(taken, list) or [_is_int(fd) for fd in taken] != [True] * len(wanted):
                self._fail("driver-error", f"'take' of {wanted} answered {reply!r}")
        identities = {}
        for mine, theirs in zip(wanted, taken):
            ident = fdtable.identity_in(driver.pid, theirs)
            if ident is None or ident != fdtable.identity_in(os.getpid(), mine):
                self._fail("driver-error", f"'take' gave fd {theirs} for {mine}: another file")
            identities[theirs] = ident
        closed = iter(_free_numbers(driver.pid, len(numbers) - len(wanted)))
        given = iter(taken)
        mapped = [
            next(given) if fd >= 0 and fdtable.is_open(fd) else (fd if fd < 0 else next(closed))
            for fd in numbers
        ]
        return mapped, identities

    def _mirror(self, driver: Driver, fds: list[int]) -> list[int]:
        """Copy the driver's ``fds`` into this process, each with the driver's close-on-exec."""
        copies: list[int] = []
        try:
            for fd in fds:
                cloexec = fdtable.close_on_exec(fd, driver.pid)
                copy = pidfd_getfd(driver.pidfd, fd)
                copies.append(copy)
                if not cloexec:
                    os.set_inheritable(copy, True)
        except FileNotFoundError:
            self._close_all(copies)
            self._fail("bad-fd", f"fd {fd} is not open in it")
        except OSError as exc:
            self._close_all(copies)
            kind = "bad-fd" if exc.errno == errno.EBADF else "driver-error"
            self._fail(kind, f"fd {fd} cannot be copied out of it ({exc})")
        return copies

    def _close_in_driver(self, driver: Driver, fds: list[int]) -> None:
        if not fds:
            return
        reply = driver.request({"cmd": "close", "fds": fds})
        if not reply["ok"]:
            self._fail("driver-error", f"'close' of {fds} failed: {reply.get('error')!r}")

    def _close_all(self, fds: list[int]) -> None:
        for fd in fds:
            os.close(fd)

    def _fail(self, kind: str, message: str) -> NoReturn:
        """End this thread's driver and fail the test with ``message``."""
        with self._lock:
            driver = self._drivers.pop(threading.get_ident(), None)
        if driver is not None:
            driver.kill()
        raise DriverFailure(kind, message)

    def _garbage(self, cmd: str, message: str) -> NoReturn:
        self._fail("garbage", f"its reply to {cmd!r} is malformed: {message}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _optional_bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


def _error(reply: dict[str, Any]) -> BaseException:
    """The exception an error reply stands for (docs/drivers.md, Errors)."""
    message = str(reply.get("error", ""))
    if reply.get("eof"):
        return EOFError(message)
    code = reply.get("errno")
    if _is_int(code):
        return OSError(code, message)  # the errno's subclass: BlockingIOError for EAGAIN, ...
    return ValueError(message)
