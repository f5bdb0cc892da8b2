"""The fix table's ``first_fixed``, read from Debian's kernel changelogs.

For every series of which Debian's mirror has an image (5.10, 6.1, 6.12,
6.16, ...), the changelog of the series' newest image is read
(:func:`fdsend_conformance.tools.kernel_fetch.changelog`). Where the mirror
no longer has that changelog (the trixie-backports builds of 6.16 to 6.18
come without one), the newest entry of the series in another series'
changelog stands for it, with the entries before it: a changelog holds the
whole history of the version it came with.

A fix's first fixed version in a series is then read from the oldest entry
that lists the fix's commit title:

- an entry of the series itself: the stable release the title is listed
  under (``ChangeLog-6.12.60`` in entry 6.12.63-1 gives ``6.12.60``), or the
  entry's own version for a patch Debian took before the stable tree;
- an entry of an older series (6.9.8-1 in the 6.12 changelog): the whole
  series has it, written as the series itself (``"6.12"``);
- no entry of its history, and a stable update of this series or a newer
  one lists the fix elsewhere: ``null``. Mainline took the fix after that
  series began, so this series' base lacks it, and its changelog up to the
  newest version it covers never added it. That version is written beside
  the table, in ``kernel_series.json``; a later version of the series is
  not known to lack it (a host's own 6.18.44 is not Debian's 6.18.3).
- no entry of its history, only older series list it, and the first of
  them was uploaded before Debian's first upload of this series (an
  ``-rc`` in experimental, say): the series has it from its base, written
  as the series itself. A stable update takes a fix only after mainline
  has it, so the mainline a later series starts from has it too. (Debian's
  changelogs list stable updates, never what a new upstream release
  brings: without this, "Read with MSG_PEEK loops if the first unread byte
  is OOB", listed in 6.1.95, would read as missing from 6.12.)
- else the series is left out of the row: the changelogs cannot tell (a
  fix listed first in a backport made long after mainline took it).

A row whose title no changelog lists at all (a survey entry named by its
symptom) keeps an empty ``first_fixed``: nothing is known of it.

::

    python -m fdsend_conformance.tools.first_fixed           # print the table
    python -m fdsend_conformance.tools.first_fixed --check   # exit 1 where it differs
    python -m fdsend_conformance.tools.first_fixed --write   # rewrite kernel_fixes.json
                                                            # and kernel_series.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from fdsend_conformance.harness.kernel_fixes import (
    FIXES_FILE,
    SERIES_FILE,
    Fix,
    fixes,
    parse_version,
    series_of,
)
from fdsend_conformance.tools import kernel_fetch

__all__ = [
    "UNKNOWN",
    "Changelog",
    "Entry",
    "Listings",
    "coverage",
    "derive",
    "first_fixed",
    "main",
    "normalise",
    "parse_changelog",
    "series_changelogs",
]

_ENTRY = re.compile(r"^linux \(([^)]+)\) ")
_STABLE = re.compile(r"ChangeLog-(\d+(?:\.\d+)+)\s*$")
_ITEM = re.compile(r"^(\s+)([-*]) (.*)$")
#: An entry's last line: " -- Name <address>  Mon, 01 Jan 2026 00:00:00 +0000".
_SIGNED = re.compile(r"^ -- .*>  (.+)$")
#: What a changelog line adds to a title: architecture tags in front, a CVE
#: or bug number behind (once with a stray bracket: "(CVE-2025-40214))."),
#: the commit's final full stop.
_ARCH_TAG = re.compile(r"^(\[[^]]+\] )+")
_TRAILER = re.compile(r"\s*\((?:CVE-|Closes: )[^)]*\)")


def normalise(title: str) -> str:
    """A commit title as the changelogs and the table can both be matched on."""
    text = " ".join(title.split())
    text = _TRAILER.sub("", _ARCH_TAG.sub("", text))
    return text.rstrip(" .()").casefold()


@dataclass
class Entry:
    """One ``linux (VERSION) DIST`` entry: each title it lists, with the release it came in."""

    version: str
    #: normalised title -> the stable release it is listed under (else the entry's version).
    titles: dict[str, str] = field(default_factory=dict)
    #: When it was uploaded: the date of its signature line (None if it has none).
    date: datetime | None = None

    @property
    def upstream(self) -> str:
        """Linux's version of the entry ("6.12.63")."""
        return kernel_fetch.upstream_version(self.version)


def parse_changelog(text: str) -> list[Entry]:
    """The entries of a ``changelog.Debian``, newest first, with the titles each lists.

    A list item may run on over more lines, indented deeper than its
    dash; a ``ChangeLog-X.Y.Z`` line names the stable release of the items
    after it, until the next one or the next ``*`` paragraph (a patch of
    Debian's own).
    """
    entries: list[Entry] = []
    item: list[str] = []
    indent = 0
    stable: str | None = None

    def close() -> None:
        if item and entries:
            entry = entries[-1]
            entry.titles.setdefault(normalise(" ".join(item)), stable or entry.upstream)
        item.clear()

    for line in text.splitlines():
        if head := _ENTRY.match(line):
            close()
            entries.append(Entry(head[1]))
            stable = None
            continue
        if not entries:
            continue
        if release := _STABLE.search(line):
            close()
            stable = release[1]
            continue
        if bullet := _ITEM.match(line):
            close()
            if bullet[2] == "*":  # a new paragraph of the entry: no stable release named yet
                stable = None
            indent = len(bullet[1])
            item.append(bullet[3])
        elif item and line.strip() and len(line) - len(line.lstrip()) > indent:
            item.append(line.strip())
        else:
            close()
    close()
    _date(entries, text)
    return entries


def _date(entries: list[Entry], text: str) -> None:
    """Give each of ``entries`` (parsed from ``text``) its upload date: its signature line's."""
    dates: list[datetime | None] = []
    for line in text.splitlines():
        if _ENTRY.match(line):
            dates.append(None)
        elif dates and (signed := _SIGNED.match(line)):
            dates[-1] = parsedate_to_datetime(signed[1])
    for entry, date in zip(entries, dates):
        entry.date = date


@dataclass(frozen=True)
class Changelog:
    """The history a series is read from: where it came from and its entries, newest first."""

    source: str
    entries: list[Entry]


@dataclass(frozen=True)
class Listings:
    """Where the changelogs list one fix: the newest series a stable update lists it in, and when
    it was first listed (a changelog entry's date)."""

    newest_series: str
    since: datetime | None


#: What :func:`first_fixed` says where the changelogs cannot tell (module docstring).
UNKNOWN = "unknown"


def first_fixed(
    log: Changelog,
    title: str,
    series: str,
    listings: Listings | None = None,
    series_since: datetime | None = None,
) -> str | None:
    """The first release of ``series`` that has the fix titled ``title`` (module docstring).

    ``listings`` says where every changelog lists the fix, ``series_since``
    when Debian first uploaded ``series``; without them a series that does
    not list the fix is ``None``.
    """
    wanted = normalise(title)
    for entry in reversed(log.entries):  # oldest first
        if wanted not in entry.titles:
            continue
        entry_series = series_of(entry.upstream)
        if parse_version(entry_series) < parse_version(series):
            return series
        release = entry.titles[wanted]
        return release if re.fullmatch(r"\d+(\.\d+)+", release) else series_of(release)
    if listings is None or parse_version(series) <= parse_version(listings.newest_series):
        return None
    if listings.since and series_since and listings.since < series_since:
        return series
    return UNKNOWN


def _earliest(dates: Iterable[datetime | None]) -> datetime | None:
    known = [date for date in dates if date is not None]
    return min(known) if known else None


def _truncated(entries: list[Entry], series: str) -> list[Entry] | None:
    """``entries`` from the newest entry of ``series`` on, if there is one."""
    for index, entry in enumerate(entries):
        if series_of(entry.upstream) == series:
            return entries[index:]
    return None


def _older(entries: list[Entry], others: Iterable[list[Entry]]) -> list[Entry]:
    """``entries`` with the older entries another changelog keeps past their oldest.

    Debian cuts a package's changelog short ("Older entries have been
    removed"); a changelog that has the same oldest entry and more after it
    holds the rest of that history.
    """
    oldest = entries[-1].version
    longest: list[Entry] = []
    for other in others:
        versions = [entry.version for entry in other]
        if oldest in versions and len(other) - versions.index(oldest) - 1 > len(longest):
            longest = other[versions.index(oldest) + 1 :]
    return entries + longest


def _newest_images(cache: Path | None) -> dict[str, list[kernel_fetch.Image]]:
    """Each series' images of the newest version on the mirror, newest build first."""
    found: dict[str, list[kernel_fetch.Image]] = {}
    for suite in kernel_fetch.SUITES:
        for image in kernel_fetch.images(suite, cache):
            found.setdefault(series_of(image.upstream), []).append(image)
    newest = {}
    for series, images in found.items():
        top = max(_version_key(image.upstream) for image in images)
        newest[series] = sorted(
            (image for image in images if _version_key(image.upstream) == top),
            key=_image_key,
            reverse=True,
        )
    return newest


def _first_changelog(images: Sequence[kernel_fetch.Image], cache: Path | None) -> Changelog | None:
    for image in images:
        try:
            text = kernel_fetch.changelog(image.spec, cache)
        except kernel_fetch.FetchError:
            continue
        return Changelog(f"linux {image.version} ({image.suite})", parse_changelog(text))
    return None


def series_changelogs(cache: Path | None = None) -> dict[str, Changelog]:
    """Each series of Debian's images, with the changelog it is read from (module docstring)."""
    logs: dict[str, Changelog] = {}
    missing: list[str] = []
    for series, images in _newest_images(cache).items():
        log = _first_changelog(images, cache)
        if log is None:
            missing.append(series)
        else:
            logs[series] = log
    for series in missing:
        found = [
            (entries[0], log.source, entries)
            for log in logs.values()
            if (entries := _truncated(log.entries, series))
        ]
        if not found:
            raise kernel_fetch.FetchError(f"no changelog on the mirror covers Linux {series}")
        entry, source, entries = max(found, key=lambda f: _version_key(f[0].upstream))
        logs[series] = Changelog(f"entry {entry.version} of {source}", entries)
    histories = [log.entries for log in logs.values()]
    return {
        series: Changelog(logs[series].source, _older(logs[series].entries, histories))
        for series in sorted(logs, key=parse_version)
    }


def _version_key(version: str) -> tuple[int, ...]:
    """Orders Linux versions, a release candidate first: "7.3-rc7" < "7.3" < "7.3.4"."""
    release, _, candidate = version.partition("-rc")
    numbers = tuple(int(part) for part in re.findall(r"\d+", release))
    return (*numbers, -1, int(candidate)) if candidate else numbers


def _image_key(image: kernel_fetch.Image) -> tuple[tuple[int, ...], tuple[int, ...]]:
    revision = tuple(int(part) for part in re.findall(r"\d+", image.version.rsplit("-", 1)[1]))
    return _version_key(image.upstream), revision


def derive(table: Iterable[Fix], logs: dict[str, Changelog]) -> dict[str, dict[str, str | None]]:
    """Each fix's ``first_fixed`` per series of ``logs``; empty if no changelog lists it."""
    every = [entry for log in logs.values() for entry in log.entries]
    series_since = {
        series: _earliest(entry.date for entry in every if series_of(entry.upstream) == series)
        for series in logs
    }
    derived: dict[str, dict[str, str | None]] = {}
    for fix in table:
        wanted = normalise(fix.fix)
        listing = [entry for entry in every if wanted in entry.titles]
        if not listing:
            derived[fix.fix] = {}
            continue
        listings = Listings(
            newest_series=max(
                (series_of(entry.titles[wanted]) for entry in listing), key=parse_version
            ),
            since=_earliest(entry.date for entry in listing),
        )
        found = {
            series: first_fixed(log, fix.fix, series, listings, series_since[series])
            for series, log in logs.items()
        }
        derived[fix.fix] = {series: v for series, v in found.items() if v != UNKNOWN}
    return derived


def coverage(logs: dict[str, Changelog]) -> dict[str, dict[str, str]]:
    """Each series' newest version its changelog covers, and where that changelog came from."""
    return {
        series: {"through": log.entries[0].upstream, "changelog": log.source}
        for series, log in logs.items()
    }


def _differences(table: Sequence[Fix], derived: dict[str, dict[str, str | None]]) -> list[str]:
    return [
        f"{fix.fix}: table {fix.first_fixed}, changelogs {derived[fix.fix]}"
        for fix in table
        if fix.first_fixed != derived[fix.fix]
    ]


def _write(derived: dict[str, dict[str, str | None]], path: Path) -> None:
    rows = json.loads(path.read_text(encoding="utf-8"))
    for row in rows:
        row["first_fixed"] = derived[row["fix"]]
    path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Print, check or write the fix table's first fixed versions; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m fdsend_conformance.tools.first_fixed",
        description="Each fix's first fixed version per series, from Debian's changelogs.",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="exit 1 where the table differs")
    action.add_argument("--write", action="store_true", help=f"rewrite {FIXES_FILE.name}")
    args = parser.parse_args(argv)
    try:
        logs = series_changelogs()
    except kernel_fetch.FetchError as exc:
        print(f"first_fixed: {exc}", file=sys.stderr)
        return 2
    for series, log in logs.items():
        print(f"{series}: {log.source}")
    table = fixes()
    derived = derive(table, logs)
    for fix in table:
        cells = ", ".join(f"{s} {v or '-'}" for s, v in derived[fix.fix].items())
        print(f"{fix.fix}\n    {cells or 'named in no changelog'}")
    covered = coverage(logs)
    if args.write:
        _write(derived, FIXES_FILE)
        SERIES_FILE.write_text(json.dumps(covered, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {FIXES_FILE} and {SERIES_FILE}")
        return 0
    differences = _differences(table, derived)
    if covered != json.loads(SERIES_FILE.read_text(encoding="utf-8")):
        differences.append(f"{SERIES_FILE.name}: the changelogs cover {covered}")
    for line in differences:
        print(f"differs: {line}", file=sys.stderr)
    return 1 if args.check and differences else 0


if __name__ == "__main__":
    sys.exit(main())
