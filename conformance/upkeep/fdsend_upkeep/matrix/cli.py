"""The matrix's command line: ``python -m fdsend_upkeep.matrix`` (repository upkeep).

It runs the suite once per
available backend, or reads reports already made (``--from-reports``), writes
``compatibility.json`` and ``compatibility.md``. Exit status: 0 when every
FAIL/NON-STRICT cell is explained, 1 if not, 2 on errors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fdsend_conformance.plumbing.contract import load_contract
from fdsend_conformance.plumbing.registry import Availability, available_backends
from fdsend_conformance.tools.cli import add_backend_option
from fdsend_upkeep.matrix.build import (
    DRIVERS_DIR,
    build_matrix,
    check_schema,
    ordered_backends,
)
from fdsend_upkeep.matrix.render import render_markdown
from fdsend_upkeep.matrix.run import run_backend

__all__ = ["main"]


def _default_output_dir() -> Path:
    """``docs/`` of the checkout this module lives in, else ``./docs``."""
    root = Path(__file__).resolve().parents[4]
    if (root / "pyproject.toml").is_file() and (root / "conformance").is_dir():
        return root / "docs"
    return Path("docs")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fdsend_upkeep.matrix",
        description="Run the conformance suite against every installed backend and write "
        "compatibility.md and compatibility.json.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where to write the two files (default: the checkout's docs/, else ./docs)",
    )
    add_backend_option(parser, "run only this registered backend", "every available one")
    parser.add_argument(
        "--workers",
        default="auto",
        metavar="N",
        help="pytest-xdist workers per run: a number, 'auto' (default), or 0 to run serially",
    )
    parser.add_argument(
        "--reports-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each backend's report as DIR/<backend>.json (default: a temporary directory)",
    )
    parser.add_argument(
        "--drivers",
        action="store_true",
        help="add a column for every driver of the checkout's conformance/drivers/ "
        "(each built first, see docs/drivers.md)",
    )
    parser.add_argument(
        "--from-reports",
        action="store_true",
        help="do not run the suite: build the matrix from the reports already in --reports-dir",
    )
    return parser


def _read_reports(workdir: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """The reports already in ``workdir``, one per backend that has one (ValueError: too old)."""
    reports: dict[str, dict[str, Any]] = {}
    for name in names:
        path = workdir / f"{name}.json"
        if not path.is_file():
            print(f"matrix: no report {path}; skipping {name}", file=sys.stderr)
            continue
        reports[name] = json.loads(path.read_text(encoding="utf-8"))
        check_schema(reports[name], str(path))
    return reports


def _run_reports(
    workdir: Path,
    names: list[str],
    workers: str,
    known: dict[str, Availability],
    unavailable: list[dict[str, str]],
) -> dict[str, dict[str, Any]]:
    """Run the suite against each backend; one whose run fails joins ``unavailable``."""
    reports: dict[str, dict[str, Any]] = {}
    started = time.monotonic()
    for name in names:
        print(f"matrix: running the suite against {name} ...", file=sys.stderr, flush=True)
        spec = known[name].origin if known[name].origin.startswith("driver:") else name
        try:
            reports[name], note = run_backend(spec, workdir, workers, label=name)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"matrix: {name}: {exc}", file=sys.stderr)
            unavailable.append(
                {"name": name, "origin": known[name].origin, "error": f"run failed: {exc}"}
            )
            continue
        print(f"matrix: {name}: {note}", file=sys.stderr)
    print(f"matrix: suite runs took {time.monotonic() - started:.0f} s", file=sys.stderr)
    return reports


def main(argv: list[str] | None = None) -> int:
    """Run the matrix; 0 when every FAIL/NON-STRICT cell is explained, 1 if not, 2 on errors."""
    args = _parser().parse_args(argv)
    if args.from_reports and args.reports_dir is None:
        print("matrix: --from-reports needs --reports-dir", file=sys.stderr)
        return 2
    output_dir: Path = args.output_dir or _default_output_dir()
    registered = available_backends()
    if args.drivers:  # a driver is known by its folder's name; it runs as driver:FOLDER
        for folder in sorted(DRIVERS_DIR.iterdir()):
            if (folder / "build.sh").is_file():
                registered.append(Availability(folder.name, f"driver:{folder}", None, None))
    known = {a.name: a for a in registered}
    wanted = args.backend or [a.name for a in registered]
    unknown = [n for n in wanted if n not in known]
    if unknown:
        print(f"matrix: unknown backend(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    unavailable = [
        {"name": a.name, "origin": a.origin, "error": str(a.error)}
        for a in registered
        if a.error is not None and a.name in wanted
    ]
    for u in unavailable:
        print(f"matrix: skipping {u['name']}: unavailable ({u['error']})", file=sys.stderr)
    runnable = ordered_backends(n for n in wanted if known[n].error is None)

    with tempfile.TemporaryDirectory(prefix="fdsend-matrix-") as scratch:
        workdir = args.reports_dir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            reports = (
                _read_reports(workdir, runnable)
                if args.from_reports
                else _run_reports(workdir, runnable, args.workers, known, unavailable)
            )
        except ValueError as exc:  # a report too old to read
            print(f"matrix: {exc}", file=sys.stderr)
            return 2

    if not reports:
        print("matrix: no backend report to build a matrix from", file=sys.stderr)
        return 2
    matrix = build_matrix(load_contract(), reports, unavailable)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "compatibility.json").write_text(
        json.dumps(matrix, indent=2) + "\n", encoding="utf-8"
    )
    (output_dir / "compatibility.md").write_text(render_markdown(matrix), encoding="utf-8")
    print(
        f"matrix: wrote {output_dir / 'compatibility.md'} and compatibility.json", file=sys.stderr
    )
    if matrix["unexplained_cells"]:
        print(
            f"matrix: {matrix['unexplained_cells']} FAIL/NON-STRICT cell(s) are UNEXPLAINED: "
            "add entries to the backends' expected-failure files (see compatibility.md)",
            file=sys.stderr,
        )
        return 1
    return 0
