"""Event loops for async backends: one loop per test, never one per call.

A :class:`Runner` runs coroutine functions to completion on one event loop
kept for the whole test:

- ``asyncio`` and ``uvloop``: a loop made when the test starts, run with
  ``run_until_complete`` in the test's own thread, so the /proc watchers
  see the loop's waits and a signal reaches the thread that waits. A thread
  or a forked child of the test gets a loop of its own (a loop belongs to
  one thread), and so does a call re-entered from a signal handler while
  the loop runs (a loop does not nest): it runs in a helper thread. The
  fork hook that gives a child its loop is registered with the first runner.
- ``trio``, for backends built on anyio: Trio cannot be entered and left
  again, so its loop runs in a thread of its own for the whole test (an
  anyio blocking portal), which runs each coroutine in turn. The test's
  thread waits for the portal (in a futex), so the /proc watchers of the
  FAULT tests, which look at the calling thread, never see the call wait;
  they cannot look at the loop's thread instead, which sleeps in its wait
  between calls too. The ASYNC tests name the loop's thread
  (:meth:`Runner.loop_thread`) and look for recvmsg only. A forked child of
  the test starts a portal of its own.

How a backend's call reaches a runner is :mod:`fdsend_conformance.plumbing.callers`.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from fdsend_conformance.backend import EVENT_LOOPS, Backend

if TYPE_CHECKING:  # asyncio is imported only when an async backend runs
    import asyncio

__all__ = ["Runner", "event_loop_for", "open_runner"]

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
        _watch_forks(self)

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
_fork_hook: list[bool] = []  # registered: os.register_at_fork cannot be undone


def _watch_forks(runner: _LoopPerThread) -> None:
    """Give ``runner`` a loop in each forked child; the hook is registered on first use."""
    if not _fork_hook:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _fork_hook.append(True)
    _forking.add(runner)


def _after_fork_in_child() -> None:
    for runner in list(_forking):
        with contextlib.suppress(Exception):  # the call will say it, if it needs the loop
            runner.after_fork()


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
