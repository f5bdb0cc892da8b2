"""The reference under receive-side socket options: every fd returned, truncation exact."""

from __future__ import annotations

import errno
import os
import socket

import pytest

import fdsend
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.cmsg import SO_INQ, SO_PASSPIDFD, SO_PASSRIGHTS, SO_TIMESTAMP_OLD
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.receive_options import COMBINATIONS, option, refusal
from fdsend_conformance.harness.sockets import socket_pair

TYPES = [socket.SOCK_STREAM, socket.SOCK_SEQPACKET, socket.SOCK_DGRAM]


@pytest.fixture
def sent(closer):
    return closer.distinct_fds(3)


def _pair(kind: int, *options: int) -> tuple[socket.socket, socket.socket]:
    a, b = socket_pair(kind)
    for number in options:
        b.setsockopt(socket.SOL_SOCKET, number, 1)
    return a, b


def _close(result: fdsend.Received) -> None:
    for fd in result.fds:
        os.close(fd)
    if result.pidfd is not None:
        os.close(result.pidfd)


def _pidfd_of(pidfd: int) -> int:
    with open(f"/proc/self/fdinfo/{pidfd}", encoding="ascii") as info:
        return next(int(line.split()[1]) for line in info if line.startswith("Pid:"))


def test_passpidfd_leaks_no_pidfd_and_hands_it_over(sent):
    a, b = _pair(socket.SOCK_STREAM, SO_PASSPIDFD)
    with a, b:
        before = fdtable.open_fds()
        for _ in range(10):
            fdsend.sendfds(a, b"x", fds=sent)
            result = fdsend.recvfds(b, 16, numfds=3)
            assert result.pidfd is not None
            assert _pidfd_of(result.pidfd) == os.getpid()
            assert not os.get_inheritable(result.pidfd)
            _close(result)
        assert fdtable.open_fds() == before


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        (socket.SOCK_STREAM, (socket.SO_PASSCRED, SO_PASSPIDFD)),
        (socket.SOCK_STREAM, (socket.SO_PASSCRED, SO_INQ)),
        (socket.SOCK_SEQPACKET, (socket.SO_PASSCRED, SO_PASSPIDFD)),
    ],
)
def test_credentials_beside_another_option_is_no_truncation(sent, kind, options):
    a, b = _pair(kind, *options)
    with a, b:
        fdsend.sendfds(a, b"x", fds=sent)
        result = fdsend.recvfds(b, 16, numfds=3, strict=True)
        assert identities(result.fds) == identities(sent)
        assert not result.truncated
        assert result.credentials == (os.getpid(), os.getuid(), os.getgid())
        _close(result)


@pytest.mark.parametrize("kind", [socket.SOCK_SEQPACKET, socket.SOCK_DGRAM])
def test_credentials_and_a_timestamp_lose_no_fds_on_datagrams(sent, kind):
    a, b = _pair(kind, socket.SO_PASSCRED, SO_TIMESTAMP_OLD)
    with a, b:
        fdsend.sendfds(a, b"x", fds=sent)
        result = fdsend.recvfds(b, 16, numfds=3)
        assert len(result.fds) == 3
        assert not result.truncated
        _close(result)


@pytest.mark.parametrize("kind", TYPES)
def test_everything_on_with_scm_max_fd_fds(kind, closer):
    sent = closer.distinct_fds(fdsend.SCM_MAX_FD)
    a, b = socket_pair(kind)
    closer.objects(a, b)
    for name in COMBINATIONS["everything"]:
        refusal(b, option(name))
    fdsend.sendfds(a, b"x", fds=sent)
    result = fdsend.recvfds(b, 16, numfds=fdsend.SCM_MAX_FD, strict=True)
    assert len(result.fds) == fdsend.SCM_MAX_FD
    assert not result.truncated
    assert result.pidfd is not None
    assert result.credentials is not None
    _close(result)


def test_strict_truncation_closes_the_pidfd_too(sent):
    a, b = _pair(socket.SOCK_STREAM, SO_PASSPIDFD, socket.SO_PASSCRED)
    with a, b:
        fdsend.sendfds(a, b"x", fds=sent)
        before = fdtable.open_fds()
        with pytest.raises(fdsend.TruncatedError):
            fdsend.recvfds(b, 16, numfds=1, strict=True)
        assert fdtable.open_fds() == before


def test_non_strict_truncation_keeps_the_pidfd_and_cuts_to_numfds(sent):
    a, b = _pair(socket.SOCK_STREAM, SO_PASSPIDFD)
    with a, b:
        fdsend.sendfds(a, b"x", fds=sent)
        before = fdtable.open_fds()
        result = fdsend.recvfds(b, 16, numfds=1)
        assert result.truncated
        assert len(result.fds) == 1
        assert result.pidfd is not None
        assert fdtable.open_fds() - before == {result.fds[0], result.pidfd}
        _close(result)


def test_cloexec_false_makes_the_pidfd_inheritable_too(sent):
    a, b = _pair(socket.SOCK_DGRAM, SO_PASSPIDFD)
    with a, b:
        fdsend.sendfds(a, b"x", fds=sent[:1])
        result = fdsend.recvfds(b, 16, numfds=1, cloexec=False)
        assert os.get_inheritable(result.fds[0])
        assert result.pidfd is not None
        assert os.get_inheritable(result.pidfd)
        _close(result)


def test_a_refused_pidfd_is_no_fd():
    # A negative SCM_PIDFD is the errno of a pidfd the kernel could not make.
    ancillary = [
        (socket.SOL_SOCKET, fdsend.SCM_PIDFD, (-errno.ESRCH).to_bytes(4, "little", signed=True))
    ]
    assert fdsend._parse_control(ancillary) == ((), None, None)


def test_passrights_off_refuses_the_send_with_eperm(sent):
    a, b = socket_pair(socket.SOCK_SEQPACKET)
    with a, b:
        try:
            b.setsockopt(socket.SOL_SOCKET, SO_PASSRIGHTS, 0)
        except OSError:
            pytest.skip("this kernel lacks SO_PASSRIGHTS (Linux 6.16)")
        with pytest.raises(PermissionError) as raised:
            fdsend.sendfds(a, b"x", fds=sent)
        assert raised.value.errno == errno.EPERM
        with pytest.raises(BlockingIOError):
            fdsend.recvfds(b, 16, socket.MSG_DONTWAIT)


def test_a_hand_built_received_claims_nothing():
    result = fdsend.Received((b"x", ()))
    assert (result.flags, result.pidfd, result.credentials) == (0, None, None)
    assert tuple(result) == (b"x", ())


def test_the_headroom_holds_what_the_kernel_wrote_with_everything_on():
    """The largest set measured here fits, with the security label's room to spare."""
    measured = []
    for kind in TYPES:
        a, b = socket_pair(kind)
        with a, b:
            for name in COMBINATIONS["everything"]:
                refusal(b, option(name))
            r, w = os.pipe()
            a.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, r.to_bytes(4, "little"))])
            os.close(r)
            os.close(w)
            _, ancillary, flags, _ = b.recvmsg(16, 65536, socket.MSG_CMSG_CLOEXEC)
            result = fdsend._parse_control(ancillary)
            for fd in (*result[0], *([result[1]] if result[1] is not None else [])):
                os.close(fd)
            assert not flags & socket.MSG_CTRUNC
            measured.append(
                sum(socket.CMSG_SPACE(len(data)) for _, kind_, data in ancillary if kind_ != 1)
            )
    room = fdsend.CONTROL_HEADROOM - socket.CMSG_SPACE(fdsend.SECURITY_LABEL_ROOM)
    assert max(measured) <= room, f"other control messages took {max(measured)} > {room} bytes"
