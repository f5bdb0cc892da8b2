"""The regressions table: consistent with the fix table and the reports.

The committed docs/kernel-regressions.json lists every fix of the fix table
(whose own checks, a clause named exists and so on, are test_kernel_fixes'),
every report it lists exists, and each verdict follows from those reports.
The verdict rules are checked on made-up reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fdsend_conformance.harness.kernel_fixes import Fix, fixes
from fdsend_conformance.tools import brackets

DOCS = Path(__file__).parents[2] / "docs"
REGRESSIONS = DOCS / "kernel-regressions.json"


def _committed() -> list[dict[str, Any]]:
    if not REGRESSIONS.exists():
        pytest.skip("docs/kernel-regressions.json not generated yet")
    rows: list[dict[str, Any]] = json.loads(REGRESSIONS.read_text(encoding="utf-8"))
    return rows


def test_the_regressions_table_lists_every_fix_of_the_table_and_its_clauses():
    rows = _committed()
    table = fixes()
    assert [row["fix"] for row in rows] == [fix.fix for fix in table]
    for row, fix in zip(rows, table):
        assert row["clauses"] == list(fix.clauses)
        assert row["images"] == {"without": fix.without, "with": fix.with_}
        assert set(row) >= {"fix", "commit", "without", "with", "clauses", "caught", "why_not"}


def test_every_listed_report_exists_and_each_verdict_follows_from_its_reports():
    by_title = {fix.fix: fix for fix in fixes()}
    for row in _committed():
        loaded = {}
        for side in ("without", "with"):
            paths = [DOCS / path for path in row["reports"][side]]
            missing = [str(path) for path in paths if not path.exists()]
            assert not missing, f"{row['fix']}: missing reports {missing}"
            loaded[side] = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
            releases = {r["environment"]["kernel"].removeprefix("Linux ") for r in loaded[side]}
            assert releases <= {row[side]}, f"{row['fix']}: reports of {releases}"
        caught, why_not = brackets.verdict(by_title[row["fix"]], loaded["without"], loaded["with"])
        assert (row["caught"], row["why_not"]) == (caught, why_not), row["fix"]
        assert (why_not is None) == caught


FIX = Fix(
    fix="af_unix: a fix",
    commit=None,
    first_fixed={"7.2": "7.2.8"},
    clauses=["KERNEL-23"],
    without="debian:trixie-backports/7.2.6",
    with_="debian:trixie-backports/7.2.9",
    source="a changelog",
    note="",
)


def _report(status: str) -> dict[str, Any]:
    return {
        "environment": {"kernel": "Linux 7.2.6+deb13-amd64"},
        "clauses": [{"id": "KERNEL-23", "status": status}, {"id": "KERNEL-22", "status": "PASS"}],
    }


def test_caught_only_when_it_fails_every_run_without_and_passes_every_run_with():
    fails, passes = [_report("FAIL")] * 3, [_report("PASS")] * 3
    assert brackets.verdict(FIX, fails, passes) == (True, None)
    flaky = [_report("FAIL"), _report("PASS"), _report("FAIL")]
    caught, why_not = brackets.verdict(FIX, flaky, passes)
    assert not caught
    assert why_not == "KERNEL-23 failed in 2 of 3 runs without the fix (PASS)"
    caught, why_not = brackets.verdict(FIX, fails, [_report("SKIPPED")] * 3)
    assert why_not == "KERNEL-23 passed in 0 of 3 runs with the fix (SKIPPED)"
    caught, why_not = brackets.verdict(FIX, fails, passes[:2])
    assert why_not == "not run yet: 3 of 3 runs without the fix, 2 of 3 with it"


def test_a_missing_image_is_the_reason():
    for side, text in (("without", "no image without"), ("with_", "no image with the")):
        fix = Fix(**{**FIX.__dict__, side: None})
        caught, why_not = brackets.verdict(fix, [], [])
        assert not caught
        assert str(why_not).startswith(text)


def test_a_clause_the_reports_lack_counts_as_not_run():
    fails = [_report("FAIL")] * 3
    other = Fix(**{**FIX.__dict__, "clauses": ["KERNEL-23", "KERNEL-99"]})
    caught, why_not = brackets.verdict(other, fails, [_report("PASS")] * 3)
    assert not caught
    assert "KERNEL-99 failed in 0 of 3 runs without the fix (NOT-RUN)" in str(why_not)


def test_reports_are_kept_by_image_and_run():
    paths = brackets.report_paths(Path("r"), "debian:trixie-backports/7.2.6")
    assert paths == [Path(f"r/trixie-backports_7.2.6/run{n}.json") for n in (1, 2, 3)]


def test_only_brackets_a_run_can_decide_are_run_each_image_with_its_clauses():
    half = Fix(**{**FIX.__dict__, "fix": "half", "with_": None})
    unchecked = Fix(**{**FIX.__dict__, "fix": "unchecked", "clauses": []})
    other = Fix(**{**FIX.__dict__, "fix": "other", "clauses": ["KERNEL-30", "KERNEL-23"]})
    assert brackets.runnable([FIX, half, unchecked, other]) == [FIX, other]
    assert brackets.images([FIX, half, unchecked, other]) == {
        "debian:trixie-backports/7.2.6": ["KERNEL-23", "KERNEL-30"],
        "debian:trixie-backports/7.2.9": ["KERNEL-23", "KERNEL-30"],
    }
    assert brackets.verdict(unchecked, [], []) == (False, "no clause checks it")


def test_each_run_is_a_boot_and_a_boot_that_brought_nothing_back_is_tried_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    calls: list[tuple[str, Path]] = []

    def boot(image: str, clauses: Any, target: Path, vm_args: Any) -> bool:
        calls.append((image, target))
        if target.name == "run2.json" and image.endswith("7.2.6") and len(calls) <= 6:
            return False  # this boot crashed
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("{}")
        return True

    monkeypatch.setattr(brackets, "fetch", lambda image: None)
    monkeypatch.setattr(brackets, "_boot", boot)
    lost = brackets.run(brackets.images([FIX]), tmp_path, jobs=1)
    assert lost == 0
    without = brackets.report_paths(tmp_path, str(FIX.without))
    with_ = brackets.report_paths(tmp_path, str(FIX.with_))
    assert calls == [
        *((str(FIX.without), path) for path in without),
        *((str(FIX.with_), path) for path in with_),
        (str(FIX.without), without[1]),
    ]
    assert all(p.exists() for p in without + with_)


def test_a_boot_that_fails_twice_is_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(brackets, "fetch", lambda image: None)
    monkeypatch.setattr(brackets, "_boot", lambda *args: False)
    assert brackets.run(brackets.images([FIX]), tmp_path, jobs=2) == 2 * brackets.RUNS


def test_list_images_prints_the_runnable_brackets_images(capsys: pytest.CaptureFixture[str]):
    assert brackets.main(["--list-images"]) == 0
    assert json.loads(capsys.readouterr().out) == list(brackets.images(fixes()))
