"""Event loops for async backends, and the synchronous face the suite calls.

An async backend (see :mod:`fdsend_conformance.backend`) has coroutine
functions ``sendfds``/``recvfds``. The suite's tests and helpers call a
backend synchronously; for an async one they get a :class:`BlockingCalls`,
whose calls run the coroutine to completion on one event loop kept for the
whole test (a :class:`Runner`), never one loop per call:

- ``asyncio`` and ``uvloop``: a loop made when the test starts, run with
  ``run_until_complete`` in the test's own thread, so the /proc watchers
  see the loop's waits and a signal reaches the thread that waits. A thread
  or a forked child of the test gets a loop of its own (a loop belongs to
  one thread), and so does a call re-entered from a signal handler while
  the loop runs (a loop does not nest): it runs in a helper thread.
- ``trio``, for backends built on anyio: Trio cannot be entered and left
  again, so its loop runs in a thread of its own for the whole test (an
  anyio blocking portal), which runs each coroutine in turn. The test's
  thread waits for the portal (in a futex), so the /proc watchers of the
  FAULT tests, which look at the calling thread, never see the call wait;
  they cannot look at the loop's thread instead, which sleeps in its wait
  between calls too. The ASYNC tests name the loop's thread
  (:meth:`Runner.loop_thread`) and look for recvmsg only. A forked child of
  the test starts a portal of its own.

If the backend declares ``needs_nonblocking``, :class:`BlockingCalls` makes
a blocking socket non-blocking for the call and puts the caller's mode back
after it, as a caller with a blocking socket would (calls in several
threads on one socket share that: the last one out restores it); otherwise
the socket goes to the backend as it is. Each call is bounded by the
harness's IO_TIMEOUT (:class:`HungCall`), as the kernel's timeouts on the
suite's sockets bound a synchronous backend's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fdsend_conformance.backend import EVENT_LOOPS, Backend
from fdsend_conformance.harness.sockets import IO_TIMEOUT

if TYPE_CHECKING:  # asyncio is imported only when an async backend runs
    import asyncio

__all__ = [
    "BlockingCalls",
    "HungCall",
    "Runner",
    "blocking_backend",
    "event_loop_for",
    "open_runner",
]

_T = TypeVar("_T")

#: Seconds a cancelled call on a portal may take to unwind.
_UNWIND_SECONDS = 5.0


class Runner(Protocol):
    """Runs coroutine functions on one event loop (per thread) until closed."""

    def run(self, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """``await function(*args)`` on the loop and return its result."""
        ...

    def close(self) -> None:
        """Close the loop(s); nothing may run after."""
        ...

    def loop_thread(self) -> int:
        """The native id of the thread this thread's calls run their loop in."""
        ...


class _LoopPerThread:
    """asyncio-style loops: one per (process, thread), run in that thread."""

    def __init__(self, new_loop: Callable[[], asyncio.AbstractEventLoop]) -> None:
        self._new_loop = new_loop
        self._loops: dict[tuple[int, int], asyncio.AbstractEventLoop] = {}
        self._loop()  # now: its fds are open before the test looks at its own
        _forking.add(self)

    def loop_thread(self) -> int:
        return threading.get_native_id()

    def after_fork(self) -> None:
        """In a forked child: its loop now, before the child's code runs (and limits fds)."""
        self._loop()

    def _loop(self) -> asyncio.AbstractEventLoop:
        key = (os.getpid(), threading.get_ident())
        loop = self._loops.get(key)
        if loop is None:
            loop = self._loops[key] = self._new_loop()
            # one empty run: a loop may open fds on its first (uvloop's signal socketpair)
            loop.run_until_complete(_nothing())
        return loop

    def run(self, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        loop = self._loop()
        if loop.is_running():  # re-entered from a signal handler during a call
            return self._in_a_thread(function, *args)
        task = loop.create_task(_awaited(function, *args))
        try:
            return loop.run_until_complete(task)
        except BaseException:
            # Something raised out of the loop (a signal handler's exception):
            # cancel the call as a caller's timeout would, so it does not go
            # on in the next call's run.
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(task)
            raise

    def _in_a_thread(self, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        outcome: list[Any] = []

        def target() -> None:  # on a loop of its own, closed at once: it leaves no fd open
            loop = self._new_loop()
            try:
                outcome.append((True, loop.run_until_complete(_awaited(function, *args))))
            except BaseException as exc:  # re-raised in the caller's thread
                outcome.append((False, exc))
            finally:
                loop.close()

        thread = threading.Thread(target=target, name="re-entered-call")
        thread.start()
        thread.join()
        ok, value = outcome[0]
        if not ok:
            raise value
        result: _T = value
        return result

    def close(self) -> None:
        pid = os.getpid()
        for (owner, _), loop in list(self._loops.items()):
            if owner == pid and not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # another thread's loop still runs
                    loop.close()
        self._loops.clear()
        _forking.discard(self)


#: Runners whose forked children get their own loop at once (see after_fork).
_forking: weakref.WeakSet[_LoopPerThread] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for runner in list(_forking):
        with contextlib.suppress(Exception):  # the call will say it, if it needs the loop
            runner.after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


async def _nothing() -> None:
    pass


async def _awaited(function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    return await function(*args)


class _Portal:
    """A Trio loop in a thread of its own (anyio's blocking portal), one per process."""

    def __init__(self, loop_backend: str) -> None:
        self._loop_backend = loop_backend
        self._portals: dict[int, tuple[contextlib.ExitStack, Any]] = {}
        self._portal()

    def _portal(self) -> Any:
        pid = os.getpid()
        entry = self._portals.get(pid)
        if entry is None:
            from anyio.from_thread import start_blocking_portal

            stack = contextlib.ExitStack()
            portal = stack.enter_context(start_blocking_portal(self._loop_backend))
            entry = self._portals[pid] = (stack, portal)
        return entry[1]

    def run(self, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        ended = threading.Event()

        async def call() -> _T:
            try:
                return await function(*args)
            finally:
                ended.set()

        future = self._portal().start_task_soon(call)
        try:
            result: _T = future.result()
        except BaseException:
            # Raised while waiting (a signal handler's exception): cancel the
            # call, as a caller's timeout would, and let it finish unwinding.
            if future.cancel():
                ended.wait(_UNWIND_SECONDS)
            raise
        return result

    def loop_thread(self) -> int:
        return int(self._portal().call(_native_id))

    def close(self) -> None:
        entry = self._portals.pop(os.getpid(), None)
        self._portals.clear()
        if entry is not None:
            entry[0].close()


async def _native_id() -> int:
    return threading.get_native_id()


def open_runner(event_loop: str) -> Runner:
    """A runner on a new loop of kind ``event_loop`` (one of :data:`EVENT_LOOPS`)."""
    if event_loop == "asyncio":
        import asyncio

        return _LoopPerThread(asyncio.new_event_loop)
    if event_loop == "uvloop":
        import uvloop  # type: ignore[import-not-found, unused-ignore]

        return _LoopPerThread(uvloop.new_event_loop)
    if event_loop == "trio":
        return _Portal("trio")
    raise ValueError(f"unknown event loop {event_loop!r}; choose from {EVENT_LOOPS}")


def event_loop_for(backend: Backend, choice: str | None) -> str:
    """The loop ``backend`` runs on: ``choice``, or the first it declares.

    Raises ValueError if the backend does not run on ``choice``.
    """
    if choice is None:
        return backend.event_loops[0]
    if choice not in backend.event_loops:
        raise ValueError(
            f"backend {backend.name!r} does not run on {choice} "
            f"(it runs on {', '.join(backend.event_loops)})"
        )
    return choice


class _NonBlocking:
    """Make sockets non-blocking while calls on them run, then restore their mode.

    Calls in several threads may share a socket: the first call in makes it
    non-blocking and the last one out restores it. What is not an open
    socket is passed on untouched, for the backend to refuse.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, tuple[int, Callable[[], None]]] = {}  # fd: (calls, restore)

    @contextlib.contextmanager
    def __call__(self, sock: Any) -> Iterator[None]:
        fd = self._enter(sock)
        try:
            yield
        finally:
            if fd is not None:
                self._leave(fd)

    def _enter(self, sock: Any) -> int | None:
        with self._lock:
            try:
                fd = sock.fileno() if hasattr(type(sock), "fileno") else int(sock)
            except Exception:
                return None
            if fd in self._active:
                calls, restore = self._active[fd]
                self._active[fd] = (calls + 1, restore)
                return fd
            made = _make_nonblocking(sock, fd)
            if made is None:
                return None
            self._active[fd] = (1, made)
            return fd

    def _leave(self, fd: int) -> None:
        with self._lock:
            calls, restore = self._active[fd]
            if calls > 1:
                self._active[fd] = (calls - 1, restore)
                return
            del self._active[fd]
            with contextlib.suppress(OSError):  # the call may have closed it
                restore()


def _make_nonblocking(sock: Any, fd: int) -> Callable[[], None] | None:
    """Make a blocking ``sock`` non-blocking; return what restores it (None: nothing to do)."""
    if isinstance(sock, socket.socket):
        timeout = sock.gettimeout()
        if timeout == 0.0 or fd == -1:
            return None
        sock.settimeout(0.0)
        return lambda: sock.settimeout(timeout)
    try:
        if fd < 0 or not os.get_blocking(fd):
            return None
    except OSError:
        return None
    os.set_blocking(fd, False)
    return lambda: os.set_blocking(fd, True)


class HungCall(Exception):
    """A backend call awaited on the test's loop did not return within IO_TIMEOUT.

    Not an OSError (TimeoutError is one): a test that expects an OSError
    must not take the suite's bound for the backend's error.
    """


async def _within(seconds: float, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
    """``await function(*args)``, cancelled after ``seconds``: :class:`HungCall`."""
    import anyio

    try:
        with anyio.fail_after(seconds):
            return await function(*args)
    except TimeoutError as exc:
        raise HungCall(f"the call did not return within {seconds:g} s") from exc


class BlockingCalls:
    """An async backend's calls as synchronous ones, each run on ``runner``.

    Each call is bounded by the harness's IO_TIMEOUT, as the kernel's
    timeouts on the suite's sockets bound a synchronous backend's (they do
    not apply to a non-blocking socket): a call still waiting then is
    cancelled and raises :class:`HungCall`.
    """

    def __init__(self, backend: Backend, runner: Runner) -> None:
        self.backend = backend
        self.runner = runner
        self._adjust: Callable[[Any], contextlib.AbstractContextManager[None]] = (
            _NonBlocking() if backend.needs_nonblocking else _as_given
        )

    def prepared(self, sock: Any) -> contextlib.AbstractContextManager[None]:
        """While in the block, ``sock`` is as the backend needs it (see the module docstring)."""
        return self._adjust(sock)

    def sendfds(self, sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
        """``await backend.sendfds(...)`` on the test's loop."""
        with self._adjust(sock):
            call = self.backend.impl.sendfds
            return int(self.runner.run(_within, IO_TIMEOUT, call, sock, msg, flags, fds))

    def recvfds(self, sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
        """``await backend.recvfds(...)`` on the test's loop."""
        with self._adjust(sock):
            call = self.backend.impl.recvfds
            return self.runner.run(_within, IO_TIMEOUT, call, sock, len, flags, numfds)


@contextlib.contextmanager
def _as_given(sock: Any) -> Iterator[None]:
    yield


@contextlib.contextmanager
def blocking_backend(backend: Backend, event_loop: str | None = None) -> Iterator[Backend]:
    """``backend`` as the suite calls it: itself if synchronous, else over a runner.

    The runner's loop lives as long as the block.
    """
    if not backend.asynchronous:
        yield backend
        return
    runner = open_runner(event_loop_for(backend, event_loop))
    try:
        yield dataclasses.replace(backend, blocking_calls=BlockingCalls(backend, runner))
    finally:
        runner.close()
