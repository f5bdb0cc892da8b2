"""first_fixed reads Debian's changelogs right: entries, wrapped titles, stable releases."""

from __future__ import annotations

from datetime import datetime, timezone

from fdsend_conformance.harness.kernel_fixes import series_of
from fdsend_conformance.tools.first_fixed import (
    UNKNOWN,
    Changelog,
    Listings,
    first_fixed,
    normalise,
    parse_changelog,
)

#: A made-up changelog in Debian's shape, newest entry first.
CHANGELOG = """\
linux (6.12.63-1) trixie; urgency=medium

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.58
    - net: something else
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.12.60
    - af_unix: Read sk_peek_offset() again after sleeping in
      unix_stream_read_generic().
    - [amd64] af_unix: Tagged fix. (CVE-2026-1))

  [ A Maintainer ]
  * af_unix: A patch taken before the stable tree

 -- A Maintainer <m@example.org>  Mon, 01 Jan 2026 00:00:00 +0000

linux (6.12~rc6-1~exp1) experimental; urgency=medium

  * New upstream release candidate

 -- A Maintainer <m@example.org>  Mon, 01 Dec 2025 00:00:00 +0000

linux (6.9.8-1) unstable; urgency=medium

  * New upstream stable update:
    https://www.kernel.org/pub/linux/kernel/v6.x/ChangeLog-6.9.8
    - af_unix: An old fix.

 -- A Maintainer <m@example.org>  Mon, 01 Jul 2024 00:00:00 +0000
"""


def _log() -> Changelog:
    return Changelog("test", parse_changelog(CHANGELOG))


def test_entries_newest_first_with_their_titles():
    entries = parse_changelog(CHANGELOG)
    assert [entry.version for entry in entries] == ["6.12.63-1", "6.12~rc6-1~exp1", "6.9.8-1"]
    assert (
        entries[0].titles.items()
        >= {
            "net: something else": "6.12.58",
            "af_unix: read sk_peek_offset() again after sleeping in unix_stream_read_generic": (
                "6.12.60"
            ),
            "af_unix: tagged fix": "6.12.60",
            "af_unix: a patch taken before the stable tree": "6.12.63",
        }.items()
    )
    assert entries[1].upstream == "6.12-rc6"


def test_first_fixed_is_the_stable_release_the_title_is_listed_under():
    title = "af_unix: Read sk_peek_offset() again after sleeping in unix_stream_read_generic()."
    assert first_fixed(_log(), title, "6.12") == "6.12.60"
    assert first_fixed(_log(), "af_unix: Tagged fix.", "6.12") == "6.12.60"
    assert first_fixed(_log(), "af_unix: A patch taken before the stable tree", "6.12") == "6.12.63"


def test_a_fix_of_an_older_series_is_in_the_whole_series():
    assert first_fixed(_log(), "af_unix: An old fix.", "6.12") == "6.12"


def test_a_fix_no_entry_lists_is_null():
    assert first_fixed(_log(), "af_unix: A fix nobody made.", "6.12") is None


def test_titles_match_whatever_the_changelog_adds():
    plain = normalise("af_unix: Initialise scc_index in unix_add_edge().")
    tagged = "[amd64] af_unix: Initialise scc_index in unix_add_edge(). (CVE-2025-1))."
    assert normalise(tagged) == plain
    assert normalise("af_unix:  Initialise scc_index in\n unix_add_edge()") == plain


def test_series_of_a_release_and_a_candidate():
    assert series_of("6.12.63") == "6.12"
    assert series_of("7.3-rc7") == "7.3"


def test_entries_carry_their_upload_date():
    dates = [entry.date for entry in parse_changelog(CHANGELOG)]
    assert dates == [
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        datetime(2025, 12, 1, tzinfo=timezone.utc),
        datetime(2024, 7, 1, tzinfo=timezone.utc),
    ]


def test_a_series_that_lists_no_fix_but_began_after_a_stable_update_did_has_it_from_its_base():
    listed = Listings(newest_series="6.1", since=datetime(2024, 6, 1, tzinfo=timezone.utc))
    began = datetime(2024, 11, 1, tzinfo=timezone.utc)
    assert first_fixed(_log(), "af_unix: A fix of 6.1 only.", "6.12", listed, began) == "6.12"


def test_a_series_that_lists_no_fix_while_a_newer_series_took_it_as_stable_lacks_it():
    listed = Listings(newest_series="7.2", since=datetime(2024, 6, 1, tzinfo=timezone.utc))
    began = datetime(2024, 11, 1, tzinfo=timezone.utc)
    assert first_fixed(_log(), "af_unix: A fix of 7.2.", "6.12", listed, began) is None
    assert first_fixed(_log(), "af_unix: A fix of 7.2.", "7.2", listed, began) is None


def test_a_series_that_began_before_the_first_listing_is_unknown():
    """A backport listed long after mainline took the fix says nothing of a series between."""
    listed = Listings(newest_series="6.1", since=datetime(2025, 6, 1, tzinfo=timezone.utc))
    began = datetime(2024, 11, 1, tzinfo=timezone.utc)
    assert first_fixed(_log(), "af_unix: A late backport.", "6.12", listed, began) == UNKNOWN
