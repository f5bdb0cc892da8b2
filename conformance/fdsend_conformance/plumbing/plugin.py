"""The pytest plugin: clause bookkeeping and the conformance report.

Registered through the ``pytest11`` entry point, so it loads in every pytest
run of an environment where fdsend-conformance is installed. It stays inert
there: it adds its options (:mod:`fdsend_conformance.plumbing.options`) and
touches only tests that live in :mod:`fdsend_conformance.suite`, unless the
run names a backend: then, given no test paths, it collects the suite. The suite's fixtures are in
:mod:`fdsend_conformance.plumbing.fixtures`, loaded by the suite's own conftest.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from fdsend_conformance.backend import Backend
from fdsend_conformance.plumbing import ktap
from fdsend_conformance.plumbing.contract import cross_check, load_contract
from fdsend_conformance.plumbing.expected import (
    ExpectedFailure,
    builtin_expected_file,
    parse_expected,
)
from fdsend_conformance.plumbing.isolation import run_isolated
from fdsend_conformance.plumbing.options import DEFAULT_BACKEND, add_options
from fdsend_conformance.plumbing.registry import (
    UnknownBackendError,
    available_backends,
    load_backend,
)
from fdsend_conformance.plumbing.report import (
    EXPECTED_PREFIX,
    NON_STRICT_PREFIX,
    UNSUPPORTED_PREFIX,
    ClauseReport,
    Outcome,
    environment,
)

__all__ = ["SUITE_DIR", "backend_of", "call_failed"]

SUITE_DIR = Path(__file__).parent.parent / "suite"
_CLAUSE_PROPERTY = "fdsend_clause"
_USAGE_PREFIX = "fdsend: "  # of every usage error the plugin raises

#: Seconds an isolated test may outlive its own timeout before it is killed.
_ISOLATION_GRACE = 10.0

_STATE = pytest.StashKey["_State"]()
_CALL_FAILED = pytest.StashKey[bool]()
_CLAUSES = pytest.StashKey["tuple[str, ...]"]()
#: Short option names another plugin or a conftest owns in this run.
_SHADOWED = pytest.StashKey[frozenset[str]]()


@pytest.hookimpl(hookwrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser) -> Any:
    """Add the options once plugins and the project's conftests have added theirs.

    Not in ``pytest_addoption``: a project's conftest.py registers options
    after every plugin, and argparse would refuse its ``--backend`` if this
    plugin had taken the name first. This hook runs before the command line
    is parsed for good, so the options are there for every run.
    """
    yield
    early_config.stash[_SHADOWED] = add_options(parser)


class _State:
    """Per-run state of the plugin, kept in ``config.stash``."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.level: str = config.getoption("fdsend_level")
        self._backend: Backend | None = None
        self.report = ClauseReport(load_contract())
        self.expected: list[ExpectedFailure] = []
        self.expected_source: str | None = None
        self.clauses_by_test: dict[str, list[str]] = {}
        self.xfail_reasons: dict[str, str] = {}
        self.shadowed = config.stash.get(_SHADOWED, frozenset())
        self.refused = False

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            name = self.config.getoption("fdsend_backend") or DEFAULT_BACKEND
            try:
                self._backend = load_backend(name)
            except UnknownBackendError as exc:
                raise pytest.UsageError(f"fdsend: {exc}") from exc
            except Exception as exc:  # the backend's own import or declarations failed
                raise pytest.UsageError(
                    f"fdsend: cannot load backend {name!r}: {type(exc).__name__}: {exc}"
                ) from exc
        return self._backend

    def load_expected(self) -> None:
        option = self.config.getoption("fdsend_expected")
        if option == "none":
            return
        path = Path(option) if option else builtin_expected_file(self.backend.name)
        if path is None:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise pytest.UsageError(f"fdsend: cannot read expected file {path}: {exc}") from exc
        try:
            self.expected = parse_expected(text, str(path))
        except ValueError as exc:
            raise pytest.UsageError(f"fdsend: {exc}") from exc
        self.expected_source = str(path)

    # Hooks that need this run's state; registered as a plugin object.

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        values = [value for key, value in report.user_properties if key == _CLAUSE_PROPERTY]
        if values:
            self.clauses_by_test[report.nodeid] = str(values[0]).split(",")
        # A report made up for a crashed xdist worker carries no properties:
        # the test's earlier (setup) report told us its clauses.
        ids = self.clauses_by_test.get(report.nodeid)
        outcome = _outcome_of(report) if ids else None
        if ids and outcome is not None:
            reason = _skip_reason(report) if outcome in Outcome.SKIPS else None
            self.report.record(report.nodeid, ids, outcome, reason)
            wasxfail = getattr(report, "wasxfail", None)
            if wasxfail:  # an expected failure's reason, for the KTAP output
                self.xfail_reasons[report.nodeid] = wasxfail.removeprefix(EXPECTED_PREFIX)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        # Under xdist, a worker's usage error (see _refuse_on_worker).
        if report.failed and str(report.longrepr).startswith(_USAGE_PREFIX):
            self.refused = True

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.refused:  # the exit status a serial run's UsageError has
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        path = self.config.getoption("fdsend_conformance_report")
        controller = not hasattr(self.config, "workerinput")
        if path and self.report.active and controller:
            self.report.write_json(Path(path), self.backend, self.level)
        ktap_path = self.config.getoption("fdsend_ktap")
        if ktap_path and self.report.active and controller:
            _write(Path(ktap_path), self.ktap())

    def ktap(self) -> str:
        """The run as KTAP: each test's outcome with its skip or expected-failure reason."""
        cases = []
        for nodeid, (ids, outcome) in self.report.outcomes.items():
            test_id = _test_id(nodeid)
            reason = self.report.skip_reasons.get(nodeid, "")
            if outcome == Outcome.NON_STRICT:
                reason = f"NON-STRICT: a SHOULD clause, level {self.level}"
            elif outcome == Outcome.EXPECTED:  # the expected file's reason, or the mark's
                reason = self.xfail_reasons.get(nodeid, "")
            cases.append(ktap.case_of(test_id, ids, outcome, reason))
        backend = self.backend
        header = [
            f"fdsend conformance: backend {backend.name} {backend.version}; "
            f"{environment()['kernel']}; level {self.level}"
        ]
        return ktap.render(cases, self.report.clauses, header)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.report.active:
            return
        terminalreporter.section("fdsend conformance report")
        for line in self.report.lines(self.backend, self.level):
            terminalreporter.write_line(line)
        if self.expected_source:
            terminalreporter.write_line(f"expected failures: {self.expected_source}")
        unmatched = self.unmatched_expected()
        if unmatched:
            terminalreporter.write_line(
                f"{len(unmatched)} expected-failure entries matched no test that ran "
                f"(deselected, or stale): {', '.join(e.selector for e in unmatched)}"
            )

    def unmatched_expected(self) -> list[ExpectedFailure]:
        """Entries of the expected file that no test of this run matched."""
        ran = [(_test_id(nodeid), tuple(ids)) for nodeid, ids in self.clauses_by_test.items()]
        return [e for e in self.expected if not any(e.matches(t, ids) for t, ids in ran)]


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def backend_of(config: pytest.Config) -> Backend:
    """The backend under test in this run."""
    return config.stash[_STATE].backend


def call_failed(item: pytest.Item) -> bool:
    """Whether a phase of ``item`` has already failed (for teardown checks)."""
    return item.stash.get(_CALL_FAILED, False)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("fdsend_list_backends"):
        return None
    for entry in available_backends():
        if entry.error is None:
            print(f"{entry.name:<20} {entry.version or '?':<30} {entry.origin}")
        else:  # registered, but its package is missing (or it is broken)
            print(f"{entry.name:<20} {'unavailable':<30} {entry.origin}  ({entry.error})")
    print("or any module (mymodule, package.module) or module:attr with sendfds/recvfds")
    return 0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "clause(*ids): the contract clauses this test proves")
    config.addinivalue_line(
        "markers", "requires(*features): backend features the test needs (else UNSUPPORTED)"
    )
    config.addinivalue_line(
        "markers", "kernel: checks the kernel itself, independent of the backend under test"
    )
    state = _State(config)
    config.stash[_STATE] = state
    config.pluginmanager.register(state, "fdsend-conformance-state")
    if config.getoption("fdsend_backend"):
        # An explicit choice is checked now: a bad name runs no test at all.
        state.load_expected()


def _in_suite(item: pytest.Item) -> bool:
    return SUITE_DIR in Path(str(item.path)).parents


def _clauses_of(item: pytest.Item) -> tuple[str, ...]:
    return tuple(cid for mark in item.iter_markers("clause") for cid in mark.args)


def _installed() -> bool:
    """Whether the suite runs from an installed package, not from a checkout.

    A checkout has the distribution's ``pyproject.toml`` beside the package.
    """
    return not (SUITE_DIR.parent.parent / "pyproject.toml").is_file()


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(
    module_path: Path, parent: pytest.Collector
) -> pytest.Module | None:
    """Name an installed suite's modules by import path: ``fdsend_conformance/suite/test_x.py``.

    pytest names a module by its path from the rootdir, which for an
    installed package runs through the environment
    (``.venv/lib/python3.11/site-packages/...``) or, outside the rootdir, by
    whatever argument reached it. The import path is the same on every
    machine, so progress lines stay short and the ids in two reports (two
    kernels, two hosts) compare. In a checkout pytest's own ids stay: they
    are paths a developer can open.
    """
    if SUITE_DIR not in module_path.parents or not _installed():
        return None
    nodeid = module_path.relative_to(SUITE_DIR.parent.parent).as_posix()
    module: pytest.Module = pytest.Module.from_parent(parent, path=module_path, nodeid=nodeid)
    return module


def _suite_modules() -> set[Path]:
    return {p for p in SUITE_DIR.rglob("test_*.py")}


def _reaches_suite(config: pytest.Config, arg: str) -> bool:
    """Whether collecting ``arg``, an entry of ``config.args``, collects tests of the suite."""
    path = _path_of(config, arg)
    suite = SUITE_DIR.resolve()
    return path is not None and (path == suite or suite in path.parents or path in suite.parents)


def _path_of(config: pytest.Config, arg: str) -> Path | None:
    """The file or directory ``arg`` names: a path (maybe with ``::`` parts) or a module."""
    name = arg.split("::")[0]
    path = Path(config.invocation_params.dir, name)
    if path.exists():
        return path.resolve()
    if not config.getoption("pyargs"):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(spec.origin)
    return (origin.parent if origin.name == "__init__.py" else origin).resolve()


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    """With ``--backend`` and no test paths on the command line, collect the suite too.

    pytest collects ``testpaths``, or the current directory, when given no
    paths (``config.args_source``); so ``pytest --backend=NAME`` run anywhere
    runs the suite. The decision is made from the arguments alone, the same
    way on every xdist worker.
    """
    config = session.config
    if not config.getoption("fdsend_backend"):
        return
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return  # explicit paths: pytest_collection_modifyitems checks them
    if not any(_reaches_suite(config, arg) for arg in config.args):
        config.args.append(str(SUITE_DIR))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    suite_items = [item for item in items if _in_suite(item)]
    try:
        if suite_items:
            _prepare(config, suite_items)
        elif config.getoption("fdsend_backend") and not session.testsfailed:
            raise pytest.UsageError(_nothing_to_test(config))
    except pytest.UsageError as exc:
        if not hasattr(config, "workerinput"):
            raise
        _refuse_on_worker(config, items, suite_items[0] if suite_items else None, str(exc))


def _nothing_to_test(config: pytest.Config) -> str:
    """The usage error of a backend given with paths that hold no test of the suite."""
    shadowed = "backend" in config.stash[_STATE].shadowed
    option = f"--{'fdsend-' if shadowed else ''}backend={config.getoption('fdsend_backend')}"
    return (
        f"{_USAGE_PREFIX}{option} names a backend to test, but no test of the conformance "
        f"suite was collected from {' '.join(config.args)}.\n"
        f"  To run the suite: pytest {option}  (with no test paths), "
        f"or pytest --pyargs fdsend_conformance {option}"
    )


def _prepare(config: pytest.Config, suite_items: list[pytest.Item]) -> None:
    """Mark the suite's tests with their clauses, expected failures and timeout."""
    state = config.stash[_STATE]
    if "backend" in state.shadowed and not config.getoption("fdsend_backend"):
        raise pytest.UsageError(
            "fdsend: another plugin owns --backend here; "
            "choose the backend under test with --fdsend-backend=NAME"
        )
    if not state.expected_source:
        state.load_expected()
    for item in suite_items:
        ids = _clauses_of(item)
        item.stash[_CLAUSES] = ids
        item.user_properties.append((_CLAUSE_PROPERTY, ",".join(ids)))
        _apply_expected(item, ids, state.expected)
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(config.getoption("fdsend_test_timeout")))
    complete = {Path(str(item.path)) for item in suite_items} >= _suite_modules()
    problems = cross_check(
        state.report.clauses, [(i.nodeid, i.stash[_CLAUSES]) for i in suite_items], complete
    )
    if problems:
        raise pytest.UsageError("\n  ".join(["fdsend: contract and tests disagree:", *problems]))


def _refuse_on_worker(
    config: pytest.Config, items: list[pytest.Item], sample: pytest.Item | None, message: str
) -> None:
    """The usage error ``message`` on an xdist worker: no test runs, the controller says why.

    A worker's exceptions never reach the controller, so the worker reports
    a failed collection of the suite instead, which the controller shows and
    turns into a usage error's exit status (:meth:`_State.pytest_collectreport`).
    """
    chain = sample.listchain() if sample is not None else []
    suite = [node for node in chain if getattr(node, "path", None) == SUITE_DIR]
    nodeid = suite[0].nodeid if suite else ""
    config.hook.pytest_collectreport(report=pytest.CollectReport(nodeid, "failed", message, []))
    items.clear()


def _test_id(nodeid: str) -> str:
    """The test's id within the suite: ``test_errors.py::test_name[params]``."""
    path, _, rest = nodeid.partition("::")
    return f"{os.path.basename(path)}::{rest}"


def _apply_expected(
    item: pytest.Item, ids: tuple[str, ...], entries: list[ExpectedFailure]
) -> None:
    test_id = _test_id(item.nodeid)
    for entry in entries:
        if entry.matches(test_id, ids):
            item.add_marker(pytest.mark.xfail(reason=EXPECTED_PREFIX + entry.reason, strict=False))
            return


def _isolated(config: pytest.Config) -> bool:
    """Whether conformance tests run in forked children (``--isolate``).

    Under xdist too: a replaced worker survives a crash, but not a backend
    that leaves the interpreter in a broken state (measured: Trio's run,
    interrupted by the test timeout, broke the worker with an INTERNALERROR).
    """
    choice = config.getoption("fdsend_isolate")
    if choice != "auto":
        return bool(choice == "yes")
    return hasattr(os, "fork") and not config.getoption("usepdb", False)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
    if _CLAUSES not in item.stash or not _isolated(item.config):
        return None
    marker = item.get_closest_marker("timeout")
    seconds = float(marker.args[0]) if marker and marker.args else 60.0
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for report in run_isolated(item, seconds + _ISOLATION_GRACE):
        ihook.pytest_runtest_logreport(report=report)
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _in_suite(item):
        return
    backend = backend_of(item.config)
    missing = sorted(
        feature
        for mark in item.iter_markers("requires")
        for feature in mark.args
        if not backend.supports(feature)
    )
    if missing:
        pytest.skip(f"{UNSUPPORTED_PREFIX}{backend.name} lacks {', '.join(missing)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed or _CLAUSES not in item.stash:
        return
    item.stash[_CALL_FAILED] = True
    contract = item.config.stash[_STATE].report.clauses
    ids = item.stash[_CLAUSES]
    only_should = all(contract[cid].level == "strict" for cid in ids if cid in contract)
    if only_should and item.config.getoption("fdsend_level") == "core":
        # A SHOULD clause failing does not fail a core-level run: show it as
        # an expected failure, labelled NON-STRICT.
        report.outcome = "skipped"
        report.wasxfail = NON_STRICT_PREFIX + ", ".join(ids)


def _skip_reason(report: pytest.TestReport) -> str:
    """The message a skipped test gave (pytest keeps it in ``longrepr``)."""
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _outcome_of(report: pytest.TestReport) -> str | None:
    wasxfail = getattr(report, "wasxfail", None)
    if report.failed:
        return Outcome.FAILED
    if report.skipped:
        if wasxfail is not None:
            return (
                Outcome.NON_STRICT if wasxfail.startswith(NON_STRICT_PREFIX) else Outcome.EXPECTED
            )
        unsupported = UNSUPPORTED_PREFIX in _skip_reason(report)
        return Outcome.UNSUPPORTED if unsupported else Outcome.SKIPPED
    if report.when == "call":
        return Outcome.UNEXPECTEDLY_PASSED if wasxfail is not None else Outcome.PASSED
    return None
