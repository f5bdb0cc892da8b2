"""The benchmark command works (it never checks numbers)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from fdsend_conformance.bench.cfloor import compile_floor
from fdsend_conformance.bench.cli import Result, table, targets
from fdsend_conformance.bench.contestants import Case, call_floor, inline
from fdsend_conformance.bench.timing import batch_ns


def test_quick_run_writes_json_with_every_contestant(tmp_path):
    output = tmp_path / "bench.json"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "fdsend_conformance.bench",
            "--quick",
            "--backend",
            "reference",
            "--backend",
            "stdlib",
            "--json",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "targets (from one run; informational)" in run.stdout
    data = json.loads(output.read_text())
    assert {"machine", "reps", "results", "targets", "notes"} <= set(data)
    names = {r["contestant"] for r in data["results"]}
    assert {"inline", "call-floor", "reference", "stdlib"} <= names
    assert all(r["median_ns"] > 0 and len(r["samples_ns"]) == 3 for r in data["results"])


def test_unknown_backend_is_noted_not_fatal(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "fdsend_conformance.bench", "--quick", "--backend", "no.such:thing"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0
    assert "backend no.such:thing skipped" in run.stdout


@pytest.mark.parametrize("cross_process", [False, True], ids=["in-process", "two-processes"])
def test_a_batch_runs_rounds_and_cleans_up(cross_process):
    for contestant in (inline, call_floor):
        assert batch_ns(contestant, Case(3, 16, cross_process), 5) > 0


@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler"
)
def test_c_floor_compiles_and_measures(tmp_path):
    floor, note = compile_floor(tmp_path)
    assert floor is not None, note
    assert floor.round_ns(2, 16, 10, cross_process=False) > 0
    assert floor.round_ns(2, 16, 10, cross_process=True) > 0


def test_table_and_targets_render_from_results():
    case = Case(1, 16, False)
    results = [
        Result(case.label, name, 1, [1000.0, 1100.0, 1200.0])
        for name in ("inline", "call-floor", "reference", "stdlib")
    ]
    lines = table(results)
    assert any(line.startswith("reference") for line in lines)
    checked = {t.what: t for t in targets(results)}
    assert checked["reference / call-floor, 1 fd"].met is True
    assert checked["reference / call-floor, 253 fds"].met is None
