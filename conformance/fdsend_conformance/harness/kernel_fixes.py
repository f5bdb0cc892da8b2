"""The fix table: which kernel fixes the KERNEL clauses catch, and which kernels lack them.

``kernel_fixes.json`` (beside this package's ``CONTRACT.md``) lists every
AF_UNIX/SCM_RIGHTS fix considered, each with its commit title, the first
fixed version of each series Debian has images of (read from Debian's
kernel changelogs by :mod:`fdsend_conformance.tools.first_fixed`: the
series itself, ``"6.12"``, where the whole series has it; ``null`` where the
series' newest changelog does not list it),
the clauses meant to catch it, the two Debian images that bracket it and a
note. A KERNEL test of a behaviour that such a fix restored marks itself
with :func:`known_bug`: on a kernel known to lack the fix the test is an
expected failure that names the fix, so a known kernel bug never fails a
run, and on any other kernel a failure is a regression.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

from fdsend_conformance.harness.kernel import kernel_version

__all__ = [
    "FIXES_FILE",
    "SERIES_FILE",
    "THROWAWAY_KERNEL_ENV",
    "Fix",
    "debian_version",
    "fix_named",
    "fixes",
    "known_bug",
    "lacks_fix",
    "parse_version",
    "running_version",
    "series_of",
    "series_through",
]

FIXES_FILE = Path(__file__).parent.parent / "kernel_fixes.json"
#: Set (to 1) in the environment of a run on a kernel booted for it alone
#: (``fdsend-conformance vm`` does): there a known bug that leaks kernel
#: objects may be run to show it, as nothing else shares that kernel.
THROWAWAY_KERNEL_ENV = "FDSEND_THROWAWAY_KERNEL"
#: For each series, the newest version its Debian changelog covers: a ``null``
#: first fixed version means "lacks it up to there" (tools/first_fixed.py).
SERIES_FILE = Path(__file__).parent.parent / "kernel_series.json"

#: Where a distribution kernel names its upstream version: Debian's
#: ``/proc/version`` ends with "#1 SMP PREEMPT_DYNAMIC Debian 6.1.192-3 (date)",
#: after the build number (the compiler's "Debian 12.2.0" comes before it),
#: while its release ("6.1.0-57-amd64") names the ABI only.
_PROC_VERSION = "/proc/version"
_DEBIAN_VERSION = re.compile(r"#\d+ [^(]*\bDebian (\d+(?:\.\d+)+)")


@dataclass(frozen=True)
class Fix:
    """One row of the fix table (see the module docstring)."""

    fix: str
    commit: str | None
    first_fixed: dict[str, str | None]
    clauses: list[str]
    without: str | None
    with_: str | None
    source: str
    note: str
    #: Kernel versions measured to lack it where no changelog says (a host's own build).
    measured_without: tuple[str, ...] = ()


def series_of(version: str) -> str:
    """The stable series of a Linux version: "6.12.63" and "7.3-rc7" -> "6.12", "7.3"."""
    numbers = re.match(r"(\d+)\.(\d+)", version)
    if numbers is None:
        raise ValueError(f"not a kernel version: {version!r}")
    return f"{numbers[1]}.{numbers[2]}"


def parse_version(text: str) -> tuple[int, ...]:
    """``"6.12.57"`` as ``(6, 12, 57)``; a series ``"6.12"`` as ``(6, 12)``."""
    if not re.fullmatch(r"\d+(\.\d+)+", text):
        raise ValueError(f"not a kernel version: {text!r}")
    return tuple(int(part) for part in text.split("."))


@cache
def fixes() -> tuple[Fix, ...]:
    """The fix table, in the file's order."""
    rows = json.loads(FIXES_FILE.read_text(encoding="utf-8"))
    return tuple(
        Fix(
            fix=row["fix"],
            commit=row["commit"],
            first_fixed=row["first_fixed"],
            clauses=row["clauses"],
            without=row["without"],
            with_=row["with"],
            source=row["source"],
            note=row["note"],
            measured_without=tuple(row.get("measured_without", ())),
        )
        for row in rows
    )


@cache
def series_through() -> dict[str, str]:
    """Each series the table covers, with the newest version its changelog covers."""
    covered = json.loads(SERIES_FILE.read_text(encoding="utf-8"))
    return {series: row["through"] for series, row in covered.items()}


def fix_named(title: str) -> Fix:
    """The row whose commit title is ``title``; KeyError names a missing one."""
    for row in fixes():
        if row.fix == title:
            return row
    raise KeyError(f"no fix {title!r} in {FIXES_FILE.name}")


def debian_version(proc_version: str) -> str | None:
    """The upstream version a Debian kernel's ``/proc/version`` text names, if any."""
    found = _DEBIAN_VERSION.search(proc_version)
    return found[1] if found else None


def running_version() -> str:
    """The running kernel's upstream version: "6.1.192" on Debian's 6.1.0-57-amd64."""
    try:
        with open(_PROC_VERSION, encoding="utf-8") as proc:
            named = debian_version(proc.read())
    except OSError:
        named = None
    return named or kernel_version()


def lacks_fix(row: Fix, version: str) -> bool:
    """Whether kernel ``version`` is known to lack ``row``'s fix.

    Known: its series is in the table and the fix came later, or never
    (``null``) up to the newest version the series' changelog covers; or
    the version was measured without it. A version of a series the table
    does not name, or past what its changelog covers, is not known to lack it.
    """
    if version in row.measured_without:
        return True
    numbers = parse_version(version)
    series = series_of(version)
    if series not in row.first_fixed:
        return False
    first = row.first_fixed[series]
    if first is None:
        through = series_through().get(series)
        return through is not None and numbers <= parse_version(through)
    return numbers < parse_version(first)


def known_bug(title: str, leaks: bool = False) -> pytest.MarkDecorator:
    """An expected-failure mark where the running kernel lacks fix ``title``.

    The reason names the fix, its commit where known and where it was first fixed, so a report
    shows the known bug instead of a plain failure; elsewhere the mark does
    nothing (a failure there is a regression). Non-strict: a kernel that
    took the fix without the table knowing passes. With ``leaks`` (the bug
    leaks kernel objects until reboot) the test is not run on such a kernel
    unless it was booted for the run alone (:data:`THROWAWAY_KERNEL_ENV`):
    on a machine's own kernel each run would add to a leak that slows every
    fd sent on the machine.
    """
    row = fix_named(title)
    version = running_version()
    releases = [v for v in row.first_fixed.values() if v and v.count(".") >= 2]
    bases = [v for v in row.first_fixed.values() if v and v.count(".") == 1]
    if bases:
        releases.append(f"every {min(bases, key=parse_version)} and later")
    fixed = ", ".join(releases) or "no stable release"
    commit = f"commit {row.commit[:12]}, " if row.commit else ""
    reason = f"known kernel bug on {version}: fixed by {row.fix!r} ({commit}first fixed in {fixed})"
    run = not leaks or os.environ.get(THROWAWAY_KERNEL_ENV) == "1"
    if not run:
        reason += (
            "; not run here: it leaks kernel objects until reboot "
            "(`fdsend-conformance vm` runs it on a kernel booted for it)"
        )
    return pytest.mark.xfail(lacks_fix(row, version), reason=reason, strict=False, run=run)
