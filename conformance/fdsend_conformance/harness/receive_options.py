"""The SOL_SOCKET options a receiving AF_UNIX socket can switch on, and probing them.

Each option can make the kernel write a control message of its own beside
SCM_RIGHTS (net/unix/af_unix.c, net/core/scm.c): a receiver that sizes its
control buffer for the fds alone then loses them. The numbers are Linux's
(include/uapi/asm-generic/socket.h), from their one home, harness/cmsg.py.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from fdsend_conformance.harness.cmsg import (
    SCM_INQ,
    SCM_PIDFD,
    SCM_SECURITY,
    SCM_TIMESTAMP,
    SCM_TIMESTAMPING,
    SCM_TIMESTAMPNS,
    SO_INQ,
    SO_PASSPIDFD,
    SO_PASSSEC,
    SO_RCVMARK,
    SO_RCVPRIORITY,
    SO_RXQ_OVFL,
    SO_TIMESTAMP_NEW,
    SO_TIMESTAMP_OLD,
    SO_TIMESTAMPING_NEW,
    SO_TIMESTAMPING_OLD,
    SO_TIMESTAMPNS_NEW,
    SO_TIMESTAMPNS_OLD,
    SOF_TIMESTAMPING_RX_SOFTWARE,
    SOF_TIMESTAMPING_SOFTWARE,
)

__all__ = [
    "COMBINATIONS",
    "RECEIVE_OPTIONS",
    "ReceiveOption",
    "accepts",
    "option",
    "refusal",
    "switch_on",
]

# Software receive timestamps, OPT_TSONLY off: what a program asks for.
_TIMESTAMPING_RX = SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE


@dataclass(frozen=True)
class ReceiveOption:
    """One SOL_SOCKET option of the receiver, the value that switches it on, and
    the type of the SOL_SOCKET control message it brings (None: none on AF_UNIX)."""

    name: str
    number: int
    value: int = 1
    brings: int | None = None


#: Every receive-side option that makes (or may make, under a condition) the
#: kernel write a control message into a receive's buffer.
RECEIVE_OPTIONS = (
    ReceiveOption("SO_PASSCRED", socket.SO_PASSCRED, brings=socket.SCM_CREDENTIALS),
    ReceiveOption("SO_PASSPIDFD", SO_PASSPIDFD, brings=SCM_PIDFD),  # an fd
    ReceiveOption("SO_PASSSEC", SO_PASSSEC, brings=SCM_SECURITY),  # with an LSM label
    # The timestamps come on datagrams only (SOCK_DGRAM, SOCK_SEQPACKET).
    ReceiveOption("SO_TIMESTAMP_OLD", SO_TIMESTAMP_OLD, brings=SCM_TIMESTAMP),
    ReceiveOption("SO_TIMESTAMPNS_OLD", SO_TIMESTAMPNS_OLD, brings=SCM_TIMESTAMPNS),
    ReceiveOption("SO_TIMESTAMP_NEW", SO_TIMESTAMP_NEW, brings=SO_TIMESTAMP_NEW),
    ReceiveOption("SO_TIMESTAMPNS_NEW", SO_TIMESTAMPNS_NEW, brings=SO_TIMESTAMPNS_NEW),
    # SO_TIMESTAMPING brings its message only with SO_TIMESTAMP on.
    ReceiveOption(
        "SO_TIMESTAMPING_OLD", SO_TIMESTAMPING_OLD, _TIMESTAMPING_RX, brings=SCM_TIMESTAMPING
    ),
    ReceiveOption(
        "SO_TIMESTAMPING_NEW", SO_TIMESTAMPING_NEW, _TIMESTAMPING_RX, brings=SO_TIMESTAMPING_NEW
    ),
    ReceiveOption("SO_RXQ_OVFL", SO_RXQ_OVFL),  # nothing on AF_UNIX (6.18)
    ReceiveOption("SO_RCVMARK", SO_RCVMARK),  # nothing on AF_UNIX (6.18)
    ReceiveOption("SO_RCVPRIORITY", SO_RCVPRIORITY),  # nothing on AF_UNIX (6.18)
    ReceiveOption("SO_INQ", SO_INQ, brings=SCM_INQ),  # on SOCK_STREAM
)

_BY_NAME = {option.name: option for option in RECEIVE_OPTIONS}

#: Options switched on together, by test id. Each needs every member on the
#: socket type at hand. "everything" takes whatever the kernel accepts there,
#: with one timestamp layout of each kind (the kernel keeps one SOCK_TSTAMP_NEW
#: bit, so the layouts exclude each other) and SO_TIMESTAMP on, without which
#: SO_TIMESTAMPING writes nothing.
COMBINATIONS: dict[str, tuple[str, ...]] = {
    "cred+pidfd": ("SO_PASSCRED", "SO_PASSPIDFD"),
    "cred+inq": ("SO_PASSCRED", "SO_INQ"),
    "cred+timestamp": ("SO_PASSCRED", "SO_TIMESTAMP_OLD"),
    "cred+timestampns_new": ("SO_PASSCRED", "SO_TIMESTAMPNS_NEW"),
    "pidfd+timestamping": ("SO_PASSPIDFD", "SO_TIMESTAMP_NEW", "SO_TIMESTAMPING_NEW"),
    "everything": tuple(
        option.name
        for option in RECEIVE_OPTIONS
        if option.name
        not in {
            "SO_TIMESTAMP_OLD",
            "SO_TIMESTAMPNS_OLD",
            "SO_TIMESTAMPNS_NEW",
            "SO_TIMESTAMPING_OLD",
        }
    ),
}


def option(name: str) -> ReceiveOption:
    """The option called ``name``."""
    return _BY_NAME[name]


def switch_on(sock: socket.socket, option: ReceiveOption) -> None:
    """Set ``option`` on ``sock``; OSError where the kernel or socket type lacks it."""
    sock.setsockopt(socket.SOL_SOCKET, option.number, option.value)


def accepts(sock: socket.socket, option: ReceiveOption) -> bool:
    """Switch ``option`` on; False where the kernel or socket type does not know
    it (ENOPROTOOPT, EOPNOTSUPP). Any other refusal raises."""
    try:
        switch_on(sock, option)
    except OSError as exc:
        if exc.errno in (errno.ENOPROTOOPT, errno.EOPNOTSUPP):
            return False
        raise
    return True


def refusal(sock: socket.socket, option: ReceiveOption) -> str | None:
    """Switch ``option`` on; None if the kernel took it, else why not (for a skip)."""
    try:
        switch_on(sock, option)
    except OSError as exc:
        reason = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        return f"this kernel refuses {option.name} on {sock.type.name} ({reason})"
    return None
