"""Every reference test is leak-checked: no fd may outlive the test."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from fdsend_conformance.harness.closer import closer  # noqa: F401  (the fixture)
from fdsend_conformance.harness.fdtable import no_leaks
from fdsend_conformance.harness.sockets import socket_pair


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    """Fail the test if it leaves an fd open that was not open before."""
    with no_leaks():
        yield


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
