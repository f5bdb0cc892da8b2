"""How a test's ``backend.sendfds(...)``/``backend.recvfds(...)`` reaches the backend.

The ``backend`` fixture gives each test a caller (the
:class:`~fdsend_conformance.backend.Caller` protocol): the backend's
declarations, and two calls that are synchronous and bounded whatever the
backend is. :func:`open_caller` picks the caller by the backend's
:class:`~fdsend_conformance.backend.Kind`:

``in-process`` (:class:`InProcessCaller`)
    ``backend.impl.sendfds(...)`` called in the test's thread. The kernel's
    timeouts on the suite's sockets bound it.
``event-loop`` (:class:`LoopCaller`)
    ``await backend.impl.sendfds(...)`` run to completion on the test's
    event loop (a :class:`~fdsend_conformance.plumbing.runners.Runner`,
    one per test), cancelled after IO_TIMEOUT (:class:`HungCall`). If the
    backend declares ``needs_nonblocking``, a blocking socket is made
    non-blocking for the call and its mode put back after it, as a caller
    with a blocking socket would do (calls in several threads or tasks on
    one socket share that: the last one out restores it).
``driver`` (:class:`DriverCaller`)
    A process of its own, in any language, spoken to over a pipe
    (docs/drivers.md). The backend's ``impl`` is a
    :class:`~fdsend_conformance.driver.caller.DriverBackend`, which runs one
    driver per calling thread, bounds every wait for it, and mirrors its fd
    table into this process around every call; a driver is kept from test
    to test while it works (:func:`closing_backend` stops it).

Every caller derives from :class:`BackendCaller`, which holds the
declarations and is the one place that wraps every call of every kind: it
checks OWN-1 around each (:class:`~fdsend_conformance.harness.ownership.Ownership`:
the caller's socket and fds come back as they were given, else
:class:`~fdsend_conformance.harness.ownership.CallerStateChanged`).

How a new kind plugs in:

1. the loader makes its :class:`~fdsend_conformance.backend.Backend` with
   ``kind=`` a :class:`~fdsend_conformance.backend.Kind` name;
2. a subclass of :class:`BackendCaller` implements ``_send`` and ``_recv``
   (the backend's calls, nothing else);
3. one entry in :data:`OPENERS` maps the kind to a function
   ``(backend, event_loop) -> context manager`` that yields the caller and
   owns, for the test's duration, what it needs (a loop, a process).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from fdsend_conformance.backend import Backend, Kind
from fdsend_conformance.harness.ownership import Ownership
from fdsend_conformance.harness.timeouts import IO_TIMEOUT
from fdsend_conformance.plumbing import received
from fdsend_conformance.plumbing.registry import load_backend
from fdsend_conformance.plumbing.runners import Runner, event_loop_for, open_runner

__all__ = [
    "OPENERS",
    "BackendCaller",
    "DriverCaller",
    "HungCall",
    "InProcessCaller",
    "LoopCaller",
    "OpenByName",
    "closing_backend",
    "open_caller",
    "plumbing_fds",
]

_T = TypeVar("_T")


class BackendCaller:
    """A backend's declarations and its calls; the kinds implement ``_send``/``_recv``."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._ownership = Ownership()

    @property
    def backend(self) -> Backend:
        """The declarations of the backend under test."""
        return self._backend

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def version(self) -> str:
        return self._backend.version

    @property
    def truncation(self) -> str:
        return self._backend.truncation

    @property
    def truncation_error(self) -> type[BaseException] | tuple[type[BaseException], ...]:
        return self._backend.truncation_error

    @property
    def unsupported(self) -> frozenset[str]:
        return self._backend.unsupported

    @property
    def asynchronous(self) -> bool:
        return self._backend.asynchronous

    def supports(self, feature: str) -> bool:
        """Whether the backend offers ``feature`` (see backend.Feature)."""
        return self._backend.supports(feature)

    def sendfds(self, sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
        """The backend's ``sendfds``, run to completion."""
        with self._ownership.around(sock, fds):
            return int(self._send(sock, msg, flags, fds))

    def recvfds(self, sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
        """The backend's ``recvfds``, run to completion; its result unchanged.

        Fails the test if the fds it hands back are not ints, not open, or
        not new (see :mod:`~fdsend_conformance.plumbing.received`).
        """
        before = received.snapshot()
        with self._ownership.around(sock):
            result = self._recv(sock, len, flags, numfds)
        received.check_received(result, before)
        return result

    def call_thread(self) -> tuple[int, int] | None:
        """The (pid, tid) of the thread the calls run on, if not the caller's own (a driver's)."""
        return None

    def call_pid(self) -> int:
        """The pid of the process the calls run in (the sender's pid a receiver sees)."""
        where = self.call_thread()
        return os.getpid() if where is None else where[0]

    def session(self) -> contextlib.AbstractContextManager[Any]:
        """Ready the calls of this process (a driver of its own) before the block; nothing else."""
        return contextlib.nullcontext()

    def _send(self, sock: Any, msg: Any, flags: int, fds: Iterable[Any] | None) -> Any:
        raise NotImplementedError

    def _recv(self, sock: Any, len: int, flags: int, numfds: int) -> Any:
        raise NotImplementedError


class InProcessCaller(BackendCaller):
    """A synchronous backend: its functions called in the test's thread."""

    def _send(self, sock: Any, msg: Any, flags: int, fds: Iterable[Any] | None) -> Any:
        return self._backend.impl.sendfds(sock, msg, flags, fds)

    def _recv(self, sock: Any, len: int, flags: int, numfds: int) -> Any:
        return self._backend.impl.recvfds(sock, len, flags, numfds)


class DriverCaller(BackendCaller):
    """A driver: each call becomes requests to this thread's driver process."""

    def _send(self, sock: Any, msg: Any, flags: int, fds: Iterable[Any] | None) -> Any:
        return self._backend.impl.sendfds(sock, msg, flags, fds)

    def _recv(self, sock: Any, len: int, flags: int, numfds: int) -> Any:
        return self._backend.impl.recvfds(sock, len, flags, numfds)

    def call_thread(self) -> tuple[int, int] | None:
        """The driver's main thread, where the implementation's calls run."""
        return (*self._backend.impl.call_thread(),)

    def session(self) -> contextlib.AbstractContextManager[Any]:
        """This process's driver runs from here on (a forked child's own)."""
        return self._backend.impl.session()  # type: ignore[no-any-return]


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


class LoopCaller(BackendCaller):
    """An async backend: its coroutines run on the test's event loop (``runner``).

    The ASYNC tests await the backend's coroutines themselves, inside a
    coroutine of their own: :meth:`run` runs that coroutine on the loop,
    :meth:`asendfds`/:meth:`arecvfds` await the backend's calls in it.
    """

    def __init__(self, backend: Backend, runner: Runner) -> None:
        super().__init__(backend)
        self._runner = runner
        self._prepared: Callable[[Any], contextlib.AbstractContextManager[None]] = (
            _NonBlocking() if backend.needs_nonblocking else _as_given
        )

    def _send(self, sock: Any, msg: Any, flags: int, fds: Iterable[Any] | None) -> Any:
        with self._prepared(sock):
            call = self._backend.impl.sendfds
            return self._runner.run(_within, IO_TIMEOUT, call, sock, msg, flags, fds)

    def _recv(self, sock: Any, len: int, flags: int, numfds: int) -> Any:
        with self._prepared(sock):
            call = self._backend.impl.recvfds
            return self._runner.run(_within, IO_TIMEOUT, call, sock, len, flags, numfds)

    def run(self, main: Callable[[], Awaitable[_T]]) -> _T:
        """``await main()`` on the test's loop and return its result (``main`` bounds itself)."""
        return self._runner.run(main)

    async def asendfds(
        self,
        sock: Any,
        msg: Any,
        flags: int = 0,
        fds: Iterable[Any] | None = None,
        *,
        as_given: bool = False,
    ) -> int:
        """``await`` the backend's ``sendfds`` in the running loop, the socket as it needs it.

        ``as_given``: the socket as it is, even to a backend that declares
        ``needs_nonblocking`` (the tests of its refusal of a blocking one).
        """
        with self._ownership.around(sock, fds), self._prepared_unless(as_given, sock):
            return int(await self._backend.impl.sendfds(sock, msg, flags, fds))

    async def arecvfds(
        self, sock: Any, len: int, flags: int = 0, numfds: int = 64, *, as_given: bool = False
    ) -> Any:
        """``await`` the backend's ``recvfds`` in the running loop, the socket as it needs it.

        ``as_given`` as for :meth:`asendfds`.
        """
        with self._ownership.around(sock), self._prepared_unless(as_given, sock):
            return await self._backend.impl.recvfds(sock, len, flags, numfds)

    def _prepared_unless(
        self, as_given: bool, sock: Any
    ) -> contextlib.AbstractContextManager[None]:
        return _as_given(sock) if as_given else self._prepared(sock)

    def loop_thread(self) -> int:
        """The native id of the thread the test's loop runs in."""
        return self._runner.loop_thread()


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


@contextlib.contextmanager
def _as_given(sock: Any) -> Iterator[None]:
    yield


@contextlib.contextmanager
def _in_process(backend: Backend, event_loop: str | None) -> Iterator[BackendCaller]:
    yield InProcessCaller(backend)


@contextlib.contextmanager
def _on_a_loop(backend: Backend, event_loop: str | None) -> Iterator[BackendCaller]:
    runner = open_runner(event_loop_for(backend, event_loop))
    try:
        yield LoopCaller(backend, runner)
    finally:
        runner.close()


@contextlib.contextmanager
def _through_a_driver(backend: Backend, event_loop: str | None) -> Iterator[BackendCaller]:
    with backend.impl.session():
        yield DriverCaller(backend)


#: Each kind's opener: ``(backend, event_loop) -> context manager`` yielding its caller.
OPENERS: dict[str, Callable[[Backend, str | None], contextlib.AbstractContextManager[Any]]] = {
    Kind.IN_PROCESS: _in_process,
    Kind.EVENT_LOOP: _on_a_loop,
    Kind.DRIVER: _through_a_driver,
}


def plumbing_fds(backend: Backend) -> frozenset[int]:
    """The fds the plumbing holds in this process for ``backend`` (a driver's pipes)."""
    if backend.kind != Kind.DRIVER:
        return frozenset()
    return frozenset(backend.impl.held_fds())


@contextlib.contextmanager
def closing_backend(backend: Backend) -> Iterator[Backend]:
    """``backend``, whose processes (a driver's) are stopped when the block ends."""
    try:
        yield backend
    finally:
        if backend.kind == Kind.DRIVER:
            backend.impl.stop()


@contextlib.contextmanager
def open_caller(backend: Backend, event_loop: str | None = None) -> Iterator[BackendCaller]:
    """The caller of ``backend``, for as long as the block runs (a test, a child's work).

    ``event_loop`` chooses the loop of an async backend (default: the first
    it declares).
    """
    opener = OPENERS.get(backend.kind)
    if opener is None:
        raise ValueError(
            f"backend {backend.name!r} is of kind {backend.kind!r}, which no caller serves"
        )
    with opener(backend, event_loop) as caller:
        yield caller


@dataclass(frozen=True)
class OpenByName:
    """An :data:`~fdsend_conformance.backend.Opener` that loads the backend by name.

    Picklable: a spawned child, a fresh interpreter, loads and opens the
    same backend (``--backend``'s NAME) on the same kind of loop.
    """

    name: str
    event_loop: str | None = None

    @contextlib.contextmanager
    def __call__(self) -> Iterator[BackendCaller]:
        backend = load_backend(self.name)  # a driver starts as its caller opens
        with closing_backend(backend), open_caller(backend, self.event_loop) as caller:
            yield caller
