"""``fdsend-conformance kernels``: the clause-by-kernel matrix and its reasons."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fdsend_conformance.tools import kernels

DOCS = Path(__file__).parents[2] / "docs"


def _clause(cid: str, status: str = "PASS", **fields: Any) -> dict[str, Any]:
    clause = {
        "id": cid,
        "title": f"title of {cid}",
        "keyword": "MUST",
        "status": status,
        "failures": [],
        "skips": {},
    }
    clause.update(fields)
    return clause


def _report(release: str, *clauses: dict[str, Any]) -> dict[str, Any]:
    return {
        "environment": {"kernel": f"Linux {release}", "python": "CPython 3.11.7"},
        "totals": {},
        "clauses": list(clauses),
    }


NEW = _report("6.18.4", _clause("K-1"), _clause("K-2"), _clause("K-3"), _clause("K-4", "NOT-RUN"))


def _cells(old: dict[str, Any]) -> dict[str, dict[str, Any]]:
    matrix = kernels.build([old, NEW])
    assert matrix["reference"] == "6.18.4"
    return {row["id"]: row["cells"]["6.1.0-5-amd64"] for row in matrix["clauses"]}


def test_only_differing_cells_have_reasons_absent_features_and_changed_behaviour():
    skip = "SO_PASSPIDFD is unknown to this kernel (ENOPROTOOPT; Linux >= 6.5)"
    old = _report(
        "6.1.0-5-amd64",
        _clause("K-1"),
        _clause("K-2", "SKIPPED", skips={"a/test_x.py::t1": skip, "a/test_x.py::t2": skip}),
        _clause("K-3", "NON-STRICT", failures=["a/b/test_y.py::t[p]"]),
    )
    cells = _cells(old)
    assert cells["K-1"] == {"status": "PASS", "expected": False, "differs": False, "reason": ""}
    assert cells["K-2"]["differs"]
    assert cells["K-2"]["reason"] == f"feature absent: {skip}"
    assert cells["K-3"]["reason"] == "behaviour changed: fails test_y.py::t[p]"
    assert "K-4" not in cells  # ran nowhere


def test_a_clause_failing_only_on_the_reference_and_one_missing_are_explained():
    new_fails = copy.deepcopy(NEW)
    new_fails["clauses"][0] = _clause("K-1", "FAIL", failures=["s/test_z.py::t"])
    old = _report("6.1.0-5-amd64", _clause("K-1"), _clause("K-2"))
    matrix = kernels.build([old, new_fails])
    cells = {row["id"]: row["cells"]["6.1.0-5-amd64"] for row in matrix["clauses"]}
    assert cells["K-1"]["reason"] == "behaviour changed: PASS here, FAIL on 6.18.4 (test_z.py::t)"
    assert cells["K-3"] == {
        "status": "NOT-RUN",
        "expected": False,
        "differs": True,
        "reason": "not run on this kernel",
    }


def test_kernels_are_ordered_by_version_and_the_markdown_names_each_difference(tmp_path: Path):
    for release in ("6.12.117+deb12-amd64", "6.1.0-57-amd64", "6.18.4"):
        old = _report(release, _clause("K-1", "SKIPPED", skips={"t.py::a": "absent"}))
        if release == "6.18.4":
            old = _report(release, _clause("K-1"))
        (tmp_path / f"kernel-{release}.json").write_text(json.dumps(old))
    reports = kernels.load_reports(tmp_path)
    assert [kernels.release_of(r) for r in reports] == [
        "6.1.0-57-amd64",
        "6.12.117+deb12-amd64",
        "6.18.4",
    ]
    text = kernels.render_markdown(kernels.build(reports))
    assert "| `K-1` title of K-1 | MUST | **SKIPPED** | **SKIPPED** | PASS |" in text
    assert "- `K-1` on 6.1.0-57-amd64: feature absent: absent" in text


def test_no_reports_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert kernels.main(["--reports", str(tmp_path), "--output-dir", str(tmp_path)]) == 2
    assert "no kernel-*.json" in capsys.readouterr().err


@pytest.mark.skipif(not (DOCS / "kernels").is_dir(), reason="no committed kernel reports")
def test_the_committed_matrix_is_what_the_committed_reports_make(tmp_path: Path):
    assert kernels.main(["--reports", str(DOCS / "kernels"), "--output-dir", str(tmp_path)]) == 0
    assert (tmp_path / "kernels.md").read_text() == (DOCS / "kernels.md").read_text()
    assert (tmp_path / "kernels.json").read_text() == (DOCS / "kernels.json").read_text()
