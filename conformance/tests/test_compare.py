"""``fdsend-conformance compare``: two reports, the clauses that changed."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from fdsend_conformance.tools.cli import main as cli_main
from fdsend_conformance.tools.compare import changes


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A report written by a real (small) kernel run of the packaged suite."""
    path = tmp_path_factory.mktemp("report") / "kernel.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fdsend_conformance",
            "run",
            "-m",
            "kernel",
            "-k",
            "scm_max_fd",
            "-q",
            "-p",
            "no:xdist",
            f"--conformance-report={path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return cast("dict[str, Any]", json.loads(path.read_text()))


def _clause(report: dict[str, Any], cid: str) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = report["clauses"]
    [clause] = [c for c in clauses if c["id"] == cid]
    return clause


def test_identical_reports_have_no_change(real_report):
    assert _clause(real_report, "KERNEL-1")["status"] == "PASS"
    assert changes(real_report, copy.deepcopy(real_report)) == []


def test_a_status_change_names_the_clause_and_the_failing_test(real_report):
    new = copy.deepcopy(real_report)
    clause = _clause(new, "KERNEL-1")
    clause["status"] = "FAIL"
    clause["failures"] = ["suite/test_kernel_limits.py::test_one_fd_more"]
    [change] = changes(real_report, new)
    assert (change.clause, change.old, change.new) == ("KERNEL-1", "PASS", "FAIL")
    assert change.newly_failing == ("test_kernel_limits.py::test_one_fd_more",)
    assert "KERNEL-1" in change.line()
    assert "now failing: test_kernel_limits.py::test_one_fd_more" in change.line()


def test_the_same_failing_test_run_from_another_folder_is_no_change(real_report):
    old, new = copy.deepcopy(real_report), copy.deepcopy(real_report)
    name = "test_kernel_limits.py::test_one_fd_more[x]"
    for report, prefix in ((old, "conformance/fdsend_conformance/suite/"), (new, "suite/")):
        _clause(report, "KERNEL-1").update(status="FAIL", failures=[prefix + name])
    assert changes(old, new) == []
    _clause(new, "KERNEL-1")["failures"] = ["suite/test_kernel_limits.py::test_other"]
    [change] = changes(old, new)
    assert (change.newly_failing, change.no_longer_failing) == (
        ("test_kernel_limits.py::test_other",),
        (name,),
    )


def test_other_failing_tests_under_the_same_status_are_a_change(real_report):
    old, new = copy.deepcopy(real_report), copy.deepcopy(real_report)
    for report, test in ((old, "s/t.py::a"), (new, "s/t.py::b")):
        _clause(report, "KERNEL-6").update(status="NON-STRICT", failures=[test])
    [change] = changes(old, new)
    assert (change.newly_failing, change.no_longer_failing) == (("t.py::b",), ("t.py::a",))


def test_a_clause_on_one_side_only_is_a_change(real_report):
    new = copy.deepcopy(real_report)
    dropped = new["clauses"].pop()
    [change] = changes(real_report, new)
    assert (change.clause, change.new) == (dropped["id"], None)
    assert "absent" in change.line()


def test_a_report_from_before_the_schema_field_compares_with_a_new_one(real_report):
    old = copy.deepcopy(real_report)
    del old["schema"], old["tests"]  # what the plugin wrote before schema 1
    _clause(old, "KERNEL-1").update(status="FAIL", failures=["t.py::test_x"])
    [change] = changes(old, real_report)
    assert (change.clause, change.old, change.new) == ("KERNEL-1", "FAIL", "PASS")
    assert change.no_longer_failing == ("t.py::test_x",)


def _write(path: Path, report: dict[str, Any]) -> str:
    path.write_text(json.dumps(report))
    return str(path)


def test_command_exit_status(real_report, tmp_path, capsys):
    old = _write(tmp_path / "old.json", real_report)
    changed = copy.deepcopy(real_report)
    _clause(changed, "KERNEL-1")["status"] = "FAIL"
    new = _write(tmp_path / "new.json", changed)
    assert cli_main(["compare", old, old]) == 0
    assert "no clause changed" in capsys.readouterr().out
    assert cli_main(["compare", old, new]) == 1
    out = capsys.readouterr().out
    assert "KERNEL-1" in out
    assert real_report["environment"]["kernel"] in out  # each side names its kernel
    garbage = tmp_path / "garbage.json"
    garbage.write_text("[]")
    assert cli_main(["compare", old, str(garbage)]) == 2
    assert "not a conformance report" in capsys.readouterr().err
