"""The plugin end to end: backend loading, report, exit status, expected failures,
the clause/test cross-check.

Each test runs the packaged suite (a selection of it) in a pytest subprocess
against small example backends written here.
"""

from __future__ import annotations

import json
import re
import textwrap
import xml.etree.ElementTree as ElementTree
from typing import Any

import jsonschema
import pytest
from suite_runs import SuiteRun, clause_entry, expected_file, statuses, suite_runner

from fdsend_conformance.outcome import Outcome, Status
from fdsend_conformance.plumbing.report import SCHEMA_FILE, SCHEMA_VERSION

EXAMPLES = '''
import array
import socket

from fdsend_conformance.backend import FlagsResult


class Raw:
    """sendmsg/recvmsg with knobs to break it in one way at a time."""

    version = "0.1"

    def __init__(self, name, cloexec=True, keep=None, truncation="attribute", unsupported=()):
        self.name = name
        self.cloexec = cloexec
        self.keep = keep
        self.truncation = truncation
        self.unsupported = frozenset(unsupported)

    def sendfds(self, sock, msg, flags=0, fds=None):
        fds = [f if isinstance(f, int) else f.fileno() for f in (fds or [])]
        if self.keep is not None:
            fds = fds[: self.keep]  # loses the rest, silently
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        return sock.sendmsg([msg], ancillary, flags)

    def recvfds(self, sock, size, flags=0, numfds=64):
        if self.cloexec:
            flags |= socket.MSG_CMSG_CLOEXEC
        msg, ancillary, msg_flags, _ = sock.recvmsg(size, socket.CMSG_SPACE(4 * numfds), flags)
        fds = array.array("i")
        for _level, _kind, data in ancillary:
            fds.frombytes(data[: len(data) - len(data) % 4])
        return FlagsResult(msg, list(fds), msg_flags)


good = Raw("good")
dropper = Raw("dropper", keep=1)
inheritable = Raw("inheritable", cloexec=False)
silent = Raw("silent", truncation="none")
no_payload = Raw("no-payload", unsupported=["payload"])
'''

ORDER_TEST = "test_several_fds_arrive_in_order"
CLOEXEC_TEST = "test_received_fds_are_close_on_exec"


@pytest.fixture
def run(pytester: pytest.Pytester) -> SuiteRun:
    """Run the packaged suite in a subprocess; return (result, report JSON)."""
    return suite_runner(pytester, examples=EXAMPLES)


def register(pytester: pytest.Pytester, **entry_points: str) -> None:
    """Install a distribution registering ``entry_points`` as fdsend backends."""
    dist_info = pytester.path / "examples_ep-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: examples-ep\nVersion: 0.1\n")
    lines = [f"{name.replace('_', '-')} = {value}" for name, value in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("[fdsend.backends]\n" + "\n".join(lines) + "\n")


def offered(line: str) -> tuple[list[str], str]:
    """The available backends a usage-error line names, and its unavailable part."""
    match = re.search(r"; available: ([^;]*); unavailable here: ([^;]*);", line)
    assert match, line
    return match[1].split(", "), match[2]


def test_unknown_backend_is_a_usage_error_naming_the_available(run):
    result, report = run("--backend=no-such-backend")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backend 'no-such-backend'*available:*reference*stdlib*"])
    assert "passed" not in result.stdout.str()
    assert report == {}


def test_unimportable_dotted_path_is_a_usage_error_naming_the_available(run, pytester):
    register(pytester, example_good="examples:good", example_gone="examples_not_installed")
    result, report = run("--backend=no.such:thing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.errlines if "no.such:thing" in line]
    assert "cannot load backend 'no.such:thing' (ModuleNotFoundError: No module named 'no')" in line
    available, unavailable = offered(line)
    assert {"example-good", "reference", "stdlib"} <= set(available)
    assert "example-gone" not in available
    gone = "example-gone (ModuleNotFoundError: No module named 'examples_not_installed')"
    assert gone in unavailable
    assert report == {}


def test_registered_backend_that_cannot_import_is_unavailable(run, pytester):
    register(pytester, example_gone="examples_not_installed")
    listing = pytester.runpytest_subprocess("--list-backends", "-p", "no:cacheprovider")
    assert listing.ret == 0
    listing.stdout.fnmatch_lines(
        ["example-gone*unavailable*examples_not_installed*(ModuleNotFoundError: *)", "reference*"]
    )
    result, report = run("--backend=example-gone")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    [line] = [line for line in result.errlines if "example-gone" in line]
    assert "backend 'example-gone' is unavailable here (ModuleNotFoundError: " in line
    assert "reference" in offered(line)[0]
    assert report == {}


def test_list_backends_shows_versions_and_exits(pytester: pytest.Pytester):
    result = pytester.runpytest_subprocess("--list-backends", "-p", "no:cacheprovider")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["multiprocessing*Python 3.*", "stdlib*Python 3.*"])


def test_module_attr_backend_passes_and_is_named_in_the_report(run):
    result, report = run("--backend=examples:good", "-k", ORDER_TEST)
    assert result.ret == 0
    assert report["backend"]["name"] == "good"
    assert report["backend"]["version"] == "0.1"
    assert statuses(report)["XFER-1"] == "PASS"
    assert statuses(report)["ERR-1"] == "NOT-RUN"
    assert report["conforming"] is True
    result.stdout.fnmatch_lines(["*fdsend conformance report*", "XFER-1*PASS*MUST*"])


def test_entry_point_backend_is_listed_and_loaded(run, pytester: pytest.Pytester):
    register(pytester, example_good="examples:good")
    listing = pytester.runpytest_subprocess("--list-backends", "-p", "no:cacheprovider")
    listing.stdout.fnmatch_lines(["example-good*0.1*examples:good"])
    result, report = run("--backend=example-good", "-k", ORDER_TEST)
    assert result.ret == 0
    assert report["backend"]["origin"] == "examples:good"


def test_core_failure_fails_the_run(run):
    result, report = run("--backend=examples:dropper", "-k", ORDER_TEST)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses(report)["XFER-1"] == "FAIL"
    assert report["conforming"] is False
    xfer1 = clause_entry(report, "XFER-1")
    assert xfer1["tests"] == {"passed": 1, "failed": 3}


def test_should_failure_is_non_strict_and_fails_only_at_strict_level(run):
    result, report = run("--backend=examples:inheritable", "-k", CLOEXEC_TEST)
    assert result.ret == 0
    assert statuses(report)["OWN-2"] == "NON-STRICT"
    assert report["conforming"] is True
    result, report = run("--backend=examples:inheritable", "-k", CLOEXEC_TEST, "--level=strict")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert report["conforming"] is False


def test_undeclared_feature_is_unsupported_not_failed(run, pytester: pytest.Pytester):
    # Serial, so each test runs isolated in a forked child: its skip report
    # crosses a pipe and must still suit pytest's own reporters (JUnit XML).
    junit = pytester.path / "junit.xml"
    result, report = run(
        "--backend=examples:no_payload", "-k", "test_payload_arrives_intact", f"--junitxml={junit}"
    )
    assert result.ret == 0, result.stdout.str()
    skipped = ElementTree.parse(junit).getroot().iter("skipped")
    assert {s.get("message") for s in skipped} == {
        "UNSUPPORTED: no-payload carries no payload of the caller's"
    }
    assert statuses(report)["XFER-6"] == "UNSUPPORTED"
    # Why, per test in the JSON and once in the terminal summary.
    xfer6 = clause_entry(report, "XFER-6")
    reasons = set(xfer6["skips"].values())
    assert reasons == {"UNSUPPORTED: no-payload carries no payload of the caller's"}
    assert len(xfer6["skips"]) == xfer6["tests"]["unsupported"]
    result.stdout.fnmatch_lines(
        [
            "XFER-6 *UNSUPPORTED*",
            "why skipped:",
            "*UNSUPPORTED: no-payload carries no payload of the caller's  (XFER-6)",
        ]
    )


def test_report_has_its_schemas_shape_and_each_tests_outcome(run, pytester: pytest.Pytester):
    # Under xdist, every test in a forked child: the outcomes cross both.
    junit = pytester.path / "junit.xml"
    selection = f"{ORDER_TEST} or test_payload_arrives_intact"
    args = ("--backend=examples:no_payload", "-k", selection, f"--junitxml={junit}")
    result, report = run(*args, "-n", "2")
    assert result.ret == 0, result.stdout.str()
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
    assert report["schema"] == SCHEMA_VERSION
    tests = {t["id"]: t for t in report["tests"]}
    order = [t for name, t in tests.items() if ORDER_TEST in name]
    payload = [t for name, t in tests.items() if "test_payload_arrives_intact" in name]
    assert order
    assert payload
    assert len(order) + len(payload) == len(tests)
    assert {(t["outcome"], t["reason"]) for t in order} == {("passed", None)}
    assert {tuple(t["clauses"]) for t in order} == {("XFER-1",)}
    assert {(t["outcome"], t["reason"]) for t in payload} == {
        ("unsupported", "UNSUPPORTED: no-payload carries no payload of the caller's")
    }
    # JUnit XML carries the same outcome, as a property of each test case.
    junit_outcomes = {
        case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
        for case in ElementTree.parse(junit).getroot().iter("testcase")
    }
    assert {name: props["fdsend_outcome"] for name, props in junit_outcomes.items()} == {
        t["id"].partition("::")[2]: t["outcome"] for t in report["tests"]
    }


def test_report_schema_names_every_outcome_and_status():
    defs = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))["$defs"]
    assert defs["outcome"]["enum"] == [o.value for o in Outcome]
    assert defs["status"]["enum"] == [s.value for s in Status]


def test_truncation_style_none_fails_truncation_clause(run):
    result, report = run(
        "--backend=examples:silent", "-k", "test_truncation_is_reported_exactly_when_fds_are_cut"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses(report)["TRUNC-1"] == "FAIL"


def xfer1_with_expected(
    run: SuiteRun, pytester: pytest.Pytester, backend: str, lines: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """Run XFER-1's ordering test on ``backend`` with an expected file of ``lines``.

    The run must be green; returns it and XFER-1's entry in its report.
    """
    expected = expected_file(pytester, lines)
    result, report = run(f"--backend={backend}", "-k", ORDER_TEST, f"--expected={expected}")
    assert result.ret == 0
    return result, clause_entry(report, "XFER-1")


def test_expected_failure_file_keeps_the_run_green(run, pytester: pytest.Pytester):
    lines = "# dropper's deviations\nXFER-1  sends only the first fd, on purpose\n"
    result, xfer1 = xfer1_with_expected(run, pytester, "examples:dropper", lines)
    assert (xfer1["status"], xfer1["expected"]) == ("FAIL", True)
    result.stdout.fnmatch_lines(["XFER-1 *XFAIL*", "*sends only the first fd, on purpose*"])


def test_expected_failure_that_passes_is_reported(run, pytester: pytest.Pytester):
    lines = "test_transfer.py::test_several_fds_arrive_in_order[16]  was broken\n"
    result, xfer1 = xfer1_with_expected(run, pytester, "examples:good", lines)
    [unexpected] = xfer1["unexpected_passes"]
    assert unexpected.endswith("test_transfer.py::test_several_fds_arrive_in_order[16]")
    result.stdout.fnmatch_lines(
        [
            "*expected to fail, but*passed: "
            "test_transfer.py::test_several_fds_arrive_in_order[[]16[]]*"
        ]
    )


def test_expected_entry_without_reason_is_a_usage_error(run, pytester: pytest.Pytester):
    expected = expected_file(pytester, "XFER-1\n")
    result, _ = run("--backend=examples:good", f"--expected={expected}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*XFER-1*needs a one-line reason*"])


MODES = {"serial": (), "xdist": ("-n", "2")}


def test_parallel_run_reports_what_a_serial_run_does(run):
    selection = ("-k", f"{ORDER_TEST} or {CLOEXEC_TEST} or test_zero_fds")
    serial_result, serial = run("--backend=examples:inheritable", *selection)
    parallel_result, parallel = run("--backend=examples:inheritable", "-n", "2", *selection)
    assert serial_result.ret == parallel_result.ret == 0
    assert statuses(parallel) == statuses(serial)
    assert statuses(serial)["OWN-2"] == "NON-STRICT"
    assert statuses(serial)["XFER-5"] == "PASS"


def test_plain_project_is_untouched(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_plain=textwrap.dedent(
            """
            def test_nothing_special(request):
                assert "no_fd_leaks" not in request.fixturenames
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 0
    assert "fdsend conformance report" not in result.stdout.str()


OTHER_PLUGIN = """
def pytest_addoption(parser):
    parser.addoption("--backend", default="theirs", help="another plugin's option")
"""


@pytest.mark.parametrize("mode", list(MODES))
def test_backend_option_owned_by_another_plugin(run, pytester: pytest.Pytester, mode):
    pytester.makepyfile(otherplugin=OTHER_PLUGIN)
    result, _ = run("-p", "otherplugin", "-k", ORDER_TEST, *MODES[mode])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = pytest.LineMatcher(result.outlines + result.errlines)
    output.fnmatch_lines(["*another plugin owns --backend*--fdsend-backend=NAME*"])
    args = ("-p", "otherplugin", "--fdsend-backend=examples:good", "-k", ORDER_TEST)
    result, report = run(*args, *MODES[mode])
    assert result.ret == 0
    assert report["backend"]["name"] == "good"


def test_backend_option_owned_by_a_conftest(run, pytester: pytest.Pytester):
    # A project's own conftest.py registers its options after every plugin:
    # the short name must still be free for it, in its plain runs too.
    pytester.makeconftest(OTHER_PLUGIN)
    pytester.makepyfile(
        test_plain="def test_theirs(request):\n"
        '    assert request.config.getoption("backend") == "theirs"\n'
    )
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_plain.py")
    assert plain.ret == 0, plain.stdout.str() + plain.stderr.str()
    result, report = run("--fdsend-backend=examples:good", "-k", ORDER_TEST)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert report["backend"]["name"] == "good"
    result, _ = run("-k", ORDER_TEST)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    output = pytest.LineMatcher(result.outlines + result.errlines)
    output.fnmatch_lines(["*another plugin owns --backend*--fdsend-backend=NAME*"])


ZERO_FDS_TEST = "test_zero_fds_is_a_plain_message"

# -p plugins that change the clause markers of the suite's zero-fds tests (XFER-5).
CLAUSE_EDITS = {
    "unmarked": f"""
def pytest_itemcollected(item):
    if item.originalname == "{ZERO_FDS_TEST}":
        item.own_markers[:] = [m for m in item.own_markers if m.name != "clause"]
""",
    "moved": f"""
import pytest

def pytest_itemcollected(item):
    if item.originalname == "{ZERO_FDS_TEST}":
        item.own_markers[:] = [m for m in item.own_markers if m.name != "clause"]
        item.add_marker(pytest.mark.clause("XFER-1"))
""",
}

PROBLEMS = {
    "unmarked": [
        f"*{ZERO_FDS_TEST}[[]None[]]: no @pytest.mark.clause",
        f"*{ZERO_FDS_TEST}[[]empty-list[]]: no @pytest.mark.clause",
        "*clause XFER-5 has no test",
    ],
    "moved": ["*clause XFER-5 has no test"],
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("edit", list(CLAUSE_EDITS))
def test_contract_and_tests_disagreeing_is_a_usage_error(run, pytester, edit, mode):
    pytester.makepyfile(clause_edit=CLAUSE_EDITS[edit])
    # -k deselects after the check: a clause whose tests are deselected still has them.
    result, report = run("-p", "clause_edit", "-k", ORDER_TEST, *MODES[mode])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # Serially on stderr; under xdist as the suite's collection error, on stdout.
    output = pytest.LineMatcher(result.outlines + result.errlines)
    output.fnmatch_lines(["*fdsend: contract and tests disagree:", *PROBLEMS[edit]])
    if edit == "moved":
        output.no_fnmatch_line("*no @pytest.mark.clause*")
    assert "passed" not in result.stdout.str()
    assert report == {}


def test_expected_selectors_take_brackets_literally():
    from fdsend_conformance.plumbing.expected import parse_expected

    (entry,) = parse_expected("test_coercion.py::test_each_fd_like_alone[binary-file]  why")
    assert entry.matches("test_coercion.py::test_each_fd_like_alone[binary-file]", ())
    assert not entry.matches("test_coercion.py::test_each_fd_like_alone[socket]", ())
    (glob,) = parse_expected("test_x.py::test_y[stream-*]  why")
    assert glob.matches("test_x.py::test_y[stream-SO_INQ]", ())
    assert not glob.matches("test_x.py::test_y[dgram-SO_INQ]", ())
