"""Running the packaged suite in a pytest subprocess, for the tests of the plugin."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

#: What :func:`suite_runner` gives: run the suite with these arguments -> (result, JSON report).
SuiteRun = Callable[..., "tuple[pytest.RunResult, dict[str, Any]]"]


def suite_runner(pytester: pytest.Pytester, **modules: str) -> SuiteRun:
    """Write ``modules`` (name=source) where the suite imports them, and run the packaged suite.

    Each run is a pytest subprocess with a JSON report, returned parsed
    (empty when the run wrote none).
    """
    pytester.makepyfile(**modules)
    pytester.syspathinsert()

    def run_suite(*args: str) -> tuple[pytest.RunResult, dict[str, Any]]:
        report = pytester.path / "report.json"
        result = pytester.runpytest_subprocess(
            "--pyargs",
            "fdsend_conformance",
            "-p",
            "no:cacheprovider",
            f"--conformance-report={report}",
            *args,
            timeout=120,
        )
        data = json.loads(report.read_text()) if report.exists() else {}
        return result, data

    return run_suite
