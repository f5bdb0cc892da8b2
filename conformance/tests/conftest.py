"""The project's own tests of the conformance plugin (not conformance clauses).

Every test here is leak-checked: no fd may outlive the test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fdsend_conformance.harness import fdtable

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def no_fd_leaks() -> Iterator[None]:
    before = fdtable.open_fds()
    yield
    leaked = fdtable.close_leaked(before)
    assert not leaked, f"leaked fds: {leaked}"
