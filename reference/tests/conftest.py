"""Every reference test is leak-checked: no fd may outlive the test."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from fdsend_conformance.harness import fdtable
from fdsend_conformance.harness.sockets import socket_pair


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = fdtable.open_fds()
    yield
    leaked = fdtable.close_leaked(before)
    assert not leaked, f"leaked fds: {leaked}"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected AF_UNIX stream pair with kernel timeouts."""
    a, b = socket_pair()
    with a, b:
        yield a, b


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    os.close(read_end)
    os.close(write_end)
