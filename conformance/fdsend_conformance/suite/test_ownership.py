"""OWN: the caller's fds stay the caller's; received fds are handled safely."""

from __future__ import annotations

import contextlib
import fcntl
import gc
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import SEVERAL_FDS, check_arrived, check_payload, per_call
from fdsend_conformance.harness.fdlikes import SOCKET_SPELLINGS
from fdsend_conformance.harness.fds import distinct_fds, identities, identity
from fdsend_conformance.harness.receive_options import option, switch_on
from fdsend_conformance.harness.sockets import pending
from fdsend_conformance.harness.timeouts import IO_TIMEOUT, SUBPROCESS_TIMEOUT


def _state(fd: int) -> tuple[tuple[int, int], int, int]:
    """What a call must not change about a caller's fd."""
    return identity(fd), fcntl.fcntl(fd, fcntl.F_GETFD), fcntl.fcntl(fd, fcntl.F_GETFL)


#: How the caller gives its socket, alone or under a process-wide default
#: timeout, set as a caller may after making its sockets: ``socket.socket(fileno=fd)``
#: then makes the fd non-blocking, and a backend that wraps the fd it was given
#: must put its mode back.
GIVEN = {
    **{name: (spell, None) for name, spell in SOCKET_SPELLINGS.items()},
    **{f"{name}-under-a-default-timeout": (s, IO_TIMEOUT) for name, s in SOCKET_SPELLINGS.items()},
}


@contextlib.contextmanager
def default_socket_timeout(seconds: float | None) -> Iterator[None]:
    """``socket.setdefaulttimeout(seconds)`` for the block, then back as it was."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


@pytest.mark.clause("OWN-1")
@pytest.mark.parametrize("given_as", list(GIVEN))
def test_caller_socket_and_fds_untouched(backend, pair, closer, given_as):
    a, b = pair
    sent = closer.distinct_fds(per_call(backend, 3))
    spell, default_timeout = GIVEN[given_as]
    watched = [a.fileno(), b.fileno(), *sent]
    before = [_state(fd) for fd in watched]
    timeouts = a.gettimeout(), b.gettimeout()
    with default_socket_timeout(default_timeout):
        try:
            backend.sendfds(spell(a), b"own", 0, sent)
            _, fds = backend.recvfds(spell(b), 16, 0, len(sent))
        except (TypeError, AttributeError):
            # Refusing a spelling is COERCE-1's business; ownership still holds.
            fds = []
    closer.fds(*fds)
    gc.collect()  # a temporary socket.socket(fileno=...) would close on collection
    assert [_state(fd) for fd in watched] == before
    assert (a.gettimeout(), b.gettimeout()) == timeouts


@pytest.mark.clause("OWN-1")
@pytest.mark.requires(Feature.BLOCKING_MODE)
@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "non-blocking"])
def test_a_default_timeout_changes_no_fd(backend, pair, closer, blocking):
    a, b = pair
    b.setblocking(blocking)
    before = _state(b.fileno())
    backend.sendfds(a, b"own", 0, closer.distinct_fds(1))
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(IO_TIMEOUT)  # socket.socket(fileno=...) would take it on
    try:
        _, fds = backend.recvfds(b.fileno(), 16, 0, 1)
        closer.fds(*fds)
        if not blocking:  # the fd's own mode still rules: no wait on an empty socket
            with pytest.raises(BlockingIOError):
                backend.recvfds(b.fileno(), 16, 0, 1)
    except (TypeError, AttributeError):
        pass  # a socket given as an int is COERCE-1's business; ownership still holds
    finally:
        socket.setdefaulttimeout(previous)
    gc.collect()
    assert _state(b.fileno()) == before


@pytest.mark.clause("OWN-1")
@SEVERAL_FDS  # a closed fd among open ones
def test_failed_send_closes_none_of_the_callers_fds(backend, pair, closer):
    a, _ = pair
    sent = closer.distinct_fds(2)
    closed = distinct_fds(1)[0]
    os.close(closed)
    before = [_state(fd) for fd in (a.fileno(), *sent)]
    with pytest.raises(OSError):
        backend.sendfds(a, b"x", 0, [sent[0], closed, sent[1]])
    gc.collect()
    assert [_state(fd) for fd in (a.fileno(), *sent)] == before


@pytest.mark.clause("OWN-2")
def test_received_fds_are_close_on_exec(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(per_call(backend, 2))
    backend.sendfds(a, b"x", 0, sent)
    _, fds = backend.recvfds(b, 16, 0, len(sent))
    closer.fds(*fds)
    inheritable = [fd for fd in fds if not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC]
    assert inheritable == [], f"received fds without FD_CLOEXEC: {inheritable}"


@pytest.mark.clause("OWN-2")
def test_subprocess_does_not_inherit_received_fds(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(1)
    backend.sendfds(a, b"x", 0, sent)
    _, fds = backend.recvfds(b, 16, 0, 1)
    closer.fds(*fds)
    probe = (
        "import os, sys\ntry:\n    os.fstat(int(sys.argv[1]))\nexcept OSError:\n    sys.exit(3)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", probe, str(fds[0])],
        close_fds=False,
        timeout=SUBPROCESS_TIMEOUT,
        check=False,
    )
    assert child.returncode == 3, "a child started with subprocess inherited a received fd"


@pytest.mark.clause("OWN-3")
def test_credentials_beside_fds_break_nothing(backend, pair, closer):
    a, b = pair
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sent = closer.distinct_fds(per_call(backend, 2))
    backend.sendfds(a, b"cred", 0, sent)
    before = fdtable.open_fds()
    result = backend.recvfds(b, 16, 0, len(sent))
    msg, fds = result
    new = fdtable.leaked_since(before)
    closer.fds(*new)
    assert sorted(fds) == new, "fds installed that the backend did not return"
    check_payload(backend, msg, b"cred")


@pytest.mark.clause("OWN-3")
def test_a_foreign_control_message_is_not_taken_for_credentials(backend, make_pair, closer):
    a, b = make_pair(socket.SOCK_DGRAM)
    switch_on(b, option("SO_TIMESTAMP_OLD"))  # SCM_TIMESTAMP, 16 bytes; SO_PASSCRED off
    backend.sendfds(a, b"when", 0, closer.distinct_fds(1))
    result = backend.recvfds(b, 16, 0, 1)
    closer.fds(*result[1])  # (msg, fds)
    assert getattr(result, "credentials", None) is None, "credentials the socket did not ask for"


@pytest.mark.clause("OWN-4")
@pytest.mark.requires(Feature.FLAGS)
def test_peeked_fds_are_returned(backend, pair, closer):
    a, b = pair
    sent = closer.distinct_fds(per_call(backend, 2))
    backend.sendfds(a, b"peek", 0, sent)
    before = fdtable.open_fds()
    _, peeked = backend.recvfds(b, 16, socket.MSG_PEEK, len(sent))
    closer.fds(*peeked)
    assert sorted(peeked) == fdtable.leaked_since(before), "a peek installed fds it did not return"
    assert identities(peeked) == identities(sent)
    assert pending(b), "the MSG_PEEK receive consumed the message"
    check_arrived(backend, closer, backend.recvfds(b, 16, 0, len(sent)), b"peek", sent)
