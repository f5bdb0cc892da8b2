"""LOSS: where the kernel drops fds without an error, the backend does not."""

from __future__ import annotations

import errno
import pickle
import socket

import pytest

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness.checks import per_call, unsupported
from fdsend_conformance.harness.fds import identities
from fdsend_conformance.harness.sockets import pending, set_io_timeout, tcp_pair


@pytest.mark.clause("LOSS-1")
@pytest.mark.parametrize("count", [1, 4])
def test_fds_arrive_beside_credentials(backend, pair, closer, count):
    if count > per_call(backend, count):
        unsupported(backend.backend.lacking([Feature.ONE_FD]))
    a, b = pair
    b.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    sent = closer.distinct_fds(count)
    backend.sendfds(a, b"c", 0, sent)
    _, fds = backend.recvfds(b, 16, 0, count)
    closer.fds(*fds)
    assert identities(fds) == identities(sent), (
        "SCM_CREDENTIALS took the control buffer and the fds were dropped"
    )


#: The errnos that say "this cannot be sent" rather than some other failure
#: (EBADF, EPIPE, ...), for backends that refuse with OSError.
REFUSAL_ERRNOS = frozenset({errno.EINVAL, errno.EOPNOTSUPP, errno.EAFNOSUPPORT})


def assert_refused(error: BaseException) -> None:
    """A refusal is ValueError, or OSError with one of :data:`REFUSAL_ERRNOS`."""
    if isinstance(error, OSError):
        assert error.errno in REFUSAL_ERRNOS, (
            f"failed with {errno.errorcode.get(error.errno or 0, error.errno)}, "
            f"not a refusal ({', '.join(sorted(errno.errorcode[e] for e in REFUSAL_ERRNOS))})"
        )
    else:
        assert isinstance(error, ValueError), f"refused with {type(error).__name__}"


@pytest.mark.clause("LOSS-2")
@pytest.mark.requires(Feature.PAYLOAD)
@pytest.mark.parametrize("empty", ["bytes", "picklebuffer"])
def test_empty_payload_with_fds_on_a_stream_is_refused(backend, pair, closer, empty):
    a, b = pair
    sent = closer.distinct_fds(1)
    # A PickleBuffer is true even when empty: the check must be by length
    payload = b"" if empty == "bytes" else pickle.PickleBuffer(b"")
    with pytest.raises((ValueError, OSError)) as raised:
        backend.sendfds(a, payload, 0, sent)
    assert_refused(raised.value)
    assert not pending(b), "something reached the peer"


@pytest.fixture
def udp_pair(closer):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closer.objects(a, b)
    b.bind(("127.0.0.1", 0))
    a.connect(b.getsockname())
    for sock in (a, b):
        set_io_timeout(sock)
    return a, b


@pytest.fixture
def tcp(closer):
    pair = tcp_pair()
    closer.objects(*pair)
    return pair


@pytest.mark.clause("LOSS-3")
@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_fds_on_an_inet_socket_are_refused(backend, request, closer, transport):
    a, b = request.getfixturevalue("tcp" if transport == "tcp" else "udp_pair")
    sent = closer.distinct_fds(1)
    with pytest.raises((ValueError, OSError)) as raised:
        backend.sendfds(a, b"x", 0, sent)
    assert_refused(raised.value)
    assert not pending(b), "the payload went out and the fds were dropped"
