"""COERCE: what may stand for an fd, and what is refused."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from fdsend_conformance.backend import Feature
from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.checks import SEVERAL_FDS, per_call
from fdsend_conformance.harness.fdlikes import SOCKET_SPELLINGS, Fileno
from fdsend_conformance.harness.fds import identities, identity
from fdsend_conformance.harness.sockets import pending

#: Python argument types: a driver, called through a protocol, has none.
pytestmark = pytest.mark.requires(Feature.PYTHON_API)


@pytest.mark.clause("COERCE-1")
@pytest.mark.parametrize("spelling", list(SOCKET_SPELLINGS))
def test_socket_spellings(backend, pair, closer, spelling):
    a, b = pair
    spell = SOCKET_SPELLINGS[spelling]
    sent = closer.distinct_fds(per_call(backend, 2))
    backend.sendfds(spell(a), b"s", 0, sent)
    _, fds = backend.recvfds(spell(b), 16, 0, len(sent))
    closer.fds(*fds)
    assert identities(fds) == identities(sent)


def _fd_likes(closer, tmp_path) -> list[tuple[str, Any, int]]:
    """(name, fd-like, the fd it stands for) of every accepted spelling."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    binary = open(tmp_path / "binary", "wb")  # noqa: SIM115 - closed by closer
    text = open(tmp_path / "text", "w", encoding="utf-8")  # noqa: SIM115
    raw = io.FileIO(tmp_path / "raw", "w")
    closer.objects(sock, binary, text, raw)
    plain = closer.distinct_fds(2)
    return [
        ("socket", sock, sock.fileno()),
        ("binary-file", binary, binary.fileno()),
        ("text-file", text, text.fileno()),
        ("raw-io", raw, raw.fileno()),
        ("fileno-object", Fileno(plain[0]), plain[0]),
        ("int", plain[1], plain[1]),
    ]


CONTAINERS: dict[str, Callable[[list[Any]], Iterable[Any]]] = {
    "list": list,
    "tuple": tuple,
    "generator": lambda items: (item for item in items),
}


@pytest.mark.clause("COERCE-2")
@SEVERAL_FDS  # every spelling in one call
@pytest.mark.parametrize("container", list(CONTAINERS))
def test_mixed_fd_likes(backend, pair, closer, tmp_path, container):
    a, b = pair
    likes = _fd_likes(closer, tmp_path)
    if fdtable.is_open(0):  # fd 0 is an fd like any other, through fileno() too
        likes.append(("fd-0", Fileno(0), 0))
    backend.sendfds(a, b"m", 0, CONTAINERS[container]([like for _, like, _ in likes]))
    _, fds = backend.recvfds(b, 16, 0, len(likes))
    closer.fds(*fds)
    assert identities(fds) == identities(fd for _, _, fd in likes)


@pytest.mark.clause("COERCE-2")
@pytest.mark.parametrize(
    "index", range(6), ids=["socket", "binary-file", "text-file", "raw-io", "fileno-object", "int"]
)
def test_each_fd_like_alone(backend, pair, closer, tmp_path, index):
    a, b = pair
    _, like, fd = _fd_likes(closer, tmp_path)[index]
    backend.sendfds(a, b"m", 0, [like])
    _, fds = backend.recvfds(b, 16, 0, 1)
    closer.fds(*fds)
    assert identities(fds) == [identity(fd)]


class Boom(Exception):
    """Raised by a fileno() that fails."""


REFUSED: dict[str, tuple[Callable[[], Any], type[BaseException]]] = {
    "negative-int": (lambda: [-1], ValueError),
    "fileno-raises": (lambda: [Fileno(Boom("no fd"))], Boom),
    "fileno-returns-str": (lambda: [Fileno("3")], TypeError),
    "fileno-returns-negative": (lambda: [Fileno(-5)], ValueError),
    "none-inside": (lambda: [None], TypeError),
    "not-iterable": (lambda: 5, TypeError),
    "str-fd": (lambda: ["3"], TypeError),
    "float-fd": (lambda: [3.0], TypeError),
    "beyond-c-int": (lambda: [2**31], OverflowError),
}


@pytest.mark.clause("COERCE-3")
@pytest.mark.parametrize("case", list(REFUSED))
def test_invalid_fds_are_refused(backend, pair, closer, case):
    a, b = pair
    make_bad, error = REFUSED[case]
    bad = make_bad()
    good = closer.distinct_fds(1)
    before = identity(good[0])
    beside = good[: per_call(backend, 2) - 1]  # a valid fd first, where the API takes two
    fds = [*beside, *bad] if isinstance(bad, list) else bad
    with pytest.raises(error):
        backend.sendfds(a, b"never", 0, fds)
    assert not pending(b), "a refused call still reached the peer"
    assert identity(good[0]) == before, "the caller's valid fd was closed or replaced"
