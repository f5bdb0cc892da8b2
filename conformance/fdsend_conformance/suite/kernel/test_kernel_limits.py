"""KERNEL: the kernel's limits on fds per message, per receiver and in flight."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.cmsg import SCM_MAX_FD, fd_space, receive, send_fds
from fdsend_conformance.harness.fds import distinct_fds, identities
from fdsend_conformance.harness.fdtable import at_eof
from fdsend_conformance.harness.kernel import kernel_at_least
from fdsend_conformance.harness.privileges import (
    CAP_SYS_ADMIN,
    CAP_SYS_RESOURCE,
    become_a_fresh_user,
    has_capability,
    in_initial_user_namespace,
    unprivileged_problem,
)
from fdsend_conformance.harness.processes import call_in_child, set_soft_nofile
from fdsend_conformance.harness.sockets import pending, socket_pair, unix_pair

pytestmark = pytest.mark.kernel


@pytest.mark.clause("KERNEL-1")
def test_scm_max_fd_fds_pass_in_one_message(closer):
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(SCM_MAX_FD)
    assert send_fds(a, b"max", sent) == 3
    msg = receive(b, 16, fd_space(SCM_MAX_FD))
    closer.fds(*msg.fds)
    assert msg.data == b"max"
    assert not msg.ctrunc
    assert identities(msg.fds) == identities(sent)


@pytest.mark.clause("KERNEL-1")
def test_one_fd_more_than_scm_max_fd_is_einval(closer):
    a, b = unix_pair(closer.objects)
    sent = closer.distinct_fds(SCM_MAX_FD + 1)
    with pytest.raises(OSError) as info:
        send_fds(a, b"max", sent)
    assert info.value.errno == errno.EINVAL, os.strerror(info.value.errno or 0)
    assert not pending(b), "something reached the peer"


# KERNEL-2: fd numbers left free below the lowered limit, and fds sent.
FREE_SLOTS = 3
SENT = 10


def _receive_at_the_limit() -> None:
    """In a forked child: receive SENT fds with only FREE_SLOTS numbers free."""
    a, b = socket_pair()
    sent = distinct_fds(SENT - 1)
    read_end, write_end = os.pipe()
    sent.append(write_end)  # beyond the free slots: must be dropped and released
    assert send_fds(a, b"limit", sent) == 5
    os.close(write_end)
    before = fdtable.open_fds()
    free = sorted(set(range(max(before) + 2 + SENT)) - before)
    previous = set_soft_nofile(free[FREE_SLOTS])
    try:
        msg = receive(b, 16, fd_space(SENT))
    finally:
        set_soft_nofile(previous)
    assert msg.data == b"limit"
    assert msg.ctrunc, "fds were dropped at RLIMIT_NOFILE without MSG_CTRUNC"
    assert identities(msg.fds) == identities(sent[:FREE_SLOTS])
    assert fdtable.open_fds() - before == set(msg.fds), "dropped fds were installed"
    assert at_eof(read_end), "a dropped fd still holds its file open"
    for fd in msg.fds:
        os.close(fd)
    # Nothing else broke: the same socket passes fds again.
    assert send_fds(a, b"again", sent[:2]) == 5
    again = receive(b, 16, fd_space(2))
    assert not again.ctrunc
    assert identities(again.fds) == identities(sent[:2])


@pytest.mark.clause("KERNEL-2")
def test_receiver_at_its_fd_limit_gets_the_fds_that_fit():
    call_in_child(_receive_at_the_limit)


# KERNEL-3: the lowered limit, and how many sends to try.
IN_FLIGHT_LIMIT = 32
ATTEMPTS = 4 * IN_FLIGHT_LIMIT


def _fill_in_flight(unprivileged: bool) -> tuple[int, int | None, bool]:
    """In a forked child: send one fd at a time, never received, until an error.

    Returns how many sends succeeded, the errno that stopped them (None if
    all ATTEMPTS succeeded), and whether they were made by a fresh user.
    """
    a, _b = socket_pair()
    read_end, _write_end = os.pipe()
    fresh = become_a_fresh_user() if unprivileged else False
    set_soft_nofile(IN_FLIGHT_LIMIT)
    for sent in range(ATTEMPTS):
        try:
            send_fds(a, b"f", [read_end], socket.MSG_DONTWAIT)
        except OSError as exc:
            return sent, exc.errno, fresh
    return ATTEMPTS, None, fresh


@pytest.mark.clause("KERNEL-3")
def test_in_flight_fds_beyond_the_limit_fail_with_etoomanyrefs():
    if not kernel_at_least(4, 5):
        pytest.skip("the in-flight fd limit (ETOOMANYREFS) came with Linux 4.5")
    problem = None if os.geteuid() == 0 else unprivileged_problem()
    if problem:
        pytest.skip(problem)
    sent, error, fresh = call_in_child(lambda: _fill_in_flight(unprivileged=True))
    assert error is not None, f"{sent} fds in flight under a limit of {IN_FLIGHT_LIMIT}"
    assert error == errno.ETOOMANYREFS, f"after {sent} sends: {errno.errorcode.get(error)}"
    # Refused once more than the limit are in flight: the send that makes
    # it limit + 1 still succeeds.
    assert sent <= IN_FLIGHT_LIMIT + 1, f"{sent} sends succeeded"
    if fresh:
        # A user of its own had nothing else in flight, so no send before
        # that one may fail. (Not as an ordinary user: its other processes,
        # other tests among them, may have fds in flight.)
        assert sent >= IN_FLIGHT_LIMIT + 1, f"refused after only {sent} sends"


@pytest.mark.clause("KERNEL-3")
def test_cap_sys_resource_lifts_the_in_flight_limit():
    if not (has_capability(CAP_SYS_RESOURCE) or has_capability(CAP_SYS_ADMIN)):
        pytest.skip("needs CAP_SYS_RESOURCE or CAP_SYS_ADMIN (run as root)")
    if not in_initial_user_namespace():
        pytest.skip("in a user namespace: the kernel checks the capability in the initial one")
    sent, error, _fresh = call_in_child(lambda: _fill_in_flight(unprivileged=False))
    assert error is None, f"after {sent} sends: {errno.errorcode.get(error or 0)}"
    assert sent == ATTEMPTS
