"""The project's own tests of the conformance plugin (not conformance clauses).

Every test here is leak-checked: no fd may outlive the test.
"""

from __future__ import annotations

from fdsend_conformance.plumbing.fixtures import no_fd_leaks  # noqa: F401  (the suite's own)

pytest_plugins = ["pytester"]
