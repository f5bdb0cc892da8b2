"""``--ktap PATH``: KTAP version 1, checked by a parser written from the kernel's spec.

The parser below follows Documentation/dev-tools/ktap.rst: a version line,
a plan ``1..N``, result lines ``ok|not ok N [description][ # [DIRECTIVE]
[diagnostic]]`` numbered from 1, subtests indented by two spaces each
starting with their own version line, and ``#`` diagnostic lines anywhere.
It is strict where the writer must be: it refuses unknown lines, a count
that differs from the plan, numbers out of sequence and a parent whose
result contradicts its subtests'.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from suite_runs import run_suite

from fdsend_conformance.outcome import Outcome
from fdsend_conformance.plumbing import ktap

VERSION = re.compile(r"KTAP version 1")
PLAN = re.compile(r"1\.\.(\d+)")
RESULT = re.compile(r"(ok|not ok) (\d+)(?: ([^#]*?))?\s*(?:# ?(.*))?")
DIRECTIVES = ("SKIP", "TODO", "XFAIL", "TIMEOUT", "ERROR")


class KtapError(ValueError):
    """The text is not valid KTAP (the message names the line)."""


@dataclass
class Node:
    number: int
    ok: bool
    name: str
    directive: str | None
    diagnostic: str
    subtests: list[Node] = field(default_factory=list)


def _directive(text: str | None) -> tuple[str | None, str]:
    if not text:
        return None, ""
    word, _, rest = text.partition(" ")
    if word in DIRECTIVES:
        return word, rest.strip()
    return None, text.strip()


class Parser:
    def __init__(self, text: str) -> None:
        self.lines = [line for line in text.splitlines() if line.strip()]
        self.at = 0

    def _peek(self) -> str | None:
        while self.at < len(self.lines):
            line = self.lines[self.at]
            if line.lstrip().startswith("#"):  # a diagnostic line, at any indentation
                self.at += 1
                continue
            return line
        return None

    def _take(self, depth: int, pattern: re.Pattern[str], what: str) -> re.Match[str]:
        line = self._peek()
        indent = "  " * depth
        if line is None:
            raise KtapError(f"end of text where a {what} was due")
        match = pattern.fullmatch(line[len(indent) :]) if line.startswith(indent) else None
        if match is None or line[len(indent) :].startswith(" "):
            raise KtapError(f"line {self.at + 1}: {line!r} is not a {what} at depth {depth}")
        self.at += 1
        return match

    def block(self, depth: int) -> list[Node]:
        """A version line, a plan and as many tests as it says, at ``depth``."""
        self._take(depth, VERSION, "version line")
        planned = int(self._take(depth, PLAN, "plan")[1])
        tests: list[Node] = []
        while len(tests) < planned:
            line = self._peek()
            subtests: list[Node] = []
            if line is not None and line.startswith("  " * (depth + 1) + "KTAP version"):
                subtests = self.block(depth + 1)
            match = self._take(depth, RESULT, "result line")
            number = int(match[2])
            if number != len(tests) + 1:
                raise KtapError(f"test number {number} where {len(tests) + 1} was due")
            directive, diagnostic = _directive(match[4])
            test = Node(number, match[1] == "ok", match[3] or "", directive, diagnostic, subtests)
            failed = [t for t in subtests if not t.ok and t.directive != "SKIP"]
            if subtests and bool(failed) == test.ok:
                raise KtapError(f"{test.name}: result contradicts its subtests")
            tests.append(test)
        return tests

    def document(self) -> list[Node]:
        tests = self.block(0)
        if self._peek() is not None:
            raise KtapError(f"line {self.at + 1}: {self._peek()!r} after the last planned test")
        return tests


def parse(text: str) -> list[Node]:
    return Parser(text).document()


# The parser itself: it must refuse what the spec forbids.

GOOD = """KTAP version 1
1..2
  KTAP version 1
  1..2
  ok 1 a
  not ok 2 b
# example failed
not ok 1 example
  KTAP version 1
  1..1
  ok 1 c # SKIP no memfd
ok 2 other # SKIP no memfd
"""


def test_parser_reads_the_specs_shape():
    first, second = parse(GOOD)
    assert (first.name, first.ok) == ("example", False)
    assert [t.name for t in first.subtests] == ["a", "b"]
    assert (second.directive, second.diagnostic) == ("SKIP", "no memfd")
    assert second.subtests[0].diagnostic == "no memfd"


@pytest.mark.parametrize(
    ("broken", "complaint"),
    [
        (GOOD.replace("KTAP version 1\n1..2", "1..2", 1), "version line"),
        (GOOD.replace("1..2\n  KTAP", "1..3\n  KTAP", 1), "end of text"),
        (GOOD.replace("  ok 1 a", "    ok 1 a"), "result line"),
        (GOOD.replace("not ok 2 b", "not ok 3 b"), "test number 3"),
        (GOOD.replace("not ok 1 example", "ok 1 example"), "contradicts"),
        (GOOD + "ok 3 extra\n", "after the last"),
    ],
    ids=["no-version", "plan-too-big", "bad-indent", "bad-number", "parent-ok", "extra-test"],
)
def test_parser_refuses_broken_ktap(broken: str, complaint: str):
    with pytest.raises(KtapError, match=complaint):
        parse(broken)


# The writer on plain data.


def _render(*cases: ktap.Case) -> list[Node]:
    text = ktap.render(cases, ["C-1", "C-2", "C-3"], header=["a # header"])
    assert text.startswith("KTAP version 1\n1..")
    return parse(text)


def test_a_failing_test_fails_its_clause_and_only_its_clause():
    clauses = _render(
        ktap.case_of("t.py::good", ["C-1"], Outcome.PASSED),
        ktap.case_of("t.py::bad", ["C-1"], Outcome.FAILED),
        ktap.case_of("t.py::other", ["C-2"], Outcome.PASSED),
    )
    assert [(c.name, c.ok) for c in clauses] == [("C-1", False), ("C-2", True)]
    tests = [(t.name, t.ok) for t in clauses[0].subtests]
    assert tests == [("t.py::bad", False), ("t.py::good", True)]


def test_skips_and_expected_failures_carry_their_reasons():
    skipped, mixed = _render(
        ktap.case_of("t.py::a", ["C-1"], Outcome.SKIPPED, "no SO_PASSPIDFD\n(6.5)"),
        ktap.case_of("t.py::b", ["C-1"], Outcome.UNSUPPORTED, "UNSUPPORTED: x lacks flags"),
        ktap.case_of("t.py::c", ["C-3"], Outcome.EXPECTED, "stdlib ignores flags"),
        ktap.case_of("t.py::d", ["C-3"], Outcome.SKIPPED, "no memfd"),
    )
    assert (skipped.ok, skipped.directive) == (True, "SKIP")
    assert skipped.diagnostic == "no SO_PASSPIDFD (6.5); UNSUPPORTED: x lacks flags"
    assert (mixed.name, mixed.ok, mixed.directive, mixed.diagnostic) == (
        "C-3",
        True,
        "XFAIL",
        "stdlib ignores flags",
    )
    assert [(t.directive, t.diagnostic) for t in mixed.subtests] == [
        ("XFAIL", "stdlib ignores flags"),
        ("SKIP", "no memfd"),
    ]


def test_a_test_of_two_clauses_is_in_both_blocks_and_hashes_leave_names():
    one, two = _render(ktap.case_of("t.py::x[a#b]", ["C-2", "C-1"], Outcome.PASSED))
    assert [t.name for t in one.subtests] == [t.name for t in two.subtests] == ["t.py::x[a%23b]"]
    assert (one.name, two.name) == ("C-1", "C-2")


# A real run of the packaged suite.


@pytest.fixture
def suite_ktap(pytester: pytest.Pytester):
    def run(*args: str) -> tuple[pytest.RunResult, str]:
        path = pytester.path / "run.ktap"
        result, _ = run_suite(
            pytester,
            "--backend",
            "multiprocessing",
            "-k",
            "test_truncation or test_transfer",
            f"--ktap={path}",
            *args,
        )
        return result, path.read_text()

    return run


def _by_directive(clauses: list[Node]) -> dict[str | None, set[str]]:
    found: dict[str | None, set[str]] = {}
    for clause in clauses:
        found.setdefault(clause.directive if clause.ok else "not ok", set()).add(clause.name)
    return found


def test_real_run_parses_with_expected_failures_and_unsupported_skips(suite_ktap):
    result, text = suite_ktap()
    assert result.ret == 0, result.stdout.str()
    clauses = parse(text)
    found = _by_directive(clauses)
    assert "TRUNC-1" in found["XFAIL"]  # in the backend's expected-failure file
    [trunc] = [c for c in clauses if c.name == "TRUNC-1"]
    assert trunc.diagnostic.startswith("the control buffer is CMSG_SPACE(size * 4)")  # its reason
    assert "XFER-1" in found[None]  # passes
    assert "not ok" not in found
    skips = [t for c in clauses for t in c.subtests if t.directive == "SKIP"]
    assert skips
    assert all(t.diagnostic.startswith("UNSUPPORTED: multiprocessing ") for t in skips)
    assert text.splitlines()[2].startswith("# fdsend conformance: backend multiprocessing")


def test_real_run_without_expected_file_reports_not_ok(suite_ktap):
    result, text = suite_ktap("--expected", "none")
    assert result.ret == 1
    found = _by_directive(parse(text))
    assert "TRUNC-1" in found["not ok"]
    assert "XFAIL" not in found
