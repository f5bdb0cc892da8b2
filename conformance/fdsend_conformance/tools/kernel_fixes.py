"""The fix table: Linux fixes the KERNEL clauses are meant to catch, as data.

``kernel_fixes.json`` (beside CONTRACT.md) is a list of objects::

    {"fix": "af_unix: ...",                  the fix's commit title
     "commit": "0123abcd..." or null,         its hash where known
     "first_fixed": {"7.2": "7.2.8", ...},    first fixed version per series
                                              (null: not fixed in that series)
     "clauses": ["KERNEL-23"],                the clauses meant to catch it
     "without": "debian:SUITE/VERSION" or null,  newest image without the fix
     "with": "debian:SUITE/VERSION" or null,     oldest image with it
     "source": "...",                         where the facts come from
     "note": "..."}

A fix no clause checks has ``"clauses": []`` (it was considered); other
fields (``measured_without``, ...) are the harness's and ignored here.
:func:`load` reads and checks it; a malformed entry is a :class:`FixTableError`
naming the entry and the field. The images are named as
:mod:`fdsend_conformance.tools.kernel_fetch` names them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdsend_conformance.tools.kernel_fetch import DEBIAN_PREFIX, SUITES

__all__ = ["FIXES_FILE", "Fix", "FixTableError", "images", "load", "parse", "runnable"]

#: The table shipped with the suite.
FIXES_FILE = Path(__file__).resolve().parent.parent / "kernel_fixes.json"

_FIELDS = ("fix", "commit", "first_fixed", "clauses", "without", "with", "source", "note")
_CLAUSE = re.compile(r"KERNEL-\d+")
_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_SERIES = re.compile(r"\d+\.\d+")
_IMAGE = re.compile(
    rf"{re.escape(DEBIAN_PREFIX)}(?P<suite>[a-z-]+)/(?P<version>[0-9][0-9a-z.~+-]*)"
)


class FixTableError(ValueError):
    """The fix table is malformed (the message names the entry and field)."""


@dataclass(frozen=True)
class Fix:
    """One fix: what it is, the clauses meant to catch it and its bracket of images."""

    fix: str
    commit: str | None
    first_fixed: dict[str, str | None]
    clauses: tuple[str, ...]
    #: The newest image without the fix and the oldest with it (``debian:SUITE/VERSION``).
    without: str | None
    with_: str | None
    source: str
    note: str

    @property
    def images(self) -> dict[str, str | None]:
        """The bracket as ``{"without": ..., "with": ...}``."""
        return {"without": self.without, "with": self.with_}


def _image(value: Any, where: str) -> str | None:
    if value is None:
        return None
    match = _IMAGE.fullmatch(value) if isinstance(value, str) else None
    if match is None or match["suite"] not in SUITES:
        raise FixTableError(f"{where}: {value!r} is not debian:SUITE/VERSION (suites: {SUITES})")
    return str(value)


def _text(entry: dict[str, Any], name: str, where: str) -> str:
    value = entry[name]
    if not isinstance(value, str) or not value.strip():
        raise FixTableError(f"{where}: {name} must be a non-empty string")
    return value


def _note(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise FixTableError(f"{where}: note must be a string")
    return value


def _fix(entry: Any, index: int) -> Fix:
    where = f"kernel_fixes.json entry {index}"
    if not isinstance(entry, dict):
        raise FixTableError(f"{where}: not an object")
    where = f"{where} ({entry.get('fix', '?')})"
    missing = [name for name in _FIELDS if name not in entry]
    if missing:
        raise FixTableError(f"{where}: missing {missing}")
    commit = entry["commit"]
    if commit is not None and not (isinstance(commit, str) and _COMMIT.fullmatch(commit)):
        raise FixTableError(f"{where}: commit {commit!r} is not a hex hash or null")
    first_fixed = entry["first_fixed"]
    if not isinstance(first_fixed, dict) or not all(
        isinstance(series, str)
        and _SERIES.fullmatch(series)
        and (version is None or (isinstance(version, str) and version.startswith(series)))
        for series, version in first_fixed.items()
    ):
        raise FixTableError(f"{where}: first_fixed must map SERIES to a version of it or null")
    clauses = entry["clauses"]
    if not isinstance(clauses, list) or not all(
        isinstance(c, str) and _CLAUSE.fullmatch(c) for c in clauses
    ):
        raise FixTableError(f"{where}: clauses must be a list of KERNEL-N")
    return Fix(
        fix=_text(entry, "fix", where),
        commit=commit,
        first_fixed=dict(first_fixed),
        clauses=tuple(clauses),
        without=_image(entry["without"], f"{where}: without"),
        with_=_image(entry["with"], f"{where}: with"),
        source=_text(entry, "source", where),
        note=_note(entry["note"], where),
    )


def parse(data: Any) -> list[Fix]:
    """The fixes in ``data`` (the decoded JSON), checked."""
    if not isinstance(data, list):
        raise FixTableError("kernel_fixes.json: the top level must be a list")
    fixes = [_fix(entry, index) for index, entry in enumerate(data)]
    titles = [fix.fix for fix in fixes]
    twice = sorted({title for title in titles if titles.count(title) > 1})
    if twice:
        raise FixTableError(f"kernel_fixes.json: listed twice: {twice}")
    return fixes


def load(path: Path = FIXES_FILE) -> list[Fix]:
    """The fix table at ``path`` (default: the suite's), checked."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FixTableError(f"{path}: not JSON ({exc})") from exc
    return parse(data)


def runnable(fixes: Sequence[Fix]) -> list[Fix]:
    """The fixes a VM run can decide: checked by a clause, with both images named."""
    return [fix for fix in fixes if fix.clauses and fix.without and fix.with_]


def images(fixes: Sequence[Fix]) -> dict[str, list[str]]:
    """Each image the runnable brackets name, with the clauses to run on it, in table order."""
    found: dict[str, list[str]] = {}
    for fix in runnable(fixes):
        for image in (fix.without, fix.with_):
            assert image is not None
            clauses = found.setdefault(image, [])
            clauses.extend(c for c in fix.clauses if c not in clauses)
    return found
