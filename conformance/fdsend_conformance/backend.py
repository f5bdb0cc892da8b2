"""What a backend declares (:class:`Backend`), and what a test calls (:class:`Caller`).

A *backend* is any object (a module, a class instance) with two functions in
the shape of fdsend 0.3::

    sendfds(sock, msg, flags=0, fds=None) -> int
    recvfds(sock, len, flags=0, numfds=64) -> result

``sock`` is whatever the caller gives (socket object, int, object with
``fileno()``); ``fds`` is None or an iterable of fd-likes. ``result`` unpacks
as ``(msg, fds)``: the payload bytes and a sequence of the received fds (ints).

A backend may also carry these optional declarations (plain attributes):

``name`` / ``version`` (or ``__version__``)
    Shown in the report.
``truncation``
    How the backend tells its caller that fds were cut by a short control
    buffer (MSG_CTRUNC). One of :data:`TRUNCATION_STYLES`:

    - ``"attribute"`` (the default): the result has ``.truncated`` (true when
      fds were lost) and ``.msg_truncated`` (true when the payload was cut,
      MSG_TRUNC); the fds that did arrive are in the result.
    - ``"exception"``: the receive raises ``truncation_error`` (an exception
      type, default ``OSError``) after closing every fd it received.
    - ``"none"``: truncation is not reported. The truncation clauses fail.
``unsupported``
    An iterable of :class:`Feature` names the backend does not offer. Clauses
    that need them are reported UNSUPPORTED instead of FAIL.
``asynchronous``
    True for a backend whose ``sendfds``/``recvfds`` are coroutine functions
    (the default when both are, by :func:`inspect.iscoroutinefunction`). The
    suite runs the whole contract against it on one event loop per test
    (:mod:`fdsend_conformance.plumbing.runners`) and the ASYNC clauses
    too, which are UNSUPPORTED for a synchronous backend.
``event_loops``
    The event loops an async backend runs on, the default first: a subset of
    ``("asyncio", "uvloop", "trio")``; default ``("asyncio", "uvloop")``.
``needs_nonblocking``
    True if an async backend refuses blocking sockets (as asyncio's
    ``loop.sock_recv`` does): the suite then makes each socket non-blocking
    for the call and restores its mode after. Default False: sockets are
    passed as they are.

An *adapter* for another library maps call shapes only: it never adds
behaviour the library lacks, so that the library's real behaviour shows.

A test never calls ``impl`` itself: it calls a :class:`Caller`, which
reaches the backend the way its :class:`Kind` needs
(:mod:`fdsend_conformance.plumbing.callers` shows how, for every kind).
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

__all__ = [
    "ASYNC_EVENT_LOOPS",
    "EVENT_LOOPS",
    "TRUNCATION_STYLES",
    "Backend",
    "Caller",
    "Feature",
    "FlagsResult",
    "Kind",
    "Opener",
]

TRUNCATION_STYLES = ("attribute", "exception", "none")

#: The event loops an async backend may run on, and the default of one that does not say.
EVENT_LOOPS = ("asyncio", "uvloop", "trio")
ASYNC_EVENT_LOOPS = ("asyncio", "uvloop")


class Feature:
    """Optional features a backend may declare it lacks."""

    #: Carries caller-chosen payload bytes with the fds (``msg`` and ``len``).
    PAYLOAD = "payload"
    #: Honours the ``flags`` argument (MSG_PEEK, MSG_DONTWAIT, ...).
    FLAGS = "flags"
    #: Works on SOCK_SEQPACKET sockets.
    SEQPACKET = "seqpacket"
    #: Works on SOCK_DGRAM sockets.
    DGRAM = "dgram"

    #: Follows the socket's blocking mode: waits in the kernel on a blocking
    #: socket, raises BlockingIOError on a non-blocking one, honours a socket
    #: object's timeout. An async backend lacks it by nature: it waits on its
    #: event loop whatever the mode, and takes its timeouts from the loop
    #: (the ASYNC clauses check that instead).
    BLOCKING_MODE = "blocking-mode"

    #: Declared (in ``unsupported``) by an API that sends and receives exactly
    #: one fd per call (bglibs' socket_sendfd, scgi's passfd): the tests whose
    #: point is several fds in one call, or none, are UNSUPPORTED for it
    #: (``harness.checks.SEVERAL_FDS``), and the others send it one fd
    #: (``harness.checks.per_call``). What it lacks is "any number of fds".
    ONE_FD = "one-fd"

    #: Called in this process with Python objects: argument coercion (COERCE),
    #: a socket object's timeout (ERR-6), ValueError for a negative count
    #: (ERR-7), a Python signal handler's retry or exception (PEP 475, FAULT-1/2).
    #: A driver (docs/drivers.md) lacks it by nature.
    PYTHON_API = "python-api"

    ALL = frozenset({PAYLOAD, FLAGS, SEQPACKET, DGRAM, BLOCKING_MODE, ONE_FD, PYTHON_API})

    #: What lacking each feature means, for an UNSUPPORTED reason.
    LACKING: ClassVar[dict[str, str]] = {
        PAYLOAD: "carries no payload of the caller's",
        FLAGS: "takes no flags",
        SEQPACKET: "does not work on SOCK_SEQPACKET",
        DGRAM: "does not work on SOCK_DGRAM",
        BLOCKING_MODE: "does not follow the socket's blocking mode",
        ONE_FD: "sends and receives exactly one fd per call",
        PYTHON_API: "is not called in-process with Python objects (a driver)",
    }


class Kind:
    """How the suite reaches a backend's calls (one caller each, in plumbing/callers.py)."""

    #: Plain functions, called in the test's process and thread.
    IN_PROCESS = "in-process"
    #: Coroutine functions, run on the test's event loop.
    EVENT_LOOP = "event-loop"
    #: Another process (a driver, in any language) that the suite talks to.
    DRIVER = "driver"


class FlagsResult(tuple):  # type: ignore[type-arg]
    """A ``(msg, fds)`` result that also keeps the kernel's msg_flags.

    For adapters of libraries that hand back raw ``msg_flags``: the truncation
    attributes are read straight from the flags, nothing is added.
    """

    flags: int

    def __new__(cls, msg: bytes, fds: Sequence[int], flags: int) -> FlagsResult:
        self = super().__new__(cls, (msg, fds))
        self.flags = int(flags)
        return self

    @property
    def truncated(self) -> bool:
        """MSG_CTRUNC: control data (fds) was cut."""
        return bool(self.flags & socket.MSG_CTRUNC)

    @property
    def msg_truncated(self) -> bool:
        """MSG_TRUNC: the payload was cut."""
        return bool(self.flags & socket.MSG_TRUNC)


@dataclass(frozen=True)
class Backend:
    """A loaded backend with its declarations resolved, as the suite sees it."""

    name: str
    impl: Any
    origin: str
    version: str = "unknown"
    truncation: str = "attribute"
    truncation_error: type[BaseException] | tuple[type[BaseException], ...] = OSError
    unsupported: frozenset[str] = field(default_factory=frozenset)
    asynchronous: bool = False
    event_loops: tuple[str, ...] = ()
    needs_nonblocking: bool = False
    #: How the suite reaches its calls: one of the :class:`Kind` names.
    kind: str = Kind.IN_PROCESS

    def supports(self, feature: str) -> bool:
        """Whether the backend offers ``feature`` (see :class:`Feature`)."""
        return feature not in self.unsupported

    def lacking(self, features: Iterable[str]) -> str:
        """Why the backend cannot take a test that needs ``features``; empty if it can."""
        missing = sorted(f for f in set(features) if not self.supports(f))
        return "; ".join(f"{self.name} {Feature.LACKING.get(f, 'lacks ' + f)}" for f in missing)

    @classmethod
    def from_object(cls, name: str, impl: Any, origin: str) -> Backend:
        """Read the declarations of ``impl`` (see the module docstring)."""
        if not callable(getattr(impl, "sendfds", None)) or not callable(
            getattr(impl, "recvfds", None)
        ):
            raise TypeError(f"{origin} has no callable sendfds/recvfds")
        truncation = getattr(impl, "truncation", "attribute")
        if truncation not in TRUNCATION_STYLES:
            raise ValueError(
                f"{origin}: truncation must be one of {TRUNCATION_STYLES}, not {truncation!r}"
            )
        unsupported = frozenset(getattr(impl, "unsupported", ()))
        unknown = unsupported - Feature.ALL
        if unknown:
            raise ValueError(f"{origin}: unknown features {sorted(unknown)}")
        version = getattr(impl, "version", None) or getattr(impl, "__version__", None)
        asynchronous = _is_async(impl, origin)
        event_loops = tuple(getattr(impl, "event_loops", ASYNC_EVENT_LOOPS if asynchronous else ()))
        if asynchronous and (not event_loops or not set(event_loops) <= set(EVENT_LOOPS)):
            raise ValueError(f"{origin}: event_loops must be some of {EVENT_LOOPS}")
        if asynchronous:
            unsupported |= {Feature.BLOCKING_MODE}
        return cls(
            name=str(getattr(impl, "name", None) or name),
            impl=impl,
            origin=origin,
            version=str(version or "unknown"),
            truncation=truncation,
            truncation_error=getattr(impl, "truncation_error", OSError),
            unsupported=unsupported,
            asynchronous=asynchronous,
            event_loops=event_loops,
            needs_nonblocking=bool(getattr(impl, "needs_nonblocking", False)),
            kind=_kind_of(impl, origin, asynchronous),
        )


class Caller(Protocol):
    """What the ``backend`` fixture gives a test: declarations, and calls that return.

    Whatever the backend's kind, ``sendfds``/``recvfds`` are synchronous and
    bounded, and the backend's declarations read as attributes.
    """

    @property
    def backend(self) -> Backend:
        """The declarations of the backend under test."""
        ...

    @property
    def name(self) -> str: ...

    @property
    def truncation(self) -> str: ...

    @property
    def truncation_error(self) -> type[BaseException] | tuple[type[BaseException], ...]: ...

    @property
    def unsupported(self) -> frozenset[str]: ...

    def supports(self, feature: str) -> bool:
        """Whether the backend offers ``feature`` (see :class:`Feature`)."""
        ...

    def sendfds(self, sock: Any, msg: Any, flags: int = 0, fds: Iterable[Any] | None = None) -> int:
        """The backend's ``sendfds``, run to completion."""
        ...

    def recvfds(self, sock: Any, len: int, flags: int = 0, numfds: int = 64) -> Any:
        """The backend's ``recvfds``, run to completion; its result unchanged."""
        ...

    def call_thread(self) -> tuple[int, int] | None:
        """The (pid, tid) of the thread the calls run on, if not the caller's own (a driver's)."""
        ...

    def call_pid(self) -> int:
        """The pid of the process the calls run in (the sender's pid a receiver sees)."""
        ...

    def session(self) -> Any:
        """A context that readies this process's calls (starts a driver of its own)."""
        ...


def _kind_of(impl: Any, origin: str, asynchronous: bool) -> str:
    """The backend's :class:`Kind`: declared by a driver's backend, else by its calls."""
    declared = getattr(impl, "kind", None)
    if declared is None:
        return Kind.EVENT_LOOP if asynchronous else Kind.IN_PROCESS
    if declared != Kind.DRIVER:
        raise ValueError(f"{origin}: kind may only be declared as {Kind.DRIVER!r}")
    return Kind.DRIVER


#: How a process opens the backend under test: ``with opener() as backend: ...``.
#: Picklable, so that a spawned child (a fresh interpreter) opens it too.
Opener = Callable[[], AbstractContextManager[Caller]]


def _is_async(impl: Any, origin: str) -> bool:
    """Whether ``impl`` is an async backend: declared, or both calls are coroutine functions."""
    declared = getattr(impl, "asynchronous", None)
    if declared is not None:
        return bool(declared)
    coroutines = {
        inspect.iscoroutinefunction(impl.sendfds),
        inspect.iscoroutinefunction(impl.recvfds),
    }
    if len(coroutines) > 1:
        raise ValueError(f"{origin}: one of sendfds/recvfds is a coroutine function, not both")
    return coroutines == {True}
