"""Who the process is: capabilities, user namespaces, and dropping root.

Checks of per-user kernel accounting (the in-flight fd limit) need a user
with nothing else in flight; these helpers find out whether the process
can become one, and make a forked child one.
"""

from __future__ import annotations

import grp
import os
import pwd
import random

from fdsend_conformance.harness.processes import ChildSkip

__all__ = [
    "CAP_SYS_ADMIN",
    "CAP_SYS_RESOURCE",
    "FRESH_IDS",
    "become_a_fresh_user",
    "has_capability",
    "in_initial_user_namespace",
    "unprivileged_problem",
]

#: Capability bits (linux/capability.h) that lift the in-flight fd limit.
CAP_SYS_ADMIN = 21
CAP_SYS_RESOURCE = 24

# Where to pick a fresh id: above the usual account, container and systemd
# ranges, below the ids a 32-bit signed field cannot hold.
FRESH_IDS = range(1 << 24, (1 << 31) - 1)


def has_capability(bit: int) -> bool:
    """Whether this process has capability ``bit`` in its effective set."""
    # Binary: after a drop to nobody the codec modules may be unreadable.
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    return False


def in_initial_user_namespace() -> bool:
    """Whether this process's user namespace maps every id to itself.

    Only then does root's capability count for checks made against the
    initial namespace, such as the in-flight fd limit.
    """
    try:
        with open("/proc/self/uid_map", encoding="utf-8") as uid_map:
            return uid_map.read().split() == ["0", "0", "4294967295"]
    except OSError:
        return True  # no user namespaces at all


def unprivileged_problem() -> str | None:
    """Why a forked child cannot run without limit-lifting privileges, or None."""
    if os.geteuid() == 0:
        return None
    for bit, name in ((CAP_SYS_RESOURCE, "CAP_SYS_RESOURCE"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")):
        if has_capability(bit):
            return f"not root but holds {name}, which cannot be dropped here"
    return None


def _ids_in_use() -> set[int]:
    """Every uid and gid an account, a group or a running process has."""
    used = {entry.pw_uid for entry in pwd.getpwall()}
    used |= {entry.pw_gid for entry in pwd.getpwall()}
    used |= {entry.gr_gid for entry in grp.getgrall()}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status", "rb") as status:
                for line in status:
                    if line.startswith((b"Uid:", b"Gid:")):
                        used.update(int(field) for field in line.split()[1:])
        except OSError:
            continue  # gone, or not ours to read
    return used


def _fresh_id() -> int:
    """An id no one has: a user of its own, with nothing in flight yet.

    Random, so that two runs at once (other suites, other checkouts) do not
    pick the same one.
    """
    used = _ids_in_use()
    chooser = random.SystemRandom()
    while True:
        candidate = chooser.choice(FRESH_IDS)
        if candidate not in used:
            return candidate


def become_a_fresh_user() -> bool:
    """In a forked child: drop root to a fresh uid/gid; False if not root.

    The in-flight count is per user: under 'nobody' or the caller's own
    uid, fds other processes have in flight would count too.
    """
    if os.geteuid() != 0:
        return False
    fresh = _fresh_id()
    try:
        os.setgroups([])
        os.setgid(fresh)
        os.setuid(fresh)
    except OSError as exc:  # EPERM, or EINVAL for an id a namespace does not map
        raise ChildSkip(f"cannot drop root to the fresh uid/gid {fresh}: {exc}") from exc
    for bit in (CAP_SYS_RESOURCE, CAP_SYS_ADMIN):
        if has_capability(bit):
            raise ChildSkip(f"capability {bit} survived the drop to uid {fresh}")
    return True
