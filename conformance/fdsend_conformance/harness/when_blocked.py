"""Act on this thread once it sleeps in a system call: signal it, or wake it.

Built on :mod:`fdsend_conformance.harness.blocked`: a watcher thread reads this
thread's /proc entry until it is asleep in the transfer (recvmsg/sendmsg on
the test's socket) or in an event loop's wait, then acts. The EINTR tests
(FAULT-1/2) signal a call that is really blocked, instead of guessing with a
timer; the MSG_DONTWAIT tests (FAULT-7) wake a call that should never have
blocked, and fail. Where /proc cannot tell, the test is skipped.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

from fdsend_conformance.harness import blocked
from fdsend_conformance.harness.sockets import IO_TIMEOUT, identity

__all__ = [
    "SIGNAL",
    "Interruption",
    "Sighting",
    "Wakeup",
    "signal_when_blocked",
    "wake_when_blocked",
]


#: The signal the EINTR tests send. Not SIGALRM: that one is pytest-timeout's,
#: whose alarm stays armed (and its handler in place) through these tests.
SIGNAL = signal.SIGUSR1


@dataclass
class Sighting:
    """What a watcher saw of a call: how it slept, if it did, before acting."""

    expected: frozenset[int] = frozenset()  # the system calls the call may sleep in
    seen: blocked.Reading | None = None  # the watcher's look before it acted
    on_the_socket: bool | None = None  # the blocked transfer was on the test's socket


@dataclass
class Interruption(Sighting):
    """What happened to a call that :func:`signal_when_blocked` watched."""

    handled: list[blocked.Reading | None] = field(default_factory=list)

    def check(self) -> None:
        """Assert the handler ran once, sent while the call slept in the kernel."""
        assert self.seen is not None, "the call never blocked in the kernel"
        assert self.handled == [self.seen], "the handler did not run exactly once"
        assert self.seen.blocked_in(self.expected)
        assert self.on_the_socket is not False, "the call blocked on some other fd"


@dataclass
class Wakeup(Sighting):
    """What :func:`wake_when_blocked` saw of a call that must not block."""

    errors: list[BaseException] = field(default_factory=list)  # raised while waking it

    def check(self) -> None:
        """Assert the call never slept (so nothing had to wake it)."""
        assert self.errors == [], f"waking the blocked call failed: {self.errors!r}"
        if self.seen is not None:
            where = {
                None: "in an event loop's wait",
                True: "on the test's socket",
                False: "on another fd",
            }[self.on_the_socket]
            pytest.fail(
                f"MSG_DONTWAIT ignored: the call blocked (system call {self.seen.syscall}, {where})"
            )


def _same_socket(fd: int, sock: socket.socket) -> bool:
    """Whether fd ``fd`` of this process is the socket ``sock``."""
    try:
        return identity(fd) == identity(sock.fileno())
    except OSError:
        return False


@contextmanager
def _watching(
    syscall: str,
    sock: socket.socket,
    sighting: Sighting,
    act: Callable[[], None],
    *,
    loop_waits: bool = True,
    tid: int | None = None,
) -> Iterator[None]:
    """While the block runs, a thread watches this one and acts once it sleeps.

    It reads this thread's /proc entry (or thread ``tid``'s) until it is
    asleep in ``syscall`` (or, with ``loop_waits``, an event loop's wait),
    records that in ``sighting`` and calls ``act``; it stops when the block
    exits. Skips the test where /proc cannot tell.
    """
    if tid is None:
        tid = threading.get_native_id()
    try:
        transfer = blocked.syscall_numbers(syscall)
        waits = blocked.syscall_numbers(*blocked.EVENT_LOOP_WAITS) if loop_waits else frozenset()
        sighting.expected = transfer | waits
        blocked.read(tid)
    except blocked.Unavailable as exc:
        pytest.skip(f"cannot tell when the call blocks in the kernel: {exc}")
    stop = threading.Event()

    def watch() -> None:
        reading = blocked.wait_until_blocked(tid, sighting.expected, IO_TIMEOUT, stop=stop)
        if reading is None:
            return
        if reading.syscall in transfer:
            sighting.on_the_socket = _same_socket(reading.args[0], sock)
        sighting.seen = reading
        act()

    watcher = threading.Thread(target=watch, name=f"watch-{syscall}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join(IO_TIMEOUT)
    assert not watcher.is_alive(), "the watcher thread did not stop"


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
    wake: Callable[[], None],
    *,
    loop_waits: bool = True,
    tid: int | None = None,
) -> Iterator[Wakeup]:
    """Run ``wake`` from a watcher thread if this thread falls asleep in ``syscall``.

    For a call that must return at once: the watcher waits until this
    thread sleeps in ``syscall`` (or in an event loop's wait), records that,
    and calls ``wake`` to let the call finish. It stops as soon as the block
    exits, so a call that returns without sleeping is never woken;
    :meth:`Wakeup.check` fails if one was. For an event loop that must keep
    running while a call waits: ``loop_waits=False`` lets the loop sleep in
    its own wait, and ``tid`` names the loop's thread if it is not this one.
    """
    wakeup = Wakeup()

    def wake_and_record() -> None:
        try:
            wake()
        except BaseException as exc:  # reported by check(), in the test's thread
            wakeup.errors.append(exc)

    with _watching(syscall, sock, wakeup, wake_and_record, loop_waits=loop_waits, tid=tid):
        yield wakeup
