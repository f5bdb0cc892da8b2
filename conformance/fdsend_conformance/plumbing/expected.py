"""Expected-failure files: the documented deviations of a backend.

One entry per line: a selector, whitespace, and a one-line reason. ``#``
starts a comment. The selector is a clause id (``TRUNC-3``: every test of
that clause) or a glob over the test id within the suite
(``test_coercion.py::test_socket_as*``; ``*`` and ``?`` are wildcards, and
brackets are literal, so an exact id, parameters and all, matches itself)::

    COERCE-1   socket.send_fds needs a socket object; an int has no sendmsg

A file is read strictly: a line that is neither, a clause the contract does
not have, and (once the suite is collected) a selector that matches no test
are errors that name the file and the line, never warnings.

The built-in backends' files ship in ``expected/<backend>.txt``.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from fdsend_conformance.plumbing.contract import CLAUSE_ID

__all__ = [
    "EXPECTED_DIR",
    "ExpectedFailure",
    "ExpectedFileError",
    "builtin_expected_file",
    "id_in_suite",
    "parse_expected",
    "read_expected",
]

EXPECTED_DIR = Path(__file__).parent.parent / "expected"

_CLAUSE_ID = re.compile(rf"^{CLAUSE_ID}$")
#: A clause id in any case: ``recv-1`` is refused with its upper-case spelling.
_ANY_CASE_ID = re.compile(rf"^{CLAUSE_ID}$", re.IGNORECASE)


class ExpectedFileError(ValueError):
    """An expected-failure file has bad lines; the message names each ``file:line``."""


@dataclass(frozen=True)
class ExpectedFailure:
    """One line of an expected-failure file."""

    selector: str
    reason: str
    line: int
    #: The file it was read from (its ``file:line`` names it in messages).
    source: str = "<expected>"

    @property
    def where(self) -> str:
        """``file:line`` of this entry."""
        return f"{self.source}:{self.line}"

    @property
    def is_clause(self) -> bool:
        """Whether the selector is a clause id (else a test selector)."""
        return bool(_CLAUSE_ID.match(self.selector))

    def could_match(self, test_files: Collection[str]) -> bool:
        """Whether a test selector names one of ``test_files`` (file names, no folders)."""
        module = self.selector.partition("::")[0]
        return any(fnmatch.fnmatchcase(name, module.replace("[", "[[]")) for name in test_files)

    def matches(self, test_id: str, clauses: tuple[str, ...]) -> bool:
        """Whether this entry covers the test ``test_id`` proving ``clauses``."""
        if self.is_clause:
            return self.selector in clauses
        # Brackets are a test's parameters, never a character class (on Python
        # 3.9 "[binary-file]" is even an invalid range): match them literally.
        return fnmatch.fnmatchcase(test_id, self.selector.replace("[", "[[]"))


def _problem(selector: str, reason: str, clauses: Collection[str] | None) -> str | None:
    """What is wrong with one entry, or None."""
    if _CLAUSE_ID.match(selector):
        if clauses is not None and selector not in clauses:
            return f"{selector} is no clause of the contract (CONTRACT.md)"
    elif _ANY_CASE_ID.match(selector):
        return f"clause ids are upper case: {selector.upper()}, not {selector}"
    elif "::" not in selector and not selector.endswith(".py"):
        return (
            f"{selector!r} is neither a clause id (RECV-1) nor a test selector "
            "(test_file.py::test_name, * and ? as wildcards)"
        )
    if not reason:
        return f"{selector!r} needs a one-line reason"
    return None


def parse_expected(
    text: str, source: str = "<expected>", clauses: Collection[str] | None = None
) -> list[ExpectedFailure]:
    """Parse an expected-failure file; every entry needs a reason.

    With ``clauses`` (the contract's ids), a clause selector must be one of
    them. Raises :class:`ExpectedFileError` naming every bad line.
    """
    entries = []
    problems = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = "" if raw.lstrip().startswith("#") else raw.strip()
        if not line:
            continue
        selector, _, reason = line.partition(" ")
        problem = _problem(selector, reason.strip(), clauses)
        if problem:
            problems.append(f"{source}:{number}: {problem}")
        else:
            entries.append(ExpectedFailure(selector, reason.strip(), number, source))
    if problems:
        raise ExpectedFileError("\n".join(problems))
    return entries


def read_expected(path: Path, clauses: Collection[str] | None = None) -> list[ExpectedFailure]:
    """The entries of the expected-failure file at ``path`` (see :func:`parse_expected`).

    Raises OSError when it cannot be read, :class:`ExpectedFileError` when a line is bad.
    """
    return parse_expected(path.read_text(encoding="utf-8"), str(path), clauses)


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
