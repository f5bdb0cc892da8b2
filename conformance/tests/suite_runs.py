"""Running the packaged suite in a pytest subprocess, and reading its report, for the tests
of the plugin, of broken backends and of drivers."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: What :func:`suite_runner` gives: run the suite with these arguments -> (result, JSON report).
SuiteRun = Callable[..., "tuple[pytest.RunResult, dict[str, Any]]"]


def run_suite(
    pytester: pytest.Pytester, *args: str, suite: str = "fdsend_conformance", timeout: float = 120
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run the packaged ``suite`` (a package or module of it) with ``args`` in a pytest subprocess.

    Returns the run's result and its JSON report, parsed (empty when the
    run wrote none).
    """
    report = pytester.path / "report.json"
    result = pytester.runpytest_subprocess(
        "--pyargs",
        suite,
        "-p",
        "no:cacheprovider",
        f"--conformance-report={report}",
        *args,
        timeout=timeout,
    )
    data = json.loads(report.read_text()) if report.exists() else {}
    return result, data


def suite_runner(pytester: pytest.Pytester, **modules: str) -> SuiteRun:
    """Write ``modules`` (name=source) where the suite imports them: :func:`run_suite` for them."""
    pytester.makepyfile(**modules)
    pytester.syspathinsert()
    return functools.partial(run_suite, pytester)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    """The status of each clause of a JSON report, by clause id."""
    return {c["id"]: c["status"] for c in report["clauses"]}


def clause_entry(report: dict[str, Any], clause_id: str) -> dict[str, Any]:
    """The entry of clause ``clause_id`` in a JSON report."""
    entries: list[dict[str, Any]] = [c for c in report["clauses"] if c["id"] == clause_id]
    [entry] = entries
    return entry


def expected_file(pytester: pytest.Pytester, lines: str) -> Path:
    """An expected-failure file of ``lines`` in the test's folder, for ``--expected``."""
    path = pytester.path / "expected.txt"
    path.write_text(lines)
    return path
