"""The files a run writes: the JSON report, KTAP, and the HTML page.

Written once, by the controller (never by an xdist worker), when a test of
the suite reported: ``--conformance-report PATH``, ``--ktap PATH`` and
``--html PATH``.
"""

from __future__ import annotations

from pathlib import Path

from fdsend_conformance.plumbing import html_page, ktap
from fdsend_conformance.plumbing.bookkeeping import RunState
from fdsend_conformance.plumbing.expected import id_in_suite
from fdsend_conformance.plumbing.report import environment

__all__ = ["ktap_text", "write"]


def write(state: RunState) -> None:
    """Write every report file the run's options ask for."""
    config = state.config
    path = config.getoption("fdsend_conformance_report")
    if path:
        state.report.write_json(Path(path), state.backend, state.level)
    ktap_path = config.getoption("fdsend_ktap")
    if ktap_path:
        _write(Path(ktap_path), ktap_text(state))
    html_path = config.getoption("fdsend_html")
    if html_path:
        _write(Path(html_path), html_page.page(state.report, state.backend, state.level))


def ktap_text(state: RunState) -> str:
    """The run as KTAP: each test's outcome with the reason it was given."""
    cases = [
        ktap.case_of(id_in_suite(nodeid), result.clauses, result.outcome, result.reason)
        for nodeid, result in state.report.tests.items()
    ]
    backend = state.backend
    header = [
        f"fdsend conformance: backend {backend.name} {backend.version}; "
        f"{environment()['kernel']}; level {state.level}"
    ]
    return ktap.render(cases, state.report.clauses, header)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
