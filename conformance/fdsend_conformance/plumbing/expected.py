"""Expected-failure files: the documented deviations of a backend.

One entry per line: a selector, whitespace, and a one-line reason. ``#``
starts a comment. The selector is a clause id (``TRUNC-3``: every test of
that clause) or a glob over the test id within the suite
(``test_coercion.py::test_socket_as*``; ``*`` and ``?`` are wildcards, and
brackets are literal, so an exact id, parameters and all, matches itself)::

    COERCE-1   socket.send_fds needs a socket object; an int has no sendmsg

The built-in backends' files ship in ``expected/<backend>.txt``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "EXPECTED_DIR",
    "ExpectedFailure",
    "builtin_expected_file",
    "id_in_suite",
    "parse_expected",
    "read_expected",
]

EXPECTED_DIR = Path(__file__).parent.parent / "expected"

_CLAUSE_ID = re.compile(r"^[A-Z]+-\d+$")


@dataclass(frozen=True)
class ExpectedFailure:
    """One line of an expected-failure file."""

    selector: str
    reason: str
    line: int

    def matches(self, test_id: str, clauses: tuple[str, ...]) -> bool:
        """Whether this entry covers the test ``test_id`` proving ``clauses``."""
        if _CLAUSE_ID.match(self.selector):
            return self.selector in clauses
        # Brackets are a test's parameters, never a character class (on Python
        # 3.9 "[binary-file]" is even an invalid range): match them literally.
        return fnmatch.fnmatchcase(test_id, self.selector.replace("[", "[[]"))


def parse_expected(text: str, source: str = "<expected>") -> list[ExpectedFailure]:
    """Parse an expected-failure file; every entry needs a reason."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        selector, _, reason = line.partition(" ")
        reason = reason.strip()
        if not reason:
            raise ValueError(f"{source}:{number}: {selector!r} needs a one-line reason")
        entries.append(ExpectedFailure(selector, reason, number))
    return entries


def read_expected(path: Path) -> list[ExpectedFailure]:
    """The entries of the expected-failure file at ``path``.

    Raises OSError when it cannot be read, ValueError when an entry is malformed.
    """
    return parse_expected(path.read_text(encoding="utf-8"), str(path))


def builtin_expected_file(backend_name: str, event_loop: str | None = None) -> Path | None:
    """The shipped expected-failure file of a built-in backend, if any.

    For an async backend on ``event_loop``, ``NAME@LOOP.txt`` comes first
    where one is shipped (a loop with deviations of its own), then ``NAME.txt``.
    """
    names = [f"{backend_name}@{event_loop}.txt"] if event_loop else []
    for name in [*names, f"{backend_name}.txt"]:
        path = EXPECTED_DIR / name
        if path.is_file():
            return path
    return None


def id_in_suite(nodeid: str) -> str:
    """A test's id as selectors see it: ``test_errors.py::test_name[params]``."""
    path, _, rest = nodeid.partition("::")
    return f"{os.path.basename(path)}::{rest}"
