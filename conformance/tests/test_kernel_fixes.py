"""The fix table (kernel_fixes.json) is consistent, and known_bug reads it right."""

from __future__ import annotations

import re

import pytest

from fdsend_conformance.harness.kernel_fixes import (
    Fix,
    debian_version,
    fix_named,
    fixes,
    lacks_fix,
    parse_version,
    series_of,
    series_through,
)
from fdsend_conformance.plumbing.contract import load_contract
from fdsend_conformance.tools.kernel_fetch import DEBIAN_PREFIX, SUITES


def test_titles_are_unique():
    titles = [row.fix for row in fixes()]
    assert len(titles) == len(set(titles))


@pytest.mark.parametrize("row", fixes(), ids=lambda row: row.fix[:60])
def test_row_is_well_formed(row: Fix):
    contract = load_contract()
    assert set(row.clauses) <= set(contract), "a clause named is not in CONTRACT.md"
    assert all(clause.startswith("KERNEL-") for clause in row.clauses)
    for series, first in row.first_fixed.items():
        assert len(parse_version(series)) == 2
        if first is not None:
            assert parse_version(first)[:2] == parse_version(series), (series, first)
    for image in (row.without, row.with_):
        if image is not None:
            suite, _, version = image.removeprefix(DEBIAN_PREFIX).partition("/")
            assert image.startswith(DEBIAN_PREFIX), image
            assert suite in SUITES, image
            parse_version(version)
    for version in row.measured_without:
        parse_version(version)
    assert row.source
    assert row.note
    assert row.commit is None or re.fullmatch(r"[0-9a-f]{12,40}", row.commit)


def test_every_row_names_only_series_the_changelogs_cover():
    """A row leaves a series out only where the changelogs cannot tell (tools/first_fixed);
    every series it names, and every bracket image's series, has its coverage recorded."""
    covered = set(series_through())
    named = {
        series_of(image.rpartition("/")[2])
        for row in fixes()
        for image in (row.without, row.with_)
        if image
    }
    assert named <= covered
    assert {"5.10", "6.1", "6.12", "6.18", "7.2"} <= covered
    for row in fixes():
        assert set(row.first_fixed) <= covered, row.fix
        if not row.first_fixed:
            assert all(not lacks_fix(row, f"{series}.1") for series in covered)


def test_a_null_lacks_the_fix_only_up_to_what_the_changelog_covers():
    row = _row({"6.18": None})
    through = series_through()["6.18"]
    assert lacks_fix(row, through)
    later = ".".join(map(str, (*parse_version(through)[:2], parse_version(through)[2] + 1)))
    assert not lacks_fix(row, later)


def test_a_bracket_with_an_image_without_the_fix_names_a_clause_or_says_why():
    for row in fixes():
        if row.without is not None and not row.clauses:
            assert row.note, row.fix


def _row(first_fixed: dict[str, str | None], measured: tuple[str, ...] = ()) -> Fix:
    return Fix("t", None, first_fixed, [], None, None, "s", "n", measured)


@pytest.mark.parametrize(
    ("version", "lacks"),
    [
        ("6.1.176", True),  # before the first fixed 6.1
        ("6.1.177", False),
        ("6.1.190", False),
        ("6.12.57", True),  # the series never got it, up to what its changelog covers
        ("6.12.999", False),  # past that: not known
        ("7.2.6", False),  # a series the row does not name: not known
        ("6.18.44", True),  # measured without it
        ("7.3.4", False),  # the whole series has it
        ("7.3", False),  # a release candidate, as /proc/version names it
    ],
)
def test_lacks_fix(version, lacks):
    row = _row({"6.1": "6.1.177", "6.12": None, "7.3": "7.3"}, ("6.18.44",))
    assert lacks_fix(row, version) is lacks


def test_debian_version_reads_the_build_not_the_compiler():
    text = (
        "Linux version 6.1.0-57-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian "
        "12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP "
        "PREEMPT_DYNAMIC Debian 6.1.192-3 (2026-11-01)"
    )
    assert debian_version(text) == "6.1.192"
    backport = "Linux version 6.12.57+deb12-amd64 (gcc (Debian 12.2)) #1 Debian 6.12.57-1~bpo12+1"
    assert debian_version(backport) == "6.12.57"
    assert debian_version("Linux version 6.18.44-fc-v1252 (gcc (GCC) 15.3.0) #1 SMP @0") is None


def test_fix_named_refuses_an_unknown_title():
    with pytest.raises(KeyError, match="no fix"):
        fix_named("af_unix: a fix nobody made")
