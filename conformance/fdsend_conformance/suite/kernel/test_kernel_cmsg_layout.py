"""KERNEL: the order and size of the control messages beside SCM_RIGHTS.

A receiver that asks for credentials, a pidfd, SO_INQ and timestamps gets
them in one control buffer with the fds; the room it must leave depends on
where the kernel writes each message and how much each takes.
"""

from __future__ import annotations

import platform
import socket
import struct
import time

import pytest

from fdsend_conformance.harness.cmsg import CREDENTIALS_SIZE, INT_SIZE, Message, send_fds, take
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.receive_options import accepts, option
from fdsend_conformance.harness.sockets import UNIX_TYPES, unix_pair

pytestmark = pytest.mark.kernel


def _kind(name: str) -> tuple[int, int]:
    """(level, type) of the control message the receive option ``name`` brings."""
    brings = option(name).brings
    assert brings is not None, f"{name} brings nothing"
    return socket.SOL_SOCKET, brings


CREDENTIALS = _kind("SO_PASSCRED")
SECURITY = _kind("SO_PASSSEC")
RIGHTS = (socket.SOL_SOCKET, socket.SCM_RIGHTS)
PIDFD = _kind("SO_PASSPIDFD")
INQ = _kind("SO_INQ")

#: Each timestamp option and the payload of the message it brings: _OLD the
#: native timeval/timespec (long fields), _NEW 64-bit fields.
TIMESTAMPS = {
    "SO_TIMESTAMP_OLD": struct.calcsize("ll"),
    "SO_TIMESTAMP_NEW": struct.calcsize("qq"),
    "SO_TIMESTAMPNS_OLD": struct.calcsize("ll"),
    "SO_TIMESTAMPNS_NEW": struct.calcsize("qq"),
}

#: Where each message comes, first to last (measured on Linux 6.18).
ORDER = [*(_kind(name) for name in TIMESTAMPS), CREDENTIALS, SECURITY, RIGHTS, PIDFD, INQ]

#: The payload bytes of what each of these receive options brings.
OPTIONS = {"SO_PASSCRED": CREDENTIALS_SIZE, "SO_PASSPIDFD": INT_SIZE, "SO_INQ": INT_SIZE}

#: The socket types whose receives carry timestamps (not SOCK_STREAM).
DATAGRAM_TYPES = {"seqpacket": socket.SOCK_SEQPACKET, "dgram": socket.SOCK_DGRAM}

SENT = 3
ROOM = 4096


def _enable(sock: socket.socket, name: str) -> bool:
    """Switch the receive option ``name`` on; False where this kernel or type lacks it."""
    return accepts(sock, option(name))


def _receiver_with_everything(
    closer, kind: int
) -> tuple[socket.socket, socket.socket, list[tuple[int, int]]]:
    """A pair whose receiver asks for every message it can get; and those messages."""
    a, b = unix_pair(closer.objects, kind)
    wanted = [_kind(name) for name in OPTIONS if _enable(b, name)]
    assert CREDENTIALS in wanted
    if kind != socket.SOCK_STREAM:
        assert _enable(b, "SO_TIMESTAMP_OLD")
        wanted.append(_kind("SO_TIMESTAMP_OLD"))
    _enable(b, "SO_PASSSEC")  # SCM_SECURITY comes only where an LSM labels sockets
    return a, b, [*wanted, RIGHTS]


def _send_and_receive(closer, a, b, ancbufsize: int, sent: list[int]) -> Message:
    send_fds(a, b"layout", sent)
    return take(closer, b, 16, ancbufsize)


@pytest.mark.clause("KERNEL-27")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_control_messages_come_in_a_fixed_order(closer, kind):
    a, b, wanted = _receiver_with_everything(closer, UNIX_TYPES[kind])
    sent = closer.distinct_fds(SENT)
    msg = _send_and_receive(closer, a, b, ROOM, sent)
    assert not msg.ctrunc
    if SECURITY in msg.kinds:
        wanted.append(SECURITY)
    assert msg.kinds == [k for k in ORDER if k in wanted]
    assert identities(msg.fds) == identities(sent)


@pytest.mark.clause("KERNEL-27")
def test_a_security_label_comes_between_credentials_and_rights(closer):
    a, b, _ = _receiver_with_everything(closer, socket.SOCK_STREAM)
    sent = closer.distinct_fds(1)
    msg = _send_and_receive(closer, a, b, ROOM, sent)
    if SECURITY not in msg.kinds:
        pytest.skip("no SCM_SECURITY came: no LSM labels AF_UNIX sockets here")
    kinds = msg.kinds
    assert kinds.index(CREDENTIALS) + 1 == kinds.index(SECURITY) == kinds.index(RIGHTS) - 1


@pytest.mark.clause("KERNEL-28")
@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_each_message_takes_cmsg_space_of_its_payload(closer, count):
    a, b, _ = _receiver_with_everything(closer, socket.SOCK_STREAM)
    sent = closer.distinct_fds(count)
    msg = _send_and_receive(closer, a, b, ROOM, sent)
    sizes = {(level, kind): len(payload) for level, kind, payload in msg.ancdata}
    expected = {_kind(name): size for name, size in OPTIONS.items() if _kind(name) in msg.kinds}
    expected[RIGHTS] = count * INT_SIZE
    assert {k: v for k, v in sizes.items() if k != SECURITY} == expected
    if platform.machine() == "x86_64":  # the figures KERNEL-28 gives
        spaces = dict(zip(msg.kinds, msg.spaces))
        assert spaces[CREDENTIALS] == 32
        assert spaces[RIGHTS] == (24 if count <= 2 else 32)
        assert all(spaces[k] == 24 for k in (PIDFD, INQ) if k in spaces)


@pytest.mark.clause("KERNEL-28")
@pytest.mark.parametrize("kind", DATAGRAM_TYPES)
@pytest.mark.parametrize("name", TIMESTAMPS)
def test_a_timestamp_takes_the_size_of_its_struct(closer, name, kind):
    a, b = unix_pair(closer.objects, DATAGRAM_TYPES[kind])
    if not _enable(b, name):
        pytest.skip(f"{name} is unknown to this kernel")
    sent = closer.distinct_fds(1)
    earliest = time.time()
    msg = _send_and_receive(closer, a, b, ROOM, sent)
    latest = time.time()
    [stamp] = msg.items(*_kind(name))
    assert len(stamp) == TIMESTAMPS[name]
    assert msg.kinds == [_kind(name), RIGHTS]
    seconds, fraction = struct.unpack("ll" if name.endswith("OLD") else "qq", stamp)
    scale = 1e-9 if "NS" in name else 1e-6
    assert earliest - 1e-6 <= seconds + fraction * scale <= latest, "not a realtime stamp"


@pytest.mark.clause("KERNEL-28")
@pytest.mark.parametrize("kind", UNIX_TYPES)
def test_the_last_message_needs_only_cmsg_len(closer, kind):
    """The least room that loses nothing: CMSG_SPACE of all but the last
    message, plus CMSG_LEN of the last; one byte less cuts or drops the last."""
    a, b, _ = _receiver_with_everything(closer, UNIX_TYPES[kind])
    sent = closer.distinct_fds(2)
    full = _send_and_receive(closer, a, b, ROOM, sent)
    if PIDFD not in full.kinds:
        pytest.skip("needs SO_PASSPIDFD (Linux >= 6.5); without it the fds come last (KERNEL-4)")
    least = sum(full.spaces[:-1]) + socket.CMSG_LEN(len(full.ancdata[-1][2]))
    if platform.machine() == "x86_64" and len(full.kinds) == 4:  # KERNEL-28's figures
        assert least == (100 if kind == "stream" else 108)
    exact = _send_and_receive(closer, a, b, least, sent)
    assert not exact.ctrunc
    assert exact.kinds == full.kinds
    short = _send_and_receive(closer, a, b, least - 1, sent)
    assert short.ctrunc
    assert short.kinds[: len(full.kinds) - 1] == full.kinds[:-1], "an earlier message was hit"
    last_level, last_kind, last_payload = full.ancdata[-1]
    if len(short.kinds) == len(full.kinds):  # the last one is cut, not dropped
        assert short.kinds[-1] == (last_level, last_kind)
        assert len(short.ancdata[-1][2]) == len(last_payload) - 1
        assert (last_level, last_kind) not in (RIGHTS, PIDFD), "a cut fd message"
    else:
        assert len(short.kinds) == len(full.kinds) - 1


def _assert_only_rights(closer, kind: int, name: str) -> None:
    """With the receive option ``name`` on (skipped where unknown), fds come alone."""
    a, b = unix_pair(closer.objects, kind)
    if not _enable(b, name):
        pytest.skip(f"{name} is unknown to this kernel")
    sent = closer.distinct_fds(1)
    msg = _send_and_receive(closer, a, b, ROOM, sent)
    assert msg.kinds == [RIGHTS], f"{name} brought a control message"


@pytest.mark.clause("KERNEL-29")
@pytest.mark.parametrize("name", TIMESTAMPS)
def test_stream_receives_carry_no_timestamps(closer, name):
    _assert_only_rights(closer, socket.SOCK_STREAM, name)


@pytest.mark.clause("KERNEL-29")
@pytest.mark.parametrize("kind", UNIX_TYPES)
@pytest.mark.parametrize("name", ["SO_TIMESTAMPING_OLD", "SO_TIMESTAMPING_NEW"])
def test_so_timestamping_alone_brings_nothing(closer, name, kind):
    _assert_only_rights(closer, UNIX_TYPES[kind], name)


@pytest.mark.clause("KERNEL-29")
@pytest.mark.parametrize("kind", DATAGRAM_TYPES)
@pytest.mark.parametrize("new", [False, True], ids=["OLD", "NEW"])
def test_so_timestamping_beside_a_timestamp_follows_it(closer, kind, new):
    layout = "NEW" if new else "OLD"
    ns, stamping = f"SO_TIMESTAMPNS_{layout}", f"SO_TIMESTAMPING_{layout}"
    a, b = unix_pair(closer.objects, DATAGRAM_TYPES[kind])
    if not (_enable(b, ns) and _enable(b, stamping)):
        pytest.skip("this kernel lacks the _NEW timestamp options")
    sent = closer.distinct_fds(1)
    msg = _send_and_receive(closer, a, b, ROOM, sent)
    assert msg.kinds == [_kind(ns), _kind(stamping), RIGHTS]
    [three] = msg.items(*_kind(stamping))
    assert len(three) == 3 * struct.calcsize("qq" if new else "ll")
    assert any(three[: len(three) // 3]), "no software timestamp in the first slot"


@pytest.mark.clause("KERNEL-29")
@pytest.mark.parametrize("kind", DATAGRAM_TYPES)
def test_the_last_timestamp_option_picks_old_or_new_for_all(closer, kind):
    a, b = unix_pair(closer.objects, DATAGRAM_TYPES[kind])
    if not _enable(b, "SO_TIMESTAMPNS_NEW"):
        pytest.skip("SO_TIMESTAMPNS_NEW is unknown to this kernel")
    assert _enable(b, "SO_TIMESTAMPING_OLD")
    sent = closer.distinct_fds(1)
    msg = _send_and_receive(closer, a, b, ROOM, sent)
    stamp_kinds = [kind for kind in msg.kinds if kind != RIGHTS]
    assert stamp_kinds == [_kind("SO_TIMESTAMPNS_OLD"), _kind("SO_TIMESTAMPING_OLD")]
