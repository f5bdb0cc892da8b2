"""Every timeout the suite sets, in seconds, by what it bounds.

One home, so that a maintainer sees how they nest: a blocking call on a
suite socket (:data:`IO_TIMEOUT`) fails well before its test is failed as
hung (:data:`TEST_TIMEOUT`), which happens before an isolated test's child is
killed (:data:`TEST_TIMEOUT` + :data:`ISOLATION_GRACE`). A timeout only
bounds a wait: a test never passes because one ran out. The tools' own
(bench, soak, matrix) live beside the code they bound.
"""

from __future__ import annotations

__all__ = [
    "CHILD_TIMEOUT",
    "DRIVER_BUILD_TIMEOUT",
    "DRIVER_REPLY_TIMEOUT",
    "DRIVER_START_TIMEOUT",
    "DRIVER_STOP_TIMEOUT",
    "IO_TIMEOUT",
    "ISOLATION_GRACE",
    "LOAD_TEST_TIMEOUT",
    "PROPERTY_TEST_TIMEOUT",
    "SPAWNED_TEST_TIMEOUT",
    "SPAWN_TIMEOUT",
    "SUBPROCESS_TIMEOUT",
    "TEST_TIMEOUT",
    "UNIX_GC_CYCLES_TIMEOUT",
    "UNIX_GC_TIMEOUT",
]

#: One blocking send or receive on a socket the suite made (the kernel's
#: SO_RCVTIMEO/SO_SNDTIMEO), and the harness's own short waits: a forked
#: child's exit, a watcher thread's look for a blocked call.
IO_TIMEOUT = 5.0

#: A driver's reply to one request (docs/drivers.md): longer than a call
#: blocked on a suite socket may take (:data:`IO_TIMEOUT`), shorter than its
#: test. A driver past it is killed and fails the test as hung.
DRIVER_REPLY_TIMEOUT = 2 * IO_TIMEOUT

#: A driver's start: the process starting and its reply to ``start``.
DRIVER_START_TIMEOUT = 10.0

#: Building a driver of the repository (its build.sh: go build, cargo build).
DRIVER_BUILD_TIMEOUT = 600.0

#: A driver's reply to ``stop``, and its exit after a closed pipe, before it is killed.
DRIVER_STOP_TIMEOUT = 2.0

#: A forked child of ``call_in_child`` (a KERNEL check), before it is killed.
CHILD_TIMEOUT = 15.0

#: One conformance test, setup to teardown, before pytest-timeout fails it
#: as hung (the default of ``--test-timeout``).
TEST_TIMEOUT = 20.0

#: How long an isolated test's child may outlive its test timeout (the
#: timeout firing, the failure written up) before the parent kills it.
ISOLATION_GRACE = 10.0

#: A short-lived child started with subprocess for one check (OWN-2's probe).
SUBPROCESS_TIMEOUT = 30.0

#: The kernel's AF_UNIX garbage collector, kicked, to release an
#: unreachable cycle (KERNEL-9).
UNIX_GC_TIMEOUT = 5.0

#: The same for each of the many cycle shapes of the GC-cycles checks
#: (measured on Linux 6.18: 10 ms; a shape it leaks costs the whole wait).
UNIX_GC_CYCLES_TIMEOUT = 1.0

#: A test that starts a fresh interpreter ('spawn'): the whole test, and one
#: wait for the spawned child (to connect, to exit).
SPAWNED_TEST_TIMEOUT = 60.0
SPAWN_TIMEOUT = 30.0

#: A property test (PROP-1): hypothesis runs its examples in one test, each
#: up to 253 fds; through a driver each call is several round trips
#: (measured on a loaded 2-CPU machine: 10 s to over 20 s per socket type).
PROPERTY_TEST_TIMEOUT = 60.0

#: The LOAD soak test, which passes many fds between two processes.
LOAD_TEST_TIMEOUT = 900.0
