"""Act on a call once it sleeps in the kernel: signal it, wake it, or see it.

Built on :mod:`fdsend_conformance.harness.proc_syscalls`: a watcher reads a
thread's /proc entry until it is asleep in the transfer (recvmsg/sendmsg on
the test's socket) or in an event loop's wait, then acts. The EINTR tests
(FAULT-1/2) signal a call that is really blocked, instead of guessing with a
timer; the tests of calls that must fail fast (ERR-5, FAULT-3, FAULT-6,
FAULT-7) wake a call that should never have slept, and fail, so a backend
that sleeps until the suite's kernel timeout and then raises the right
exception cannot pass; FAULT-4 waits until another process is blocked in a
send. Where /proc cannot tell, the test is skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from fdsend_conformance.harness import proc_syscalls
from fdsend_conformance.harness.fds import identity
from fdsend_conformance.harness.timeouts import IO_TIMEOUT

__all__ = [
    "SIGNAL",
    "CallThread",
    "Interruption",
    "Sighting",
    "Wakeup",
    "child_blocked",
    "must_not_block",
    "signal_when_blocked",
    "wake_when_blocked",
]


#: Where a call runs when not in the calling thread: the (pid, tid) of a
#: driver's main thread (:meth:`~fdsend_conformance.backend.Backend.call_thread`).
CallThread = tuple[int, int]

#: The signal the EINTR tests send. Not SIGALRM: that one is pytest-timeout's,
#: whose alarm stays armed (and its handler in place) through these tests.
SIGNAL = signal.SIGUSR1


@dataclass
class Sighting:
    """What a watcher saw of a call: how it slept, if it did, before acting."""

    expected: frozenset[int] = frozenset()  # the system calls the call may sleep in
    seen: proc_syscalls.Reading | None = None  # the watcher's look before it acted
    on_the_socket: bool | None = None  # the blocked transfer was on the test's socket

    def where(self) -> str:
        """Where the call slept, in words: the system call and the fd."""
        assert self.seen is not None
        name = proc_syscalls.syscall_name(self.seen.syscall)
        return {
            None: f"{name}, an event loop's wait",
            True: f"{name} on the test's socket",
            False: f"{name} on another fd",
        }[self.on_the_socket]

    def check_blocked(self) -> None:
        """Assert the call was seen asleep in the transfer on the test's socket (or a wait)."""
        assert self.seen is not None, "the call never blocked in the kernel"
        assert self.seen.blocked_in(self.expected)
        assert self.on_the_socket is not False, f"the call blocked in {self.where()}"


@dataclass
class Interruption(Sighting):
    """What happened to a call that :func:`signal_when_blocked` watched."""

    handled: list[proc_syscalls.Reading | None] = field(default_factory=list)

    def check(self) -> None:
        """Assert the handler ran once, sent while the call slept in the kernel."""
        self.check_blocked()
        assert self.handled == [self.seen], "the handler did not run exactly once"


@dataclass
class Wakeup(Sighting):
    """What :func:`wake_when_blocked` saw of a call that must not block."""

    errors: list[BaseException] = field(default_factory=list)  # raised while waking it

    def check(self) -> None:
        """Assert the call never slept (so nothing had to wake it)."""
        assert self.errors == [], f"waking the blocked call failed: {self.errors!r}"
        if self.seen is not None:
            pytest.fail(f"the call slept in the kernel ({self.where()}) instead of failing fast")


def _same_socket(fd: int, sock: socket.socket, pid: int | None) -> bool:
    """Whether fd ``fd`` of process ``pid`` (None: this one) is the socket ``sock``."""
    try:
        st = os.stat(f"/proc/{'self' if pid is None else pid}/fd/{fd}")
        return (st.st_dev, st.st_ino) == identity(sock.fileno())
    except OSError:
        return False


def _expect(
    syscall: str, sighting: Sighting, tid: int, pid: int | None, loop_waits: bool = True
) -> frozenset[int]:
    """Fill in what ``sighting`` may see; return the transfer's numbers.

    With ``loop_waits`` an event loop's wait counts as blocking too. Skips
    the test where /proc cannot tell which call thread ``tid`` sleeps in.
    """
    try:
        transfer = proc_syscalls.syscall_numbers(syscall)
        waits = (
            proc_syscalls.syscall_numbers(*proc_syscalls.EVENT_LOOP_WAITS)
            if loop_waits
            else frozenset()
        )
        proc_syscalls.read(tid, pid)
    except proc_syscalls.Unavailable as exc:
        pytest.skip(f"cannot tell when the call blocks in the kernel: {exc}")
    sighting.expected = transfer | waits
    return transfer


def _record(
    sighting: Sighting,
    reading: proc_syscalls.Reading,
    transfer: frozenset[int],
    sock: socket.socket,
    pid: int | None,
) -> None:
    if reading.syscall in transfer:
        sighting.on_the_socket = _same_socket(reading.args[0], sock, pid)
    sighting.seen = reading


@contextmanager
def _watching(
    syscall: str,
    sock: socket.socket,
    sighting: Sighting,
    act: Callable[[], None],
    *,
    loop_waits: bool = True,
    tid: int | None = None,
    where: CallThread | None = None,
) -> Iterator[None]:
    """While the block runs, a thread watches the calling thread and acts once it sleeps.

    It reads this thread's /proc entry (or thread ``tid``'s, or the thread
    ``where`` of another process: a driver's) until it is asleep in
    ``syscall`` (or, with ``loop_waits``, an event loop's wait), records that
    in ``sighting`` and calls ``act``; it stops when the block exits. Skips
    the test where /proc cannot tell.
    """
    pid, watched = where if where is not None else (None, tid or threading.get_native_id())
    transfer = _expect(syscall, sighting, watched, pid, loop_waits)
    stop = threading.Event()

    def watch() -> None:
        reading = proc_syscalls.wait_until_blocked(
            watched, sighting.expected, IO_TIMEOUT, pid=pid, stop=stop
        )
        if reading is None:
            return
        _record(sighting, reading, transfer, sock, pid)
        act()

    watcher = threading.Thread(target=watch, name=f"watch-{syscall}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(IO_TIMEOUT)
    assert not watcher.is_alive(), "the watcher thread did not stop"


def child_blocked(pid: int, syscall: str, sock: socket.socket) -> Sighting:
    """Wait until child ``pid``'s main thread sleeps in ``syscall`` (or an event loop's wait).

    ``sock`` is the child's copy of a socket this process holds too.
    Returns what was seen; :meth:`Sighting.check_blocked` says whether the
    child blocked in time, on ``sock``. Skips where /proc cannot tell.
    """
    sighting = Sighting()
    transfer = _expect(syscall, sighting, pid, pid)
    reading = proc_syscalls.wait_until_blocked(pid, sighting.expected, IO_TIMEOUT, pid=pid)
    if reading is not None:
        _record(sighting, reading, transfer, sock, pid)
    return sighting


@contextmanager
def signal_when_blocked(
    syscall: str, sock: socket.socket, handler: Callable[[], None]
) -> Iterator[Interruption]:
    """Run ``handler`` from a signal sent once this thread sleeps in ``syscall``.

    A watcher thread waits until this thread is asleep in ``syscall`` on
    ``sock`` (or in an event loop's wait, for a backend that waits for its
    non-blocking socket there), then sends :data:`SIGNAL` to this thread
    only. Nothing else wakes the call (no data comes until the handler
    runs), so the signal finds it blocked. If the call never blocks the
    watcher gives up without a signal; :meth:`Interruption.check` says so.
    """
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers run in the main thread only")
    ident = threading.get_ident()
    interruption = Interruption()

    def on_signal(signum: int, frame: object) -> None:
        interruption.handled.append(interruption.seen)
        handler()

    previous = signal.signal(SIGNAL, on_signal)
    try:
        with _watching(syscall, sock, interruption, lambda: signal.pthread_kill(ident, SIGNAL)):
            yield interruption
    finally:
        signal.signal(SIGNAL, previous)


@contextmanager
def wake_when_blocked(
    syscall: str,
    sock: socket.socket,
    wake: Callable[[], object],
    *,
    loop_waits: bool = True,
    tid: int | None = None,
    where: CallThread | None = None,
) -> Iterator[Wakeup]:
    """Run ``wake`` from a watcher thread if this thread falls asleep in ``syscall``.

    For a call that must return at once: the watcher waits until this
    thread sleeps in ``syscall`` (or in an event loop's wait), records that,
    and calls ``wake`` to let the call finish. It stops as soon as the block
    exits, so a call that returns without sleeping is never woken;
    :meth:`Wakeup.check` fails if one was. For an event loop that must keep
    running while a call waits: ``loop_waits=False`` lets the loop sleep in
    its own wait, and ``tid`` names the loop's thread if it is not this one.
    ``where`` names the thread of another process the call runs on (a driver's).
    """
    wakeup = Wakeup()

    def wake_and_record() -> None:
        try:
            wake()
        except BaseException as exc:  # reported by check(), in the test's thread
            wakeup.errors.append(exc)

    with _watching(
        syscall, sock, wakeup, wake_and_record, loop_waits=loop_waits, tid=tid, where=where
    ):
        yield wakeup


def must_not_block(
    syscall: str,
    sock: socket.socket,
    call: Callable[[], object],
    wake: Callable[[], object],
    where: CallThread | None = None,
) -> object:
    """Run ``call``, which must fail fast; return its result or the exception it raised.

    Fails the test if the call slept in ``syscall`` (or an event loop's
    wait) on the way, even if it then answered as it should: a backend
    that waits until the suite's kernel timeout and raises BlockingIOError
    is not failing fast. ``wake`` ends such a sleep early (sends a message,
    makes room), so the failure costs no timeout. ``where`` is the thread
    the call runs on if not this one (a driver's: ``backend.call_thread()``).
    """
    with wake_when_blocked(syscall, sock, wake, where=where) as wakeup:
        try:
            outcome: object = call()
        except Exception as exc:
            outcome = exc
    wakeup.check()
    return outcome
