"""One run of the packaged suite against one backend, for the matrix.

Each run is its own interpreter, with the suite's empty pytest configuration (suite.ini), under
pytest-xdist with every test in a forked child when xdist is there; it
leaves the backend's conformance report as ``<backend>.json`` in a work
directory.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from fdsend_conformance.tools.cli import suite_command

__all__ = ["pytest_command", "run_backend"]

#: One pytest run of the suite against one backend.
MATRIX_RUN_TIMEOUT = 1800.0


def _has_xdist() -> bool:
    return importlib.util.find_spec("xdist") is not None


def pytest_command(backend: str, report: Path, workdir: Path, workers: str) -> list[str]:
    """The command that runs the packaged suite against ``backend``."""
    extra = ["-q", f"--fdsend-conformance-report={report}"]
    if workers != "0" and _has_xdist():
        # Each test in a forked child as well: a worker that dies takes no
        # other test's result with it.
        extra += ["-n", workers, "--fdsend-isolate=yes"]
    return suite_command(backend, extra, rootdir=workdir)


def run_backend(
    backend: str, workdir: Path, workers: str = "auto", label: str | None = None
) -> tuple[dict[str, Any], str]:
    """Run the suite against ``backend``; return (its report, a note on the run).

    The report is kept as ``<label>.json`` (default: the backend's name).
    The report is None-free: a run that wrote no report raises RuntimeError
    with the end of its output.
    """
    report = workdir / f"{label or backend}.json"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    done = subprocess.run(
        pytest_command(backend, report, workdir, workers),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=MATRIX_RUN_TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - started
    if not report.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"pytest exited {done.returncode} and wrote no report:\n{tail}")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data, f"exit {done.returncode} in {seconds:.0f} s"
