"""The compatibility matrix: the suite run against every installed backend.

::

    python -m fdsend_conformance.matrix [--backend NAME ...] [--output-dir DIR]

runs the packaged suite once per backend (each in its own interpreter, with
an empty pytest configuration, under pytest-xdist with every test in a
forked child when xdist is there) and writes ``compatibility.json`` and
``compatibility.md``: one row per clause of CONTRACT.md, one column per
backend, each cell PASS / FAIL / NON-STRICT / UNSUPPORTED (or SKIPPED /
NOT-RUN). Every FAIL or NON-STRICT cell is explained by the backend's
expected-failure file (``expected/<backend>.txt``): the entries that cover
its failing tests. A failing test that no entry covers is *unexplained*,
which the matrix flags loudly and answers with exit status 1.

Clauses of the KERNEL section test the kernel, not the backend: they are
shown once, below the main table, with the result of the first backend run
(the reference when it ran), and any run that disagrees is named. No
backend's expected-failure file explains them: a kernel that fails one
differs from what the contract measured, whatever the backend.

Registered backends whose package is missing are listed as unavailable; the
PyPI packages that could not be used at all are in :data:`NOT_INSTALLABLE`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdsend_conformance.contract import Clause, load_contract
from fdsend_conformance.expected import ExpectedFailure, builtin_expected_file, parse_expected
from fdsend_conformance.registry import available_backends

__all__ = [
    "CONSIDERED",
    "KERNEL_SECTION",
    "NOT_INSTALLABLE",
    "Unusable",
    "build_matrix",
    "explain",
    "main",
    "render_markdown",
    "run_backend",
]

#: The contract section whose clauses check the kernel, whatever the backend.
KERNEL_SECTION = "KERNEL"

#: Statuses that need an explanation from the expected-failure file.
EXPLAINED_STATUSES = frozenset({"FAIL", "NON-STRICT"})

#: Backends shown first, in this order; the rest follow by name.
_FIRST = ("reference", "stdlib", "multiprocessing")

#: Seconds one backend's run may take before it is abandoned.
_RUN_TIMEOUT = 1800.0


@dataclass(frozen=True)
class Unusable:
    """A PyPI package that passes fds but that no adapter could be written for."""

    package: str
    version: str
    outcome: str
    error: str


#: Measured on CPython 3.11.7 (pip 24, Linux 6.18) when this module was written.
NOT_INSTALLABLE: tuple[Unusable, ...] = (
    Unusable(
        "passfd",
        "1.0.2",
        "not installable on Python 3: its setup.py is Python 2 code",
        "pip install passfd==1.0.2: SyntaxError: multiple exception types must be "
        "parenthesized (except OSError, exc:)",
    ),
    Unusable(
        "python-passfd",
        "0.2",
        "installs, but its C extension uses the Python 2 C API and cannot be imported",
        "import passfd: ImportError: _passfd.cpython-311-x86_64-linux-gnu.so: "
        "undefined symbol: Py_InitModule",
    ),
    Unusable(
        "sendmsg",
        "1.0.1",
        "not installable on Python 3: its setup.py is Python 2 code",
        "pip install sendmsg: SyntaxError: Missing parentheses in call to 'print'",
    ),
    Unusable(
        "sidewinder",
        "0.1.0",
        "not installable as published: setup.py imports Cython without declaring it "
        "(unmaintained since 2011; one fd per call, no payload)",
        "pip install sidewinder: ModuleNotFoundError: No module named 'Cython'",
    ),
)

#: Maintained packages that pass fds only inside a protocol of their own, with
#: no call that sends fds on a caller's socket: nothing for an adapter to map.
CONSIDERED: tuple[tuple[str, str, str], ...] = (
    (
        "asyncvarlink",
        "0.3.3",
        "passes fds only inside varlink messages on its own connections",
    ),
    (
        "dbus-fast",
        "5.2.0",
        "passes fds only inside D-Bus messages (Message.unix_fds) on its bus connections",
    ),
    (
        "jeepney",
        "0.9.0",
        "passes fds only inside D-Bus messages (FileDescriptor, enable_fds=True)",
    ),
    (
        "sdbus",
        "0.14.3",
        "passes fds only as D-Bus 'h' arguments, through libsystemd's sd-bus",
    ),
    (
        "systemd-python",
        "235",
        "systemd.daemon.notify(fds=...) sends fds only to $NOTIFY_SOCKET (sd_pid_notify_with_fds)",
    ),
)


# Running the suite.


def _default_output_dir() -> Path:
    """``docs/`` of the checkout this module lives in, else ``./docs``."""
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").is_file() and (root / "conformance").is_dir():
        return root / "docs"
    return Path("docs")


def _has_xdist() -> bool:
    return importlib.util.find_spec("xdist") is not None


def pytest_command(backend: str, report: Path, workdir: Path, workers: str) -> list[str]:
    """The command that runs the packaged suite against ``backend``."""
    command = [sys.executable, "-m", "pytest", "--pyargs", "fdsend_conformance"]
    command += ["-c", os.devnull, "--rootdir", str(workdir), "-p", "no:cacheprovider", "-q"]
    command += [f"--fdsend-backend={backend}", f"--fdsend-conformance-report={report}"]
    if workers != "0" and _has_xdist():
        # Each test in a forked child as well: a worker that dies takes no
        # other test's result with it.
        command += ["-n", workers, "--fdsend-isolate=yes"]
    return command


def run_backend(backend: str, workdir: Path, workers: str = "auto") -> tuple[dict[str, Any], str]:
    """Run the suite against ``backend``; return (its report, a note on the run).

    The report is None-free: a run that wrote no report raises RuntimeError
    with the end of its output.
    """
    report = workdir / f"{backend}.json"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    done = subprocess.run(
        pytest_command(backend, report, workdir, workers),
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=_RUN_TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - started
    if not report.is_file():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"pytest exited {done.returncode} and wrote no report:\n{tail}")
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data, f"exit {done.returncode} in {seconds:.0f} s"


# Explaining cells.


def _test_id(nodeid: str) -> str:
    """A report's node id as expected-failure selectors see it."""
    path, _, rest = nodeid.partition("::")
    return f"{os.path.basename(path)}::{rest}"


def explain(
    report: Mapping[str, Any], entries: Sequence[ExpectedFailure]
) -> dict[str, tuple[list[ExpectedFailure], list[str]]]:
    """For each FAIL/NON-STRICT clause: (entries covering it, unexplained tests).

    A failing test is covered by the first entry that matches it, as in the
    run itself; an entry matches by test id or by any clause the test names
    (recovered from the report: a failing test is among the failures of
    every clause it names).
    """
    clauses_of: dict[str, list[str]] = {}
    for verdict in report["clauses"]:
        for nodeid in verdict["failures"]:
            clauses_of.setdefault(nodeid, []).append(verdict["id"])
    result: dict[str, tuple[list[ExpectedFailure], list[str]]] = {}
    for verdict in report["clauses"]:
        if verdict["status"] not in EXPLAINED_STATUSES:
            continue
        covering: list[ExpectedFailure] = []
        unexplained: list[str] = []
        for nodeid in verdict["failures"]:
            test_id = _test_id(nodeid)
            ids = tuple(clauses_of.get(nodeid, [verdict["id"]]))
            entry = next((e for e in entries if e.matches(test_id, ids)), None)
            if entry is None:
                unexplained.append(test_id)
            elif entry not in covering:
                covering.append(entry)
        if not verdict["failures"]:
            unexplained.append("(no failing test recorded)")
        covering.sort(key=lambda e: e.line)
        result[verdict["id"]] = (covering, unexplained)
    return result


def _expected_entries(backend_name: str) -> tuple[list[ExpectedFailure], str | None]:
    path = builtin_expected_file(backend_name)
    if path is None:
        return [], None
    return parse_expected(path.read_text(encoding="utf-8"), str(path)), f"expected/{path.name}"


# Building the matrix.


def _order(names: Iterable[str]) -> list[str]:
    names = list(names)
    first = [n for n in _FIRST if n in names]
    return first + sorted(n for n in names if n not in first)


def build_matrix(
    clauses: Mapping[str, Clause],
    reports: Mapping[str, Mapping[str, Any]],
    unavailable: Sequence[Mapping[str, str]] = (),
    expected: Mapping[str, Sequence[ExpectedFailure]] | None = None,
    expected_files: Mapping[str, str | None] | None = None,
) -> dict[str, Any]:
    """The matrix as JSON-ready data.

    ``reports`` maps backend names to their conformance reports;
    ``expected`` their expected-failure entries (default: each backend's
    built-in file).
    """
    names = _order(reports)
    entries: dict[str, Sequence[ExpectedFailure]] = {}
    files: dict[str, str | None] = {}
    for name in names:
        backend_name = str(reports[name]["backend"]["name"])
        if expected is not None:
            entries[name] = expected.get(name, ())
            files[name] = (expected_files or {}).get(name)
        else:
            entries[name], files[name] = _expected_entries(backend_name)
    explanations = {name: explain(reports[name], entries[name]) for name in names}
    verdicts = {name: {v["id"]: v for v in reports[name]["clauses"]} for name in names}

    rows = []
    unexplained_cells = 0
    for clause in clauses.values():
        results: dict[str, Any] = {}
        for name in names:
            verdict = verdicts[name].get(clause.id)
            cell: dict[str, Any] = {"status": verdict["status"] if verdict else "NOT-RUN"}
            kernel = clause.section == KERNEL_SECTION
            if clause.id in explanations[name] and not kernel:
                covering, unexplained = explanations[name][clause.id]
                cell["explanations"] = [
                    {"selector": e.selector, "reason": e.reason} for e in covering
                ]
                if unexplained:
                    cell["unexplained"] = unexplained
                    unexplained_cells += 1
            if verdict and verdict.get("unexpected_passes"):
                cell["unexpected_passes"] = [_test_id(t) for t in verdict["unexpected_passes"]]
            results[name] = cell
        row: dict[str, Any] = {
            "id": clause.id,
            "title": clause.title,
            "keyword": clause.keyword,
            "section": clause.section,
            "backend_independent": clause.section == KERNEL_SECTION,
            "results": results,
        }
        rows.append(row)

    backends = []
    for name in names:
        info = reports[name]["backend"]
        statuses = [
            (row["keyword"], row["results"][name]["status"])
            for row in rows
            if not row["backend_independent"]
        ]
        backends.append(
            {
                "name": name,
                "version": info["version"],
                "origin": info["origin"],
                "truncation": info["truncation"],
                "unsupported": list(info["unsupported"]),
                "expected_file": files[name],
                "must": _tally(s for k, s in statuses if k == "MUST"),
                "should": _tally(s for k, s in statuses if k == "SHOULD"),
            }
        )
    first = reports[names[0]]["environment"] if names else {}
    return {
        "generated_by": "python -m fdsend_conformance.matrix",
        "environment": {k: first[k] for k in ("python", "kernel", "machine") if k in first},
        "backends": backends,
        "clauses": rows,
        "kernel_clauses_from": names[0] if names else None,
        "unexplained_cells": unexplained_cells,
        "unavailable": [dict(u) for u in unavailable],
        "not_installable": [
            {"package": u.package, "version": u.version, "outcome": u.outcome, "error": u.error}
            for u in NOT_INSTALLABLE
        ],
        "considered": [{"package": p, "version": v, "outcome": why} for p, v, why in CONSIDERED],
    }


def _tally(statuses: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return dict(sorted(counts.items()))


# Markdown.

_LEGEND = (
    "**PASS**: every test of the clause passed. **FAIL**: a MUST clause failed. "
    "**NON-STRICT**: a SHOULD clause failed. **UNSUPPORTED**: the backend declares it "
    "lacks a feature the clause needs (payload, flags, seqpacket, dgram). **SKIPPED**: "
    "not testable on this machine. **NOT-RUN**: no test of the clause ran."
)


def _cell(cell: Mapping[str, Any]) -> str:
    status = str(cell["status"])
    if cell.get("unexplained"):
        return f"**{status} (UNEXPLAINED)**"
    return f"**{status}**" if status == "FAIL" else status


def _summary(tally: Mapping[str, int]) -> str:
    total = sum(tally.values())
    if not total:
        return "none"
    rest = ", ".join(f"{n} {s}" for s, n in tally.items() if s != "PASS")
    return f"{tally.get('PASS', 0)}/{total} PASS" + (f" ({rest})" if rest else "")


def _md_text(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(matrix: Mapping[str, Any]) -> str:
    """``compatibility.md`` from the data :func:`build_matrix` made."""
    names = [b["name"] for b in matrix["backends"]]
    env = matrix["environment"]
    out = [
        "# Compatibility matrix",
        "",
        "<!-- Generated by `python -m fdsend_conformance.matrix`; do not edit by hand. -->",
        "",
        "The conformance suite run against every fd-passing implementation installed "
        "here, one column per backend, one row per clause of "
        "[CONTRACT.md](../conformance/CONTRACT.md). Adapters map call shapes only, so "
        "each column shows the library's own behaviour.",
        "",
        f"Measured on {env.get('python', '?')}, kernel {env.get('kernel', '?')} "
        f"({env.get('machine', '?')}).",
        "",
        "## Backends",
        "",
        "| backend | version | truncation reported by | lacks | MUST clauses | SHOULD clauses |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for b in matrix["backends"]:
        out.append(
            f"| {b['name']} | {b['version']} | {b['truncation']} | "
            f"{', '.join(b['unsupported']) or '—'} | {_summary(b['must'])} | "
            f"{_summary(b['should'])} |"
        )
    out += ["", "## Clauses", "", _LEGEND, ""]
    out.append("| clause | level | " + " | ".join(names) + " |")
    out.append("| --- | --- | " + " | ".join("---" for _ in names) + " |")
    kernel_rows = []
    for row in matrix["clauses"]:
        if row["backend_independent"]:
            kernel_rows.append(row)
            continue
        cells = " | ".join(_cell(row["results"][n]) for n in names)
        out.append(f"| `{row['id']}` {_md_text(row['title'])} | {row['keyword']} | {cells} |")

    out += ["", "## Why: every FAIL and NON-STRICT cell", ""]
    out.append(
        "Each reason is the backend's own expected-failure entry "
        "(`conformance/fdsend_conformance/expected/<backend>.txt`) that covers the failing "
        "tests; a selector other than the clause itself is named before its reason."
    )
    for b in matrix["backends"]:
        name = b["name"]
        lines = []
        for row in matrix["clauses"]:
            cell = row["results"][name]
            if cell["status"] not in EXPLAINED_STATUSES or row["backend_independent"]:
                continue
            lines.extend(_why(row["id"], cell))
        if lines:
            source = f" (from `{b['expected_file']}`)" if b["expected_file"] else ""
            out += ["", f"### {name}{source}", "", *lines]

    if kernel_rows:
        source = matrix["kernel_clauses_from"]
        out += [
            "",
            "## The kernel itself",
            "",
            "These clauses test the kernel's own behaviour, which no backend changes, so "
            f"they are shown once, from the {source} run; a run that disagreed is named.",
            "",
            "| clause | level | result |",
            "| --- | --- | --- |",
        ]
        for row in kernel_rows:
            shown = row["results"][source]["status"]
            others = [
                f"{n}: {row['results'][n]['status']}"
                for n in names
                if row["results"][n]["status"] != shown
            ]
            note = f" (differs: {'; '.join(others)})" if others else ""
            out.append(
                f"| `{row['id']}` {_md_text(row['title'])} | {row['keyword']} | {shown}{note} |"
            )

    out += ["", "## Implementations not in the table", ""]
    for u in matrix["unavailable"]:
        out.append(f"- **{u['name']}** (registered backend): unavailable here: `{u['error']}`")
    for u in matrix["not_installable"]:
        out.append(f"- **{u['package']} {u['version']}** (PyPI): {u['outcome']}: `{u['error']}`")
    for u in matrix["considered"]:
        out.append(f"- **{u['package']} {u['version']}** (PyPI): no adapter: {u['outcome']}")
    out += [
        "",
        "Regenerate with `python -m fdsend_conformance.matrix` (or `fdsend-conformance "
        "matrix`) after `pip install -e '.[anyio,twisted]'`.",
        "",
    ]
    return "\n".join(out)


def _why(clause_id: str, cell: Mapping[str, Any]) -> list[str]:
    head = f"- **{clause_id}** {cell['status']}"
    reasons = [
        (e["reason"] if e["selector"] == clause_id else f"`{e['selector']}`: {e['reason']}")
        for e in cell.get("explanations", [])
    ]
    lines = []
    if len(reasons) == 1 and not cell.get("unexplained"):
        lines.append(f"{head}: {_md_text(reasons[0])}")
    else:
        lines.append(f"{head}:")
        lines.extend(f"  - {_md_text(r)}" for r in reasons)
    lines.extend(
        f"  - **UNEXPLAINED**: `{t}` fails and no expected-failure entry covers it"
        for t in cell.get("unexplained", [])
    )
    return lines


# Command line.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fdsend_conformance.matrix",
        description="Run the conformance suite against every installed backend and write "
        "compatibility.md and compatibility.json.",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        help="where to write the two files (default: the checkout's docs/, else ./docs)",
    )
    parser.add_argument(
        "--backend",
        action="append",
        default=None,
        metavar="NAME",
        help="run only this registered backend (repeatable); default: every available one",
    )
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
        "--from-reports",
        action="store_true",
        help="do not run the suite: build the matrix from the reports already in --reports-dir",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the matrix; 0 when every FAIL/NON-STRICT cell is explained, 1 if not, 2 on errors."""
    args = _parser().parse_args(argv)
    if args.from_reports and args.reports_dir is None:
        print("matrix: --from-reports needs --reports-dir", file=sys.stderr)
        return 2
    output_dir: Path = args.output_dir or _default_output_dir()
    registered = available_backends()
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
    runnable = _order(n for n in wanted if known[n].error is None)

    with tempfile.TemporaryDirectory(prefix="fdsend-matrix-") as scratch:
        workdir = args.reports_dir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        reports: dict[str, dict[str, Any]] = {}
        started = time.monotonic()
        for name in runnable:
            if args.from_reports:
                path = workdir / f"{name}.json"
                if not path.is_file():
                    print(f"matrix: no report {path}; skipping {name}", file=sys.stderr)
                    continue
                reports[name] = json.loads(path.read_text(encoding="utf-8"))
                continue
            print(f"matrix: running the suite against {name} ...", file=sys.stderr, flush=True)
            try:
                reports[name], note = run_backend(name, workdir, args.workers)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                print(f"matrix: {name}: {exc}", file=sys.stderr)
                unavailable.append(
                    {"name": name, "origin": known[name].origin, "error": f"run failed: {exc}"}
                )
                continue
            print(f"matrix: {name}: {note}", file=sys.stderr)
        if not args.from_reports:
            print(f"matrix: suite runs took {time.monotonic() - started:.0f} s", file=sys.stderr)

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


if __name__ == "__main__":
    sys.exit(main())
