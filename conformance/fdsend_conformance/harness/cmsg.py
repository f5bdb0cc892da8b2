"""Raw ``sendmsg``/``recvmsg`` with control messages, for the KERNEL checks.

The KERNEL clauses pin down what Linux itself does with fds in flight, so
their tests call ``socket.sendmsg``/``recvmsg`` directly through these
helpers, bypassing every backend. This module is the one home of the
SOL_SOCKET option and control-message numbers Python's socket module may
not name yet (include/uapi/asm-generic/socket.h, the numbers x86-64 and
most architectures use).
"""

from __future__ import annotations

import array
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.limits import INT_SIZE, SCM_MAX_FD
from fdsend_conformance.harness.sockets import rights_fds

if TYPE_CHECKING:
    from fdsend_conformance.harness.closer import Closer

__all__ = [
    "CREDENTIALS_SIZE",
    "INT_SIZE",
    "SCM_INQ",
    "SCM_MAX_FD",
    "SCM_PIDFD",
    "SCM_SECURITY",
    "SCM_TIMESTAMP",
    "SCM_TIMESTAMPING",
    "SCM_TIMESTAMPNS",
    "SOF_TIMESTAMPING_RX_SOFTWARE",
    "SOF_TIMESTAMPING_SOFTWARE",
    "SO_INQ",
    "SO_PASSPIDFD",
    "SO_PASSRIGHTS",
    "SO_PASSSEC",
    "SO_PEERPIDFD",
    "SO_RCVMARK",
    "SO_RCVPRIORITY",
    "SO_RXQ_OVFL",
    "SO_TIMESTAMPING_NEW",
    "SO_TIMESTAMPING_OLD",
    "SO_TIMESTAMPNS_NEW",
    "SO_TIMESTAMPNS_OLD",
    "SO_TIMESTAMP_NEW",
    "SO_TIMESTAMP_OLD",
    "Message",
    "fd_space",
    "ints",
    "receive",
    "rights",
    "send_fds",
    "send_write_end",
    "take",
]

#: Linux >= 6.5: a pidfd of the sender (SO_PASSPIDFD) and of the peer.
SO_PASSPIDFD = 76
SO_PEERPIDFD = 77
SCM_PIDFD = 0x04

#: Linux >= 6.16: a receiver that sets it to 0 refuses SCM_RIGHTS.
SO_PASSRIGHTS = 83

#: Linux >= 6.17 on AF_UNIX SOCK_STREAM: the bytes left to read, as SCM_INQ.
SO_INQ = 84
SCM_INQ = SO_INQ

#: Receive options AF_UNIX accepts and, on Linux 6.18, writes nothing for.
SO_RXQ_OVFL = 40
SO_RCVMARK = 75
SO_RCVPRIORITY = 82

#: The security label of the sender (SO_PASSSEC), where an LSM labels sockets.
SO_PASSSEC = 34
SCM_SECURITY = 0x03

#: Receive timestamps. The _OLD options deliver the native ``timeval``/
#: ``timespec`` (64-bit on x86-64) under the _OLD numbers; the _NEW options
#: (Linux >= 5.1) a 64-bit ``__kernel_sock_timeval``/``timespec`` under
#: the _NEW numbers. Each SCM_ number equals its SO_ option's.
SO_TIMESTAMP_OLD = 29
SO_TIMESTAMPNS_OLD = 35
SO_TIMESTAMPING_OLD = 37
SO_TIMESTAMP_NEW = 63
SO_TIMESTAMPNS_NEW = 64
SO_TIMESTAMPING_NEW = 65
SCM_TIMESTAMP = SO_TIMESTAMP_OLD
SCM_TIMESTAMPNS = SO_TIMESTAMPNS_OLD
SCM_TIMESTAMPING = SO_TIMESTAMPING_OLD

#: SO_TIMESTAMPING flags (include/uapi/linux/net_tstamp.h): software receive
#: timestamps, and reporting them.
SOF_TIMESTAMPING_RX_SOFTWARE = 1 << 3
SOF_TIMESTAMPING_SOFTWARE = 1 << 4

#: ``struct ucred``: pid, uid, gid.
_UCRED = struct.Struct("iII")
CREDENTIALS_SIZE = _UCRED.size


def rights(fds: Sequence[int]) -> list[tuple[int, int, bytes]]:
    """The ancillary data of one SCM_RIGHTS message carrying ``fds``."""
    return [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]


def fd_space(count: int) -> int:
    """Control-buffer bytes for exactly one SCM_RIGHTS message of ``count`` fds."""
    return socket.CMSG_SPACE(count * INT_SIZE)


def send_fds(sock: socket.socket, data: bytes, fds: Sequence[int], flags: int = 0) -> int:
    """``sendmsg`` of ``data`` with ``fds`` as SCM_RIGHTS; returns bytes sent."""
    return sock.sendmsg([data], rights(fds), flags)


def send_write_end(closer: Closer, sock: socket.socket, data: bytes, flags: int = 0) -> int:
    """Send ``data`` with a new pipe's write end, then close that end here.

    Returns the pipe's read end (``closer`` owns it): it reads EOF
    (:func:`fdtable.at_eof`) once the write end in flight is released. The
    send must take every byte of ``data``.
    """
    read_end, write_end = os.pipe()
    closer.fds(read_end, write_end)
    assert send_fds(sock, data, [write_end], flags) == len(data)
    closer.close(write_end)
    return read_end


@dataclass
class Message:
    """What one ``recvmsg`` returned, with the fds it installed decoded."""

    data: bytes
    fds: list[int]
    flags: int
    ancdata: list[tuple[int, int, bytes]]

    @property
    def ctrunc(self) -> bool:
        """Whether the kernel set MSG_CTRUNC."""
        return bool(self.flags & socket.MSG_CTRUNC)

    def items(self, level: int, kind: int) -> list[bytes]:
        """The payloads of every control message of ``level``/``kind``."""
        return [payload for lvl, knd, payload in self.ancdata if (lvl, knd) == (level, kind)]

    @property
    def kinds(self) -> list[tuple[int, int]]:
        """(level, type) of each control message, in the order the kernel wrote them."""
        return [(level, kind) for level, kind, _ in self.ancdata]

    @property
    def credentials(self) -> tuple[int, int, int] | None:
        """(pid, uid, gid) of a whole SCM_CREDENTIALS message, if one came."""
        for payload in self.items(socket.SOL_SOCKET, socket.SCM_CREDENTIALS):
            if len(payload) >= CREDENTIALS_SIZE:
                pid, uid, gid = _UCRED.unpack_from(payload)
                return pid, uid, gid
        return None

    @property
    def pidfds(self) -> list[int]:
        """The fds of SCM_PIDFD messages."""
        return [ints(payload)[0] for payload in self.items(socket.SOL_SOCKET, SCM_PIDFD)]

    @property
    def inq(self) -> int | None:
        """The byte count of the SCM_INQ message, if one came."""
        for payload in self.items(socket.SOL_SOCKET, SCM_INQ):
            return ints(payload)[0]
        return None

    @property
    def spaces(self) -> list[int]:
        """CMSG_SPACE of each control message, in order: the buffer room each took."""
        return [socket.CMSG_SPACE(len(payload)) for _, _, payload in self.ancdata]

    @property
    def installed(self) -> list[int]:
        """Every fd this receive installed: SCM_RIGHTS and SCM_PIDFD."""
        return self.fds + self.pidfds


def ints(payload: bytes) -> list[int]:
    """The whole C ``int``s of a control message's payload."""
    whole = array.array("i")
    whole.frombytes(payload[: len(payload) - len(payload) % INT_SIZE])
    return list(whole)


def receive(sock: socket.socket, bufsize: int, ancbufsize: int, flags: int = 0) -> Message:
    """``recvmsg`` with a control buffer of exactly ``ancbufsize`` bytes.

    The caller owns (and must close) every fd in :attr:`Message.installed`.
    """
    data, ancdata, msg_flags, _address = sock.recvmsg(bufsize, ancbufsize, flags)
    return Message(data, rights_fds(ancdata), msg_flags, list(ancdata))


def take(
    closer: Closer,
    sock: socket.socket,
    bufsize: int,
    ancbufsize: int,
    flags: int = 0,
    *,
    whole: bool = False,
) -> Message:
    """:func:`receive`, handing every fd it installed to ``closer``: the tests' one reader.

    Fails if the receive installed an fd it did not report (in SCM_RIGHTS or
    SCM_PIDFD), and with ``whole`` if the kernel set MSG_CTRUNC (a buffer
    meant to hold everything).
    """
    before = fdtable.open_fds()
    msg = receive(sock, bufsize, ancbufsize, flags)
    closer.fds(*msg.installed)
    assert fdtable.open_fds() - before == set(msg.installed), "an fd was installed unreported"
    assert not (whole and msg.ctrunc), "MSG_CTRUNC: the control buffer did not hold everything"
    return msg
