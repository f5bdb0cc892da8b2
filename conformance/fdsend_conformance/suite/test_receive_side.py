"""RECV: whatever the receiving socket has switched on, every fd is accounted for."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import pytest

from fdsend_conformance.backend import Caller
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import SEVERAL_FDS, check_payload, per_call
from fdsend_conformance.harness.cmsg import SO_PASSRIGHTS
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.limits import SCM_MAX_FD
from fdsend_conformance.harness.processes import call_in_child, leave_free_fds
from fdsend_conformance.harness.receive_options import (
    COMBINATIONS,
    RECEIVE_OPTIONS,
    option,
    refusal,
)
from fdsend_conformance.harness.sockets import UNIX_TYPES, pending

#: Each option alone, by its name, then the combinations.
OPTION_SETS = {o.name: (o.name,) for o in RECEIVE_OPTIONS} | COMBINATIONS


def _switch_on(sock: socket.socket, names: tuple[str, ...], *, all_of: bool) -> None:
    """Switch the options on; skip the test where the kernel refuses one (``all_of``).

    Without ``all_of`` an option refused on this socket type is left out (SO_INQ
    exists on SOCK_STREAM only).
    """
    for name in names:
        reason = refusal(sock, option(name))
        if reason is not None and all_of:
            pytest.skip(reason)


def _pidfds() -> set[int]:
    """The pidfds open in this process."""
    return {fd for fd in fdtable.open_fds() if "pidfd" in fdtable.describe(fd)}


def _hand_back(closer: Any, result: Any) -> tuple[list[int], int | None]:
    """Give the closer every fd the result carries; its fds and pidfd."""
    _, fds = result
    pidfd = getattr(result, "pidfd", None)
    closer.fds(*fds, *([pidfd] if pidfd is not None else []))
    return list(fds), pidfd


def _assert_not_reported_truncated(backend: Caller, result: Any) -> None:
    if backend.truncation == "attribute":
        assert not getattr(result, "truncated", False), (
            "reported truncation, though every fd arrived within numfds"
        )


def _receive(backend: Caller, sock: socket.socket, numfds: int) -> Any:
    """Receive; a truncation error here is a false report, so it fails the test."""
    try:
        return backend.recvfds(sock, 64, 0, numfds)
    except Exception as exc:
        if backend.truncation == "exception" and isinstance(exc, backend.truncation_error):
            pytest.fail(f"raised {type(exc).__name__} ({exc}), though no fd was cut")
        raise


@pytest.mark.clause("RECV-1")
@pytest.mark.parametrize("names", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
@pytest.mark.parametrize("kind", list(UNIX_TYPES.values()), ids=list(UNIX_TYPES))
def test_every_fd_arrives_whatever_the_receiver_switched_on(
    backend, make_pair, closer, kind, names
):
    a, b = make_pair(kind)
    _switch_on(b, names, all_of=names != COMBINATIONS["everything"])
    sent = closer.distinct_fds(per_call(backend, 3))
    backend.sendfds(a, b"options", 0, sent)
    result = _receive(backend, b, len(sent))
    fds, _ = _hand_back(closer, result)
    assert identities(fds) == identities(sent), (
        f"with {', '.join(names)} on, {len(fds)} of {len(sent)} fds arrived"
    )
    _assert_not_reported_truncated(backend, result)


@pytest.mark.clause("RECV-1")
@SEVERAL_FDS
@pytest.mark.parametrize("kind", list(UNIX_TYPES.values()), ids=list(UNIX_TYPES))
def test_scm_max_fd_fds_arrive_with_everything_switched_on(backend, make_pair, closer, kind):
    a, b = make_pair(kind)
    _switch_on(b, COMBINATIONS["everything"], all_of=False)
    sent = closer.distinct_fds(SCM_MAX_FD)
    backend.sendfds(a, b"all", 0, sent)
    result = _receive(backend, b, SCM_MAX_FD)
    fds, _ = _hand_back(closer, result)
    assert len(fds) == SCM_MAX_FD, f"{len(fds)} of {SCM_MAX_FD} fds arrived with every option on"
    assert identities(fds) == identities(sent)
    _assert_not_reported_truncated(backend, result)


def _passpidfd(sock: socket.socket) -> None:
    reason = refusal(sock, option("SO_PASSPIDFD"))
    if reason is not None:
        pytest.skip(reason)


@pytest.mark.clause("RECV-2")
@pytest.mark.parametrize("kind", list(UNIX_TYPES.values()), ids=list(UNIX_TYPES))
def test_scm_pidfds_do_not_pile_up(backend, make_pair, closer, kind):
    a, b = make_pair(kind)
    _passpidfd(b)
    before = _pidfds()
    sent = closer.distinct_fds(1)
    for _ in range(10):
        backend.sendfds(a, b"pid", 0, sent)
        result = backend.recvfds(b, 16, 0, 1)
        fds, pidfd = _hand_back(closer, result)
        for fd in [*fds, *([pidfd] if pidfd is not None else [])]:
            closer.close(fd)
    left = _pidfds() - before
    assert not left, f"{len(left)} SCM_PIDFD fds of 10 messages stay open, owned by nobody"


@pytest.mark.clause("RECV-2")
@SEVERAL_FDS  # more than fit
@pytest.mark.parametrize("kind", list(UNIX_TYPES.values()), ids=list(UNIX_TYPES))
def test_a_cut_receive_with_pidfds_and_credentials_leaks_nothing(backend, make_pair, closer, kind):
    a, b = make_pair(kind)
    _passpidfd(b)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sent = closer.distinct_fds(4)
    backend.sendfds(a, b"cut", 0, sent)
    before = fdtable.open_fds()
    try:
        result = backend.recvfds(b, 16, 0, 1)
    except Exception as exc:
        if not (backend.truncation == "exception" and isinstance(exc, backend.truncation_error)):
            raise
        result = None
    returned: set[int] = set()
    if result is not None:
        fds, pidfd = _hand_back(closer, result)
        assert len(fds) <= 1, f"asked for 1 fd, got {len(fds)}"
        returned = {*fds, *([pidfd] if pidfd is not None else [])}
    kept = (fdtable.open_fds() - before) - returned
    assert not kept, f"left open and not returned: {[fdtable.describe(fd) for fd in kept]}"


@pytest.mark.clause("RECV-3")
@SEVERAL_FDS  # a message without fds
def test_the_pidfd_is_handed_to_the_caller(backend, pair, closer):
    a, b = pair
    _passpidfd(b)
    backend.sendfds(a, b"who", 0, [])
    result = backend.recvfds(b, 16, 0, 1)
    _, pidfd = _hand_back(closer, result)
    assert pidfd is not None, f"{backend.name} does not hand the SCM_PIDFD to its caller"
    with open(f"/proc/self/fdinfo/{pidfd}", encoding="ascii") as info:
        pids = [line.split()[1] for line in info if line.startswith("Pid:")]
    assert pids == [str(backend.call_pid())], f"the pidfd is for pid {pids}, not the sender"
    assert not os.get_inheritable(pidfd), "the pidfd is inheritable across exec"


def _pidfd_at_fd_limit(backend: Caller, sock: socket.socket) -> dict[str, Any]:
    """In a child with one fd number free: receive one fd, and say what came beside it."""
    with backend.session():  # a driver's pipes are opened before the limit
        limit = leave_free_fds(1)  # the fd takes it; none is left for the pidfd
        before = fdtable.open_below(limit)
        result = backend.recvfds(sock, 16, 0, 1)
        new = sorted(fdtable.open_below(limit) - before)
    msg, fds = result
    return {
        "msg": msg,
        "files": identities(fds),
        "returned": sorted(fds),
        "new": new,
        "pidfd": getattr(result, "pidfd", None),
    }


@pytest.mark.clause("RECV-3")
def test_no_pidfd_at_the_fd_limit_is_none_not_an_errno(backend, pair, closer):
    """With no fd number left for it, SCM_PIDFD carries -EMFILE (measured on Linux 6.18)."""
    a, b = pair
    _passpidfd(b)
    sent = closer.distinct_fds(1)
    backend.sendfds(a, b"who", 0, sent)
    got = call_in_child(lambda: _pidfd_at_fd_limit(backend, b))
    check_payload(backend, got["msg"], b"who")
    assert got["files"] == identities(sent), "the fd did not arrive"
    assert got["new"] == got["returned"], "fds installed in the child and not returned"
    pidfd = got["pidfd"]
    assert pidfd is None, f"no pidfd could be made, yet the result's pidfd is {pidfd!r}"


@pytest.mark.clause("RECV-3")
@SEVERAL_FDS  # a message without fds
def test_the_credentials_are_handed_to_the_caller(backend, pair, closer):
    a, b = pair
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    backend.sendfds(a, b"who", 0, [])
    result = backend.recvfds(b, 16, 0, 1)
    _hand_back(closer, result)
    credentials = getattr(result, "credentials", None)
    assert credentials is not None, f"{backend.name} does not hand SCM_CREDENTIALS to its caller"
    assert tuple(credentials) == (backend.call_pid(), os.getuid(), os.getgid())


@pytest.mark.clause("RECV-4")
@SEVERAL_FDS  # then a message without fds
@pytest.mark.parametrize("kind", list(UNIX_TYPES.values()), ids=list(UNIX_TYPES))
def test_a_receiver_that_refuses_fds_makes_the_send_fail_with_eperm(
    backend, make_pair, closer, kind
):
    a, b = make_pair(kind)
    try:
        b.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 0)
    except OSError as exc:
        pytest.skip(f"this kernel lacks SO_PASSRIGHTS (Linux 6.16): {exc}")
    sent = closer.distinct_fds(1)
    with pytest.raises(PermissionError) as raised:
        backend.sendfds(a, b"no", 0, sent)
    assert raised.value.errno == errno.EPERM
    assert not pending(b), "the refused send queued something"
    backend.sendfds(a, b"plain", 0, [])  # a send without fds still goes through
    msg, fds = backend.recvfds(b, 16, 0, 1)
    assert list(fds) == []
    check_payload(backend, msg, b"plain")
