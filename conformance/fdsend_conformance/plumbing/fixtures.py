"""The suite's fixtures; loaded by ``suite/conftest.py`` only, so they never
appear in other projects' test runs."""

from __future__ import annotations

import multiprocessing
import socket
from collections.abc import Callable, Iterator

import pytest

from fdsend_conformance.backend import Caller, Opener
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import unsupported
from fdsend_conformance.harness.closer import Closer, closer
from fdsend_conformance.harness.fds import make_fd
from fdsend_conformance.harness.sockets import TYPE_FEATURES, socket_pair
from fdsend_conformance.plumbing.callers import OpenByName, open_caller, plumbing_fds
from fdsend_conformance.plumbing.plugin import backend_of, call_failed, event_loop_of

__all__ = [
    "backend",
    "backend_opener",
    "closer",
    "event_loop_started",
    "make_pair",
    "new_fd",
    "no_fd_leaks",
    "pair",
    "spawn_context",
]


@pytest.fixture(scope="session")
def event_loop_started(pytestconfig: pytest.Config) -> None:
    """Start and close one loop of the run's kind, before any test's fd snapshot.

    An event loop library may open fds once per process, on its first loop,
    and keep them (libuv's signal pipe, for uvloop): not a test's leak.
    """
    with open_caller(backend_of(pytestconfig), event_loop_of(pytestconfig)):
        pass


@pytest.fixture
def backend(pytestconfig: pytest.Config, event_loop_started: None) -> Iterator[Caller]:
    """The backend under test (``--backend``), as a caller: its calls return.

    How each kind of backend is reached: :mod:`~fdsend_conformance.plumbing.callers`
    (an async one on one event loop kept for the test, ``--event-loop``).
    """
    with open_caller(backend_of(pytestconfig), event_loop_of(pytestconfig)) as caller:
        yield caller


@pytest.fixture
def backend_opener(pytestconfig: pytest.Config) -> Opener:
    """How another process opens the backend under test (picklable: a spawned child too)."""
    name = pytestconfig.getoption("fdsend_backend") or backend_of(pytestconfig).name
    return OpenByName(name, event_loop_of(pytestconfig))


@pytest.fixture(scope="session")
def spawn_context() -> multiprocessing.context.BaseContext:
    """A 'spawn' context whose resource tracker already runs.

    The tracker keeps a pipe open for the rest of the process: started here,
    before any test's fd snapshot, it is not mistaken for a leak.
    """
    from multiprocessing import resource_tracker

    resource_tracker.ensure_running()
    return multiprocessing.get_context("spawn")


@pytest.fixture(autouse=True)
def no_fd_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves an fd open that was not open before.

    The fds the plumbing holds for the backend (a driver's pipes) are not the test's.
    Leaked fds are closed either way, so one leak does not spill into the
    next test; a test that already failed is not failed twice.
    """
    # A driver's pipes, opened by the test's first call, are the plumbing's.
    held = lambda: plumbing_fds(backend_of(request.config))  # noqa: E731
    with fdtable.no_leaks(lambda: call_failed(request.node), held):
        yield


@pytest.fixture
def make_pair(
    backend: Caller, closer: Closer
) -> Callable[..., tuple[socket.socket, socket.socket]]:
    """Make AF_UNIX pairs of a socket type; UNSUPPORTED when the backend lacks it."""

    def make(kind: int = socket.SOCK_STREAM) -> tuple[socket.socket, socket.socket]:
        feature = TYPE_FEATURES.get(kind)
        if feature is not None and not backend.supports(feature):
            unsupported(f"{backend.name} lacks {feature}")
        a, b = socket_pair(kind)
        closer.objects(a, b)
        return a, b

    return make


@pytest.fixture
def pair(
    make_pair: Callable[..., tuple[socket.socket, socket.socket]],
) -> tuple[socket.socket, socket.socket]:
    """A connected AF_UNIX SOCK_STREAM pair: (sender, receiver)."""
    return make_pair()


@pytest.fixture
def new_fd(closer: Closer) -> Callable[[str], int]:
    """Open an fd of a kind from ``fds.FD_KINDS``; skipped where unavailable."""

    def make(kind: str) -> int:
        try:
            fds = make_fd(kind)
        except OSError as exc:
            pytest.skip(f"cannot make a {kind} fd here: {exc}")
        closer.fds(*fds)
        return fds[0]

    return make
