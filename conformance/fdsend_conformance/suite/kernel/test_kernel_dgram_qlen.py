"""KERNEL: net.unix.max_dgram_qlen, the datagrams a receiver may have queued."""

from __future__ import annotations

import errno

import pytest

from fdsend_conformance.harness.kernel_fixes import known_bug
from fdsend_conformance.harness.processes import ChildSkip, call_in_child
from fdsend_conformance.harness.unix_gc import enter_fresh_network_namespace

pytestmark = pytest.mark.kernel

#: Per network namespace; a fresh one starts at the default (10).
MAX_DGRAM_QLEN = "/proc/sys/net/unix/max_dgram_qlen"

NEGATIVE_QLEN_FIX = "net: unix: reject negative max_dgram_qlen values"


def _write_each(values: list[str]) -> list[tuple[str, int | None, str]]:
    """In a fresh network namespace: write each value; (value, errno or None, value after)."""
    enter_fresh_network_namespace()
    outcomes = []
    for value in values:
        try:
            with open(MAX_DGRAM_QLEN, "w", encoding="ascii") as sysctl:
                sysctl.write(value)
            failed = None
        except PermissionError as exc:
            raise ChildSkip(f"{MAX_DGRAM_QLEN} is not writable here: {exc}") from exc
        except OSError as exc:
            failed = exc.errno
        with open(MAX_DGRAM_QLEN, encoding="ascii") as sysctl:
            outcomes.append((value, failed, sysctl.read().strip()))
    return outcomes


@pytest.mark.clause("KERNEL-33")
@known_bug(NEGATIVE_QLEN_FIX)
def test_a_negative_max_dgram_qlen_is_refused():
    outcomes = call_in_child(lambda: _write_each(["7", "-1", "-5", "0"]))
    assert outcomes == [
        ("7", None, "7"),
        ("-1", errno.EINVAL, "7"),
        ("-5", errno.EINVAL, "7"),
        ("0", None, "0"),
    ]
