"""The fdsend API itself: call shapes, refusals, odd control messages."""

from __future__ import annotations

import array
import ctypes
import errno
import itertools
import os
import pickle
import socket
import struct
from collections.abc import Iterator

import pytest

import fdsend
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.fds import distinct_fds, identities, identity
from fdsend_conformance.harness.sockets import pending, tcp_pair


def test_compat_keywords(pair, pipe):
    a, b = pair
    assert fdsend.sendfds(fd=a, msg=b"kw", flags=0, fds=[pipe[0]]) == 2
    msg, fds = fdsend.recvfds(fd=b, len=16, flags=0, numfds=4)
    assert msg == b"kw"
    assert identity(fds[0]) == identity(pipe[0])
    os.close(fds[0])


def test_str_message_is_utf8(pair):
    a, b = pair
    assert fdsend.sendfds(a, "héllo") == len("héllo".encode())
    assert fdsend.recvfds(b, 16).msg == "héllo".encode()


@pytest.mark.parametrize("wrap", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_bytes_like_messages(pair, wrap):
    a, b = pair
    fdsend.sendfds(a, wrap(b"\x00bytes\x00"))
    assert fdsend.recvfds(b, 16).msg == b"\x00bytes\x00"


def test_socketpair_returns_plain_fds_the_caller_owns(closer):
    a, b = fdsend.socketpair()
    closer.fds(a, b)
    assert isinstance(a, int)
    assert isinstance(b, int)
    fdsend.sendfds(a, b"pair")
    assert fdsend.recvfds(b, 16).msg == b"pair"


def test_int_socket_is_neither_closed_nor_changed(pair, pipe):
    a, b = pair
    fdsend.sendfds(a.fileno(), b"i", fds=[pipe[0]])
    _, fds = fdsend.recvfds(b.fileno(), 16)
    os.close(fds[0])
    os.fstat(a.fileno())
    os.fstat(b.fileno())
    assert a.gettimeout() is None


def test_empty_payload_with_fds_on_a_stream_is_refused(pair, pipe):
    a, b = pair
    with pytest.raises(ValueError, match="payload byte"):
        fdsend.sendfds(a, b"", fds=[pipe[0]])
    assert not pending(b)


class _Empty(ctypes.Structure):
    _fields_ = []


@pytest.mark.parametrize(
    "make",
    [bytearray, lambda: memoryview(b""), lambda: pickle.PickleBuffer(b""), _Empty],
    ids=["bytearray", "memoryview", "PickleBuffer", "ctypes-struct"],
)
def test_empty_buffer_of_any_type_with_fds_on_a_stream_is_refused(pair, pipe, make):
    # PickleBuffer and a ctypes struct are true whatever their size.
    a, b = pair
    with pytest.raises(ValueError, match="payload byte"):
        fdsend.sendfds(a, make(), fds=[pipe[0]])
    assert not pending(b)


def test_empty_payload_without_fds_is_allowed(pair):
    a, _ = pair
    assert fdsend.sendfds(a, b"") == 0


@pytest.mark.parametrize("kind", [socket.SOCK_SEQPACKET, socket.SOCK_DGRAM])
def test_empty_payload_with_fds_is_fine_on_message_sockets(kind, pipe):
    a, b = socket.socketpair(socket.AF_UNIX, kind)
    with a, b:
        b.settimeout(5)
        assert fdsend.sendfds(a, b"", fds=[pipe[0]]) == 0
        msg, fds = fdsend.recvfds(b, 16)
        assert msg == b""
        assert identity(fds[0]) == identity(pipe[0])
        os.close(fds[0])


def test_fds_on_tcp_are_refused(pipe):
    client, server = tcp_pair()
    with client, server:
        with pytest.raises(ValueError, match="AF_UNIX"):
            fdsend.sendfds(client, b"x", fds=[pipe[0]])
        with pytest.raises(ValueError, match="AF_UNIX"):
            fdsend.sendfds(client.fileno(), b"x", fds=[pipe[0]])
        assert not pending(server)


def test_fds_on_udp_are_refused(pipe):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("127.0.0.1", 9))
        with pytest.raises(ValueError, match="AF_UNIX"):
            fdsend.sendfds(udp, b"x", fds=[pipe[0]])


def test_more_than_scm_max_fd_is_einval_before_any_syscall(pipe):
    closed = distinct_fds(1)[0]
    os.close(closed)
    # The socket is a closed fd: EINVAL (not EBADF) proves nothing reached the kernel.
    with pytest.raises(OSError) as raised:
        fdsend.sendfds(closed, b"x", fds=[pipe[0]] * (fdsend.SCM_MAX_FD + 1))
    assert raised.value.errno == errno.EINVAL


def _endless(fd: int) -> Iterator[int]:
    """``fd`` for ever; fails (rather than fill the memory) long past the limit."""
    for count in itertools.count():
        assert count <= 10 * fdsend.SCM_MAX_FD, "sendfds kept reading an endless iterable"
        yield fd


def test_endless_generator_of_fds_is_einval(pair, pipe):
    a, b = pair
    with pytest.raises(OSError) as raised:
        fdsend.sendfds(a, b"x", fds=_endless(pipe[0]))
    assert raised.value.errno == errno.EINVAL
    assert not pending(b)


class _Index:
    """An int-like that is not an int (as numpy integers are)."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __index__(self) -> int:
        return self.value


@pytest.mark.parametrize("mixed", [False, True], ids=["alone", "beside-a-file"])
def test_index_objects_count_as_ints(pair, pipe, tmp_path, mixed):
    a, b = pair
    with open(tmp_path / "f", "wb") as file:
        sent = [_Index(pipe[0]), file] if mixed else [_Index(pipe[0])]
        fdsend.sendfds(a, b"i", fds=sent)
        fds = fdsend.recvfds(b, 16).fds
        assert len(fds) == len(sent)
        assert identity(fds[0]) == identity(pipe[0])
        for fd in fds:
            os.close(fd)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (-1, ValueError),
        (2**31, OverflowError),
        (2**32, OverflowError),
        (None, TypeError),
        ("3", TypeError),
        (3.0, TypeError),
    ],
)
def test_bad_fds_raise_before_sending(pair, pipe, bad, error):
    a, b = pair
    with pytest.raises(error):
        fdsend.sendfds(a, b"x", fds=[pipe[0], bad])
    assert not pending(b)


@pytest.mark.parametrize(
    ("bad", "error"),
    [(-1, ValueError), (2**31, OverflowError), (2**40, OverflowError), (None, TypeError)],
)
def test_bad_socket_argument(bad, error):
    with pytest.raises(error):
        fdsend.sendfds(bad, b"x")
    with pytest.raises(error):
        fdsend.recvfds(bad, 16)


@pytest.mark.parametrize(("length", "numfds"), [(-1, 4), (16, -1)])
def test_negative_sizes_are_valueerror(pair, length, numfds):
    _, b = pair
    with pytest.raises(ValueError):
        fdsend.recvfds(b, length, numfds=numfds)


def test_non_int_numfds_is_typeerror(pair):
    _, b = pair
    with pytest.raises(TypeError, match="numfds must be an int"):
        fdsend.recvfds(b, 16, numfds=2.0)  # type: ignore[arg-type]


@pytest.fixture
def default_timeout() -> Iterator[None]:
    """``socket.setdefaulttimeout(5)`` for the test, then back as it was."""
    saved = socket.getdefaulttimeout()
    socket.setdefaulttimeout(5)
    try:
        yield
    finally:
        socket.setdefaulttimeout(saved)


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "non-blocking"])
@pytest.mark.usefixtures("default_timeout")
def test_int_socket_keeps_its_mode_under_a_default_timeout(pair, pipe, blocking):
    # A socket object built on the caller's fd would make it non-blocking.
    a, b = pair
    a.setblocking(blocking)
    b.setblocking(blocking)
    fdsend.sendfds(a.fileno(), b"m", fds=[pipe[0]])
    fds = fdsend.recvfds(b.fileno(), 16).fds
    for fd in fds:
        os.close(fd)
    assert len(fds) == 1
    assert os.get_blocking(a.fileno()) is blocking
    assert os.get_blocking(b.fileno()) is blocking
    if not blocking:  # and the call used the fd's own mode
        with pytest.raises(BlockingIOError):
            fdsend.recvfds(b.fileno(), 16)


def test_credentials_do_not_crowd_out_fds(pair, closer):
    a, b = pair
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sent = closer.distinct_fds(4)
    fdsend.sendfds(a, b"c", fds=sent)
    result = fdsend.recvfds(b, 16, numfds=4)
    assert not result.truncated
    assert identities(result.fds) == identities(sent)
    closer.fds(*result.fds)


def test_two_scm_rights_headers_arrive_in_order(pair, closer):
    a, b = pair
    first, second = closer.distinct_fds(2), closer.distinct_fds(3)
    rights = (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    a.sendmsg([b"2"], [(*rights, array.array("i", first)), (*rights, array.array("i", second))])
    result = fdsend.recvfds(b, 16, numfds=8)
    closer.fds(*result.fds)
    assert identities(result.fds) == identities(first + second)


def test_parser_keeps_only_whole_ints_of_every_rights_message():
    rights = (socket.SOL_SOCKET, socket.SCM_RIGHTS)
    creds = (socket.SOL_SOCKET, socket.SCM_CREDENTIALS, struct.pack("3i", 1, 2, 3))
    ancillary = [
        creds,
        (*rights, struct.pack("2i", 7, 8)),
        (*rights, struct.pack("i", 9) + b"\x01"),
    ]
    assert fdsend._parse_control(ancillary) == ((7, 8, 9), None, fdsend.Credentials(1, 2, 3))


def test_peek_returns_fresh_fds(pair, pipe):
    a, b = pair
    fdsend.sendfds(a, b"p", fds=[pipe[0]])
    before = fdtable.open_fds()
    peeked = fdsend.recvfds(b, 16, socket.MSG_PEEK)
    received = fdsend.recvfds(b, 16)
    assert peeked.fds != received.fds
    assert identity(peeked.fds[0]) == identity(received.fds[0]) == identity(pipe[0])
    assert sorted(peeked.fds + received.fds) == fdtable.leaked_since(before)
    for fd in peeked.fds + received.fds:
        os.close(fd)


def test_socket_timeout_is_the_sockets_own(pair):
    _, b = pair
    b.settimeout(0.01)
    with pytest.raises(socket.timeout):
        fdsend.recvfds(b, 16)


def test_nonblocking_empty_receive(pair):
    _, b = pair
    with pytest.raises(BlockingIOError):
        fdsend.recvfds(b, 16, socket.MSG_DONTWAIT)
