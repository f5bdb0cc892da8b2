"""``pytest --backend=NAME`` run anywhere: no test paths, the packaged suite runs.

Each test runs pytest in a subprocess in an empty pytester folder, as a user
would after ``pip install fdsend-conformance``.
"""

from __future__ import annotations

import json
import os
import textwrap

import pytest

# Each test runs pytest in a subprocess (120 s each at most): more than the default 60 s.
pytestmark = pytest.mark.timeout(300)

ORDER_TEST = "test_several_fds_arrive_in_order"
MODES = {"serial": (), "xdist": ("-n", "2")}

#: A one-module backend, importable only by its top-level name.
MYMODULE = '''
"""sendfds/recvfds that hand over to the reference."""

import fdsend

version = "0.2"


def sendfds(sock, msg, flags=0, fds=None):
    return fdsend.sendfds(sock, msg, flags, fds)


def recvfds(sock, size, flags=0, numfds=64):
    return fdsend.recvfds(sock, size, flags, numfds)
'''


def run_here(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)


def collected(result: pytest.RunResult) -> int:
    """How many tests the run collected (before deselection)."""
    [line] = [line for line in result.outlines if line.startswith("collected ")]
    return int(line.split()[1])


@pytest.mark.parametrize("mode", list(MODES))
def test_backend_in_an_empty_folder_runs_the_suite_and_reports(pytester: pytest.Pytester, mode):
    assert not list(pytester.path.iterdir())
    report = pytester.path.parent / f"report-{mode}.json"
    # two modules of the suite (the keyword also matches PROP-1's test_transfer_invariants)
    selection = ("-k", "(test_transfer or test_errors) and not invariants")
    args = ("--backend=reference", f"--conformance-report={report}", *selection)
    result = run_here(pytester, *args, *MODES[mode])
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*fdsend conformance report*", "XFER *PASS*XFER-1..8*"])
    data = json.loads(report.read_text())
    assert data["backend"]["name"] == "reference"
    assert data["conforming"] is True
    statuses = {c["id"]: c["status"] for c in data["clauses"]}
    assert statuses["XFER-1"] == statuses["ERR-1"] == "PASS"
    if not MODES[mode]:  # serial: the whole suite collected, each module by its short name
        assert collected(result) > 100
        # installed: by import path; in a checkout: from the suite's folder
        short = r"^(?:fdsend_conformance/suite/)?"
        result.stdout.re_match_lines([short + r"test_errors\.py \.+", short + r"test_transfer"])
    assert "site-packages" not in result.stdout.str()


def test_collects_every_suite_test_the_pyargs_run_does(pytester: pytest.Pytester):
    anywhere = run_here(pytester, "--backend=reference", "--collect-only", "-q")
    spelled_out = run_here(
        pytester, "--pyargs", "fdsend_conformance", "--backend=reference", "--collect-only", "-q"
    )
    assert anywhere.ret == spelled_out.ret == 0
    tests = listed_tests(anywhere)
    assert len(tests) > 100
    assert tests == listed_tests(spelled_out)


def listed_tests(result: pytest.RunResult) -> set[str]:
    """``module.py::test[params]`` of each test a ``--collect-only -q`` run listed."""
    listed = [line.partition("::") for line in result.outlines if "::" in line]
    return {f"{os.path.basename(path)}::{rest}" for path, _, rest in listed}


def test_top_level_module_is_a_backend(pytester: pytest.Pytester):
    pytester.makepyfile(mymodule=MYMODULE)
    report = pytester.path / "report.json"
    result = run_here(
        pytester, "--backend=mymodule", "-k", ORDER_TEST, f"--conformance-report={report}"
    )
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert collected(result) > 100  # the whole suite, then -k
    data = json.loads(report.read_text())
    assert data["backend"]["name"] == "mymodule"
    assert data["backend"]["origin"] == "mymodule"
    assert data["backend"]["version"] == "0.2"
    assert {c["id"]: c["status"] for c in data["clauses"]}["XFER-1"] == "PASS"


def test_top_level_name_that_is_no_module_is_an_unknown_backend(pytester: pytest.Pytester):
    result = run_here(pytester, "--backend=no_such_module_here")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*unknown backend 'no_such_module_here'*No module named 'no_such_module_here'*"
            "PYTHONPATH*available:*reference*"
        ]
    )


def test_module_whose_own_import_fails_says_why(pytester: pytest.Pytester):
    pytester.makepyfile(brokenmodule="import not_installed_anywhere\n")
    result = run_here(pytester, "--backend=brokenmodule")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*cannot load backend 'brokenmodule' "
            "(ModuleNotFoundError: No module named 'not_installed_anywhere')*"
        ]
    )


@pytest.mark.parametrize("mode", list(MODES))
def test_paths_without_suite_tests_are_a_usage_error_saying_what_to_run(
    pytester: pytest.Pytester, mode
):
    theirs = pytester.mkdir("theirs")
    (theirs / "test_theirs.py").write_text("def test_theirs():\n    pass\n")
    result = run_here(pytester, "--backend=reference", "theirs", *MODES[mode])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # Serially on stderr; under xdist as a collection error, on stdout.
    output = pytest.LineMatcher(result.outlines + result.errlines)
    output.fnmatch_lines(
        [
            "*fdsend: --backend=reference names a backend to test, but no test of the "
            "conformance suite was collected from theirs.",
            "*To run the suite: pytest --backend=reference  (with no test paths), "
            "or pytest --pyargs fdsend_conformance --backend=reference",
        ]
    )
    assert "passed" not in result.stdout.str()


def test_own_tests_without_backend_are_untouched(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_theirs=textwrap.dedent(
            """
            def test_theirs():
                pass
            """
        )
    )
    result = run_here(pytester)
    assert result.ret == 0
    result.assert_outcomes(passed=1)
    assert "fdsend conformance report" not in result.stdout.str()
