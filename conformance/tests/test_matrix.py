"""The compatibility matrix: the committed docs are current, every failure is explained."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from fdsend_conformance.plumbing.contract import Clause, load_contract
from fdsend_conformance.plumbing.expected import EXPECTED_DIR, parse_expected
from fdsend_upkeep import matrix
from fdsend_upkeep.matrix.build import DRIVERS_DIR

DOCS = Path(__file__).resolve().parents[2] / "docs"
COMMITTED_JSON = DOCS / "compatibility.json"
COMMITTED_MD = DOCS / "compatibility.md"
REGENERATE = "python -m fdsend_upkeep.matrix"


# The committed files.


@pytest.fixture(scope="module")
def committed() -> dict[str, Any]:
    if not COMMITTED_JSON.is_file():
        pytest.fail(f"{COMMITTED_JSON} is missing: run `{REGENERATE}` and commit docs/")
    data: dict[str, Any] = json.loads(COMMITTED_JSON.read_text(encoding="utf-8"))
    return data


def test_committed_matrix_has_the_contracts_clauses_in_order(committed):
    ids = [row["id"] for row in committed["clauses"]]
    assert ids == list(load_contract()), (
        f"docs/compatibility.json is stale against CONTRACT.md: run `{REGENERATE}`"
    )


def test_committed_matrix_titles_and_levels_match_the_contract(committed):
    contract = load_contract()
    stale = [
        row["id"]
        for row in committed["clauses"]
        if (row["title"], row["keyword"])
        != (contract[row["id"]].title, contract[row["id"]].keyword)
    ]
    assert stale == [], f"titles or levels changed: {stale}; run `{REGENERATE}`"


def test_every_fail_and_non_strict_cell_is_explained(committed):
    missing = [
        f"{row['id']} x {name}: {cell['status']}"
        + (f" (unexplained: {', '.join(cell['unexplained'])})" if cell.get("unexplained") else "")
        for row in committed["clauses"]
        for name, cell in row["results"].items()
        if cell["status"] in ("FAIL", "NON-STRICT")
        and not row["backend_independent"]
        and (cell.get("unexplained") or not cell.get("explanations"))
    ]
    assert missing == [], "cells without an expected-failure entry:\n  " + "\n  ".join(missing)
    assert committed["unexplained_cells"] == 0


def test_every_committed_explanation_is_in_the_backends_expected_file(committed):
    """Editing an expected-failure file without regenerating docs/ fails here."""
    files = {b["name"]: b["expected_file"] for b in committed["backends"]}
    stale = []
    for backend, expected_file in files.items():
        cells = [
            (row["id"], row["results"][backend])
            for row in committed["clauses"]
            if not row["backend_independent"]
        ]
        shown = [
            (clause_id, e["selector"], e["reason"])
            for clause_id, cell in cells
            for e in cell.get("explanations", [])
        ]
        if not shown:
            continue
        own = {
            f"expected/{backend}.txt": EXPECTED_DIR / f"{backend}.txt",
            f"drivers/{backend}/expected.txt": DRIVERS_DIR / backend / "expected.txt",
        }
        assert expected_file in own, (
            f"{backend}: cells are explained from {expected_file!r}, not its own file"
        )
        path = own[expected_file]
        text = path.read_text(encoding="utf-8")
        entries = {(e.selector, e.reason) for e in parse_expected(text, str(path))}
        stale += [
            f"{backend} x {clause_id}: {selector}  {reason}"
            for clause_id, selector, reason in shown
            if (selector, reason) not in entries
        ]
    assert stale == [], (
        f"explanations no longer in the backend's expected file (run `{REGENERATE}`):\n  "
        + "\n  ".join(stale)
    )


def test_committed_markdown_is_rendered_from_the_committed_json(committed):
    assert COMMITTED_MD.read_text(encoding="utf-8") == matrix.render_markdown(committed), (
        f"docs/compatibility.md and compatibility.json disagree: run `{REGENERATE}`"
    )


def test_committed_markdown_lists_the_clauses_in_contract_order(committed):
    text = COMMITTED_MD.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z]+-\d+)` ", text, flags=re.MULTILINE)
    contract = load_contract()
    backend_bound = [c for c in contract.values() if c.section != matrix.KERNEL_SECTION]
    kernel = [c for c in contract.values() if c.section == matrix.KERNEL_SECTION]
    assert rows == [c.id for c in backend_bound] + [c.id for c in kernel]


def test_committed_matrix_covers_the_built_in_backends_and_passfd(committed):
    names = [b["name"] for b in committed["backends"]]
    assert names[:3] == ["reference", "stdlib", "multiprocessing"]
    assert "passfd" in [u["package"] for u in committed["not_installable"]]
    for backend in committed["backends"]:
        assert backend["version"] not in ("", "unknown")


def test_committed_matrix_lists_the_packages_of_this_matrix_module(committed):
    considered = [(u["package"], u["version"], u["outcome"]) for u in committed["considered"]]
    assert considered == list(matrix.CONSIDERED), f"run `{REGENERATE}`"
    elsewhere = [(u["name"], u["what"], u["outcome"]) for u in committed["not_on_linux"]]
    assert elsewhere == list(matrix.NOT_ON_LINUX), f"run `{REGENERATE}`"
    assert "I_SENDFD" in [name for name, _, _ in elsewhere]
    unusable = [
        (u["package"], u["version"], u["outcome"], u["error"]) for u in committed["not_installable"]
    ]
    assert unusable == [
        (u.package, u.version, u.outcome, u.error) for u in matrix.NOT_INSTALLABLE
    ], f"run `{REGENERATE}`"


# Building and rendering, on made-up reports.

CLAUSES = {
    "ABC-1": Clause("ABC-1", "First", "MUST", "ABC"),
    "ABC-2": Clause("ABC-2", "Second", "MUST", "ABC"),
    "ABC-3": Clause("ABC-3", "Third", "SHOULD", "ABC"),
    "KERNEL-1": Clause("KERNEL-1", "The kernel", "MUST", "KERNEL"),
}


def _report(name: str, statuses: dict[str, tuple[str, list[str]]]) -> dict[str, Any]:
    """A made-up report; each failing test names the clauses it fails."""
    clauses_of: dict[str, list[str]] = {}
    for cid, (_, failures) in statuses.items():
        for nodeid in failures:
            clauses_of.setdefault(nodeid, []).append(cid)
    return {
        "schema": 1,
        "backend": {
            "name": name,
            "version": "1.0",
            "origin": f"pkg.{name}",
            "truncation": "attribute",
            "unsupported": [],
        },
        "environment": {"python": "CPython 3.x", "kernel": "Linux x", "machine": "x86_64"},
        "clauses": [
            {"id": cid, "status": status, "failures": failures, "unexpected_passes": []}
            for cid, (status, failures) in statuses.items()
        ],
        "tests": [
            {"nodeid": nodeid, "clauses": ids, "outcome": "failed"}
            for nodeid, ids in clauses_of.items()
        ],
    }


def test_a_failing_test_is_explained_by_the_first_entry_that_matches():
    report = _report(
        "lib",
        {
            "ABC-1": ("FAIL", ["suite/test_a.py::test_one", "suite/test_a.py::test_both"]),
            "ABC-2": ("FAIL", ["suite/test_a.py::test_both"]),
            "ABC-3": ("NON-STRICT", ["suite/test_a.py::test_should"]),
        },
    )
    entries = parse_expected(
        "test_a.py::test_both  the specific reason\nABC-1  the clause reason\n"
        "ABC-2  never reached: test_both matched first\n"
    )
    explained = matrix.explain(report, entries)
    assert [e.reason for e in explained["ABC-1"][0]] == ["the specific reason", "the clause reason"]
    assert [e.reason for e in explained["ABC-2"][0]] == ["the specific reason"]
    assert explained["ABC-3"] == ([], ["test_a.py::test_should"])


def test_a_test_the_run_marked_expected_is_explained_by_the_entry_it_named():
    report = _report("lib", {"OWN-1": ("FAIL", ["suite/t.py::test_x", "suite/t.py::test_y"])})
    for test in report["tests"]:
        test["outcome"] = "expected-failure"  # by the per-call OWN-1 check, in the run
        test["reason"] = "expected: changes the socket (/somewhere/expected/lib.txt:2)"
    entries = parse_expected("t.py::test_z  another\nt.py::test_own  changes the socket\n")
    explained = matrix.explain(report, entries)
    assert [e.selector for e in explained["OWN-1"][0]] == ["t.py::test_own"]
    assert explained["OWN-1"][1] == []
    report["tests"][1]["reason"] = "expected: another (/somewhere/expected/lib.txt:2)"
    assert matrix.explain(report, entries)["OWN-1"][1] == ["t.py::test_y"]  # not that entry


def test_a_report_without_tests_is_refused_by_schema():
    report = _report("lib", {"ABC-1": ("FAIL", ["suite/t.py::test_x"])})
    del report["schema"], report["tests"]
    with pytest.raises(ValueError, match="report schema 0, the matrix needs 1"):
        matrix.explain(report, [])


def test_an_entry_for_another_clause_of_the_test_explains_it():
    report = _report(
        "lib",
        {"ABC-1": ("FAIL", ["suite/t.py::test_x"]), "ABC-2": ("FAIL", ["suite/t.py::test_x"])},
    )
    explained = matrix.explain(report, parse_expected("ABC-2  because\n"))
    assert [e.selector for e in explained["ABC-1"][0]] == ["ABC-2"]
    assert explained["ABC-1"][1] == []


def _made_up_matrix() -> dict[str, Any]:
    reports = {
        "lib": _report(
            "lib",
            {
                "ABC-1": ("FAIL", ["suite/t.py::test_x"]),
                "ABC-2": ("FAIL", ["suite/t.py::test_y"]),
                "ABC-3": ("PASS", []),
                "KERNEL-1": ("PASS", []),
            },
        ),
        "reference": _report(
            "reference",
            {k: ("PASS", []) for k in ("ABC-1", "ABC-2", "ABC-3", "KERNEL-1")},
        ),
    }
    return matrix.build_matrix(
        CLAUSES,
        reports,
        unavailable=[{"name": "gone", "origin": "pkg.gone", "error": "ModuleNotFoundError: x"}],
        expected={"lib": parse_expected("ABC-1  lib does it its own way\n")},
        expected_files={"lib": "expected/lib.txt"},
    )


def test_build_orders_backends_and_counts_unexplained_cells():
    data = _made_up_matrix()
    assert [b["name"] for b in data["backends"]] == ["reference", "lib"]
    assert [row["id"] for row in data["clauses"]] == list(CLAUSES)
    lib = {row["id"]: row["results"]["lib"] for row in data["clauses"]}
    assert lib["ABC-1"]["explanations"] == [
        {"selector": "ABC-1", "reason": "lib does it its own way"}
    ]
    assert lib["ABC-2"]["unexplained"] == ["t.py::test_y"]
    assert data["unexplained_cells"] == 1
    assert data["backends"][1]["must"] == {"FAIL": 2}
    assert data["kernel_clauses_from"] == "reference"
    assert [row["backend_independent"] for row in data["clauses"]] == [False, False, False, True]


def test_markdown_explains_flags_and_lists_what_is_missing():
    text = matrix.render_markdown(_made_up_matrix())
    assert "| `ABC-1` First | MUST | PASS | **FAIL** |" in text
    assert "| `ABC-2` Second | MUST | PASS | **FAIL (UNEXPLAINED)** |" in text
    assert "- **ABC-1** FAIL: lib does it its own way" in text
    assert "**UNEXPLAINED**: `t.py::test_y`" in text
    assert "| `KERNEL-1` The kernel | MUST | PASS |" in text
    assert "**gone** (registered backend): unavailable here" in text
    assert "**passfd 1.0.2** (PyPI): not installable on Python 3" in text
    # The kernel clause is shown once, not in the per-backend table.
    assert text.count("`KERNEL-1`") == 1


def test_pytest_command_runs_the_packaged_suite_in_isolation(tmp_path):
    command = matrix.pytest_command("lib", tmp_path / "lib.json", tmp_path, "auto")
    assert command[:5] == [sys.executable, "-m", "pytest", "--pyargs", "fdsend_conformance"]
    assert "--fdsend-backend=lib" in command
    assert f"--fdsend-conformance-report={tmp_path / 'lib.json'}" in command
    assert "-n" not in matrix.pytest_command("lib", tmp_path / "r.json", tmp_path, "0")


# The command line, from reports already made.


def _write_reference_report(directory: Path, status: str) -> None:
    failures = ["suite/test_transfer.py::test_made_up"] if status == "FAIL" else []
    statuses: dict[str, tuple[str, list[str]]] = {cid: ("PASS", []) for cid in load_contract()}
    first = next(iter(statuses))
    statuses[first] = (status, failures)
    (directory / "reference.json").write_text(
        json.dumps(_report("reference", statuses)), encoding="utf-8"
    )


def test_main_writes_both_files_from_reports(tmp_path):
    _write_reference_report(tmp_path, "PASS")
    out = tmp_path / "docs"
    argv = ["--backend", "reference", "--reports-dir", str(tmp_path), "--from-reports"]
    assert matrix.main([*argv, "--output-dir", str(out)]) == 0
    data = json.loads((out / "compatibility.json").read_text(encoding="utf-8"))
    assert [row["id"] for row in data["clauses"]] == list(load_contract())
    assert (out / "compatibility.md").read_text(encoding="utf-8") == matrix.render_markdown(data)


def test_main_fails_loudly_on_an_unexplained_failure(tmp_path, capsys):
    _write_reference_report(tmp_path, "FAIL")
    argv = ["--backend", "reference", "--reports-dir", str(tmp_path), "--from-reports"]
    assert matrix.main([*argv, "--output-dir", str(tmp_path / "docs")]) == 1
    assert "UNEXPLAINED" in capsys.readouterr().err


def test_main_refuses_an_unknown_backend(tmp_path, capsys):
    assert matrix.main(["--backend", "no-such-backend", "--output-dir", str(tmp_path)]) == 2
    assert "unknown backend" in capsys.readouterr().err
