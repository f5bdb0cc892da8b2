"""PyPI packages that pass fds but have no column in the matrix.

:data:`NOT_INSTALLABLE`: packages no adapter could be written for, because
they do not install or import on Python 3. :data:`CONSIDERED`: maintained
packages that pass fds only inside a protocol of their own.
:data:`NOT_ON_LINUX`: fd-passing systems that Linux does not have. All three
are listed below the matrix's table. (Registered backends whose package is missing are
listed there too, as unavailable: see :mod:`fdsend_upkeep.matrix.cli`.)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CONSIDERED", "NOT_INSTALLABLE", "NOT_ON_LINUX", "Unusable"]


@dataclass(frozen=True)
class Unusable:
    """A PyPI package that passes fds but that no adapter could be written for."""

    package: str
    version: str
    outcome: str
    error: str


#: Measured on CPython 3.11.7 (pip 24, Linux 6.18) when this module was written.
NOT_INSTALLABLE: tuple[Unusable, ...] = (
    Unusable(
        "passfd",
        "1.0.2",
        "not installable on Python 3: its setup.py is Python 2 code",
        "pip install passfd==1.0.2: SyntaxError: multiple exception types must be "
        "parenthesized (except OSError, exc:)",
    ),
    Unusable(
        "python-passfd",
        "0.2",
        "installs, but its C extension uses the Python 2 C API and cannot be imported",
        "import passfd: ImportError: _passfd.cpython-311-x86_64-linux-gnu.so: "
        "undefined symbol: Py_InitModule",
    ),
    Unusable(
        "sendmsg",
        "1.0.1",
        "not installable on Python 3: its setup.py is Python 2 code",
        "pip install sendmsg: SyntaxError: Missing parentheses in call to 'print'",
    ),
    Unusable(
        "sidewinder",
        "0.1.0",
        "not installable as published: setup.py imports Cython without declaring it "
        "(unmaintained since 2011; one fd per call, no payload)",
        "pip install sidewinder: ModuleNotFoundError: No module named 'Cython'",
    ),
)

#: Maintained packages that pass fds only inside a protocol of their own, with
#: no call that sends fds on a caller's socket: nothing for an adapter to map.
CONSIDERED: tuple[tuple[str, str, str], ...] = (
    (
        "asyncvarlink",
        "0.3.3",
        "passes fds only inside varlink messages on its own connections",
    ),
    (
        "dbus-fast",
        "5.2.0",
        "passes fds only inside D-Bus messages (Message.unix_fds) on its bus connections",
    ),
    (
        "jeepney",
        "0.9.0",
        "passes fds only inside D-Bus messages (FileDescriptor, enable_fds=True)",
    ),
    (
        "sdbus",
        "0.14.3",
        "passes fds only as D-Bus 'h' arguments, through libsystemd's sd-bus",
    ),
    (
        "systemd-python",
        "235",
        "systemd.daemon.notify(fds=...) sends fds only to $NOTIFY_SOCKET (sd_pid_notify_with_fds)",
    ),
)

#: Fd-passing systems named beside fdsend that Linux lacks: (name, what, why).
NOT_ON_LINUX: tuple[tuple[str, str, str], ...] = (
    (
        "I_SENDFD",
        "the STREAMS ioctl of System V and Solaris, with I_RECVFD",
        "Linux has no STREAMS, so there is no call to run the contract against",
    ),
)
