"""The collector's canary and the fresh user of KERNEL-23: each can tell both ways."""

from __future__ import annotations

import os
import socket

import pytest

from fdsend_conformance.harness.cmsg import send_fds
from fdsend_conformance.harness.processes import call_in_child
from fdsend_conformance.harness.timeouts import UNIX_GC_TIMEOUT
from fdsend_conformance.harness.unix_gc import (
    Canary,
    become_a_fresh_user,
    kick_unix_gc,
    wait_until,
)


def _untouched_at_once() -> bool:
    canary = Canary()
    try:
        return canary.untouched()
    finally:
        canary.close()


def _canary_sees_a_walk() -> tuple[bool, bool]:
    # A walk started elsewhere may come between making a canary and asking
    # it (on a busy machine, about one time in a hundred): one of a few.
    untouched = any(_untouched_at_once() for _ in range(CANARIES))
    canary = Canary()
    try:
        # The canary is in flight, so a released AF_UNIX socket runs the collector.
        walked = wait_until(lambda: not canary.untouched(), UNIX_GC_TIMEOUT, between=kick_unix_gc)
    finally:
        canary.close()
    return untouched, walked


#: Canaries made and asked at once, of which one must be untouched.
CANARIES = 10


def test_the_canary_is_untouched_until_the_collector_walks():
    # In a child: the canaries are garbage of this process until a walk reclaims them.
    assert call_in_child(_canary_sees_a_walk) == (True, True)


def _sends_as_a_fresh_user() -> tuple[int, int, bool]:
    fresh = become_a_fresh_user()
    a, b = socket.socketpair()
    with a, b:
        send_fds(a, b"x", [a.fileno()])  # an AF_UNIX fd in flight, charged to this user
    return os.getuid(), os.getgid(), fresh


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can take another uid")
def test_a_fresh_user_is_a_uid_of_its_own():
    uid, gid, fresh = call_in_child(_sends_as_a_fresh_user)
    assert fresh
    assert uid == gid != 0
    assert uid != call_in_child(_sends_as_a_fresh_user)[0], "two children got one uid"
