"""What a test opened, closed at its teardown: :class:`Closer` and the ``closer`` fixture."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from fdsend_conformance.harness.fds import distinct_fds

__all__ = ["Closer", "closer"]


class Closer:
    """Owns fds and objects a test opened, and closes them at teardown."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self._objects: list[Any] = []

    def fds(self, *fds: int) -> None:
        """Take ownership of plain fds."""
        self._fds.extend(fds)

    def distinct_fds(self, count: int) -> list[int]:
        """``count`` new fds, each a different file (see :func:`fds.distinct_fds`), owned."""
        fds = distinct_fds(count)
        self._fds.extend(fds)
        return fds

    def objects(self, *objects: Any) -> None:
        """Take ownership of objects with ``close()``."""
        self._objects.extend(objects)

    def close(self, fd: int) -> None:
        """Close an owned fd now."""
        self._fds.remove(fd)
        os.close(fd)

    def close_all(self) -> None:
        for obj in reversed(self._objects):
            obj.close()
        for fd in reversed(self._fds):
            os.close(fd)
        self._objects.clear()
        self._fds.clear()


@pytest.fixture
def closer() -> Iterator[Closer]:
    """Closes at teardown what the test gave it."""
    owner = Closer()
    yield owner
    owner.close_all()
