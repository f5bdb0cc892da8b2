"""Other processes: forked children, and senders started by multiprocessing.

A forked child runs a function and answers through a pipe, always reaped,
killed when it hangs; :func:`call_in_child` runs checks that change
process-wide state (resource limits, user ids, namespaces) there. A spawned
sender opens the backend with the opener it is given (the ``backend_opener``
fixture), so any backend that can be imported there works.
"""

from __future__ import annotations

import gc
import os
import pickle
import resource
import select
import signal
import socket
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar, cast

from fdsend_conformance.backend import Opener
from fdsend_conformance.harness.cmsg import send_fds
from fdsend_conformance.harness.sockets import set_io_timeout
from fdsend_conformance.harness.timeouts import CHILD_TIMEOUT, IO_TIMEOUT

__all__ = [
    "CHILD_TIMEOUT",
    "ChildAnswer",
    "ChildSkip",
    "KilledChild",
    "answer_from_child",
    "call_in_child",
    "fork_call",
    "fork_to_kill",
    "leave_free_fds",
    "pidfd_pid",
    "read_pipe",
    "reap",
    "send_file_from_child",
    "sent_by_a_child",
    "set_soft_nofile",
    "write_all",
]

T = TypeVar("T")


def fork_call(function: Callable[[], object]) -> int:
    """Fork; the child runs ``function`` and exits 0, or 1 if it raised.

    Returns the child's pid; reap it with :func:`reap`.
    """
    # The child's garbage collector leaves the objects it inherits alone:
    # a full collection would otherwise touch (and copy) every page of the
    # parent's heap, some 30 ms with pytest and hypothesis loaded.
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork in a process with threads; the child
        # here runs only our own code and exits with os._exit.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid:
        if freeze:
            gc.unfreeze()
        return pid
    status = 1
    try:
        function()
        status = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(status)


def reap(pid: int, seconds: float = IO_TIMEOUT) -> int:
    """Wait for child ``pid`` and return its exit code (negative: signal).

    A child still running after ``seconds`` is killed and reaped, and the
    wait fails with TimeoutError: a stuck child never hangs the test.
    """
    if not _exits_within(pid, seconds):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise TimeoutError(f"child {pid} was still running after {seconds:g} s; killed it")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _exits_within(pid: int, seconds: float) -> bool:
    """Whether child ``pid`` exits within ``seconds`` (waits on its pidfd).

    Without pidfds (Linux < 5.3) it cannot tell and says yes: the caller's
    waitpid then blocks, and pytest-timeout stays the backstop.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        return True
    try:
        return bool(select.select([pidfd], [], [], seconds)[0])
    finally:
        os.close(pidfd)


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def read_pipe(read_end: int, deadline: float) -> tuple[bytes, bool]:
    """Read the pipe ``read_end`` until EOF or the ``time.monotonic()`` deadline.

    Returns what was read and whether EOF was reached in time.
    """
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), False
        ready, _, _ = select.select([read_end], [], [], remaining)
        if ready:
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)


@dataclass(frozen=True)
class ChildAnswer:
    """What a forked child wrote before it ended, and how it ended."""

    data: bytes
    in_time: bool  # EOF came before the deadline (else the child was killed)
    exit_code: int  # negative: killed by that signal


def answer_from_child(answer: Callable[[int], object], seconds: float) -> ChildAnswer:
    """Fork; the child calls ``answer(fd)`` to write its answer to ``fd``.

    The parent reads the answer until EOF, kills a child that is still at it
    after ``seconds``, and always reaps it.
    """
    read_end, write_end = os.pipe()

    def child() -> None:
        os.close(read_end)
        answer(write_end)

    try:
        pid = fork_call(child)
    finally:
        os.close(write_end)
    try:
        data, in_time = read_pipe(read_end, time.monotonic() + seconds)
    finally:
        os.close(read_end)
    if not in_time:
        os.kill(pid, signal.SIGKILL)
    return ChildAnswer(data, in_time, reap(pid))


class ChildSkip(Exception):
    """Raised in a child of :func:`call_in_child` to skip the test in the parent."""


def call_in_child(function: Callable[[], T], seconds: float = CHILD_TIMEOUT) -> T:
    """Run ``function`` in a forked child and return its (picklable) result.

    For checks that change process-wide state (resource limits, user ids,
    namespaces), so the test process is never touched. An exception in the
    child is raised here as AssertionError carrying the child's traceback;
    :class:`ChildSkip` skips the test. A child that outlives ``seconds`` is
    killed. The child is always reaped.
    """

    def child(write_end: int) -> None:
        try:
            outcome: tuple[str, object] = ("ok", function())
        except ChildSkip as exc:
            outcome = ("skip", str(exc))
        except BaseException:
            outcome = ("error", traceback.format_exc())
        write_all(write_end, pickle.dumps(outcome))

    answer = answer_from_child(child, seconds)
    if not answer.in_time:
        raise AssertionError(f"child killed after {seconds:.0f} s: it hung")
    if not answer.data:
        raise AssertionError(f"child died without an answer (exit code {answer.exit_code})")
    kind, value = pickle.loads(answer.data)
    if kind == "skip":
        # Here, not at the top: a spawned sender and the tools import this
        # module without pytest.
        import pytest

        pytest.skip(str(value))
    if kind == "error":
        raise AssertionError(f"in the forked child:\n{value}")
    return cast(T, value)


#: A :func:`fork_to_kill` child's word on its ready pipe: ready, or raised (then its traceback).
_READY, _RAISED = b"!", b"E"


@dataclass
class KilledChild:
    """A child of :func:`fork_to_kill`: its pid, and how it ended once reaped."""

    pid: int
    ready_end: int  # reads a byte once the child called its ``ready``
    exit_code: int | None = None  # set at the block's exit: -SIGKILL if it was still alive

    def wait_ready(self, seconds: float = IO_TIMEOUT) -> bool:
        """Whether the child called ``ready`` within ``seconds``.

        A child that raised first fails the wait with AssertionError and the
        child's traceback (its error, such as an OWN-1 check's, is the test's).
        """
        if not select.select([self.ready_end], [], [], seconds)[0]:
            return False
        first = os.read(self.ready_end, 1)
        if first == _RAISED:
            error, _ = read_pipe(self.ready_end, time.monotonic() + IO_TIMEOUT)
            raise AssertionError(f"in the forked child:\n{error.decode(errors='replace')}")
        return first == _READY


@contextmanager
def fork_to_kill(function: Callable[[Callable[[], None]], object]) -> Iterator[KilledChild]:
    """Fork a child that runs ``function(ready)``, then stays alive until it is killed.

    ``ready()`` tells the parent (:meth:`KilledChild.wait_ready`) how far the
    child got. At the block's exit the child is SIGKILLed and reaped; its
    exit code is then -SIGKILL unless it had ended by itself (it raised:
    :meth:`KilledChild.wait_ready` raises its error if it came first). A
    child whose parent went away without killing it ends after
    :data:`CHILD_TIMEOUT`.
    """
    ready_read, ready_write = os.pipe()
    hold_read, hold_write = os.pipe()  # never written: EOF once the parent is gone

    def child() -> None:
        os.close(ready_read)
        os.close(hold_write)
        try:
            function(lambda: write_all(ready_write, _READY))
        except BaseException:
            write_all(ready_write, _RAISED + traceback.format_exc().encode())
            raise
        select.select([hold_read], [], [], CHILD_TIMEOUT)

    try:
        pid = fork_call(child)
    finally:
        os.close(ready_write)
        os.close(hold_read)
    killed = KilledChild(pid, ready_read)
    try:
        yield killed
    finally:
        os.kill(pid, signal.SIGKILL)
        killed.exit_code = reap(pid)
        os.close(ready_read)
        os.close(hold_write)


@contextmanager
def sent_by_a_child(
    sender: socket.socket, receiver: socket.socket, data: bytes, fds: list[int]
) -> Iterator[int]:
    """Fork a child that sends ``data`` with ``fds`` (SCM_RIGHTS) on ``sender``; yields its pid.

    The child stays alive until the block ends (so a pidfd or a pid the
    receiver got still names it), waiting for one byte that ``receiver``, the
    sender's peer, then sends; the kernel's SO_RCVTIMEO bounds that wait. The
    child is reaped, and must have exited 0.
    """

    def child() -> None:
        send_fds(sender, data, fds)
        sender.recv(1)

    pid = fork_call(child)
    try:
        yield pid
    finally:
        receiver.sendall(b"k")
        code = reap(pid)
    assert code == 0, f"the sending child failed (exit code {code})"


def pidfd_pid(pidfd: int) -> int | None:
    """The pid a pidfd refers to, from its /proc fdinfo (-1 once reaped), or None."""
    with open(f"/proc/self/fdinfo/{pidfd}", encoding="utf-8") as info:
        for line in info:
            if line.startswith("Pid:"):
                return int(line.split()[1])
    return None


def set_soft_nofile(limit: int) -> int:
    """Set the soft RLIMIT_NOFILE; returns the previous soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return soft


def leave_free_fds(free: int) -> int:
    """Lower this process's soft RLIMIT_NOFILE so that ``free`` more fds fit.

    Holes below the highest open fd are filled first (with /dev/null, never
    closed: meant for a child process about to exit), so the free numbers are
    exactly the top ones. Returns the new limit.
    """
    from fdsend_conformance.harness import fdtable

    while True:
        fd = os.open(os.devnull, os.O_RDONLY)
        if fd == max(fdtable.open_fds()):
            os.close(fd)
            break
    limit = max(fdtable.open_fds()) + 1 + free
    set_soft_nofile(limit)
    return limit


def send_file_from_child(address: str, opener: Opener, path: str, payload: bytes) -> None:
    """Target for a spawned child: open ``path`` and send it to ``address``.

    The file's offset is moved to 1 before sending, so the receiver can prove
    it shares the open file description.
    """
    with opener() as backend, socket.socket(socket.AF_UNIX) as sock:
        set_io_timeout(sock)
        sock.connect(address)
        with open(path, "rb") as file:
            file.seek(1)
            backend.sendfds(sock, payload, 0, [file.fileno()])
            # Wait for the receiver to finish before closing our copy. A
            # backend may have left the socket non-blocking (OWN-1 tests that);
            # this wait is the child's own, so make it blocking again. The
            # kernel's SO_RCVTIMEO still bounds it.
            sock.setblocking(True)
            sock.recv(1)
