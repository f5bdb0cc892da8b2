"""The typed results of a run: what a test came to, and what a clause came to.

The lowest floor of the package: every other part (the harness the tests
use, the pytest plumbing, the tools that read reports) imports its results
from here, and this module imports nothing of theirs. Results travel between
them as these values (in a test report's ``user_properties``, in the JSON
report), never as text to be parsed back: the human text (``UNSUPPORTED:
...``, ``expected: ...``) is only ever written, by :meth:`Outcome.labelled`.

Both enums are ``str`` subclasses whose value is what the JSON report and
the terminal show, so ``Status.PASS == "PASS"`` and ``f"{Status.PASS}"`` is
``PASS``.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["Outcome", "Status"]


class _Value(str, Enum):
    """An enum whose members print as their value (as before Python 3.12 changed it)."""

    def __str__(self) -> str:
        return str(self.value)


class Outcome(_Value):
    """What one test came to, as far as the report cares.

    Declared from best to worst: a test whose phases (setup, call,
    teardown) come to different outcomes comes to the worst of them.
    """

    PASSED = "passed"
    SKIPPED = "skipped"
    UNSUPPORTED = "unsupported"
    UNEXPECTEDLY_PASSED = "unexpectedly-passed"
    NON_STRICT = "non-strict"
    EXPECTED = "expected-failure"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        """Position from best (0, passed) to worst (failed)."""
        return list(Outcome).index(self)

    @property
    def is_failure(self) -> bool:
        """A failed test, whether or not the failure was expected."""
        return self in (Outcome.FAILED, Outcome.EXPECTED, Outcome.NON_STRICT)

    @property
    def is_pass(self) -> bool:
        """A passed test, whether or not it was expected to fail."""
        return self in (Outcome.PASSED, Outcome.UNEXPECTEDLY_PASSED)

    @property
    def is_skip(self) -> bool:
        """A test that did not run to a verdict."""
        return self in (Outcome.UNSUPPORTED, Outcome.SKIPPED)

    def labelled(self, detail: str) -> str:
        """The reason pytest shows for this outcome: ``UNSUPPORTED: <detail>`` and so on."""
        return f"{_LABELS[self]}: {detail}"


#: How pytest's own output names the outcomes the plugin makes (human text).
_LABELS = {
    Outcome.UNSUPPORTED: "UNSUPPORTED",
    Outcome.EXPECTED: "expected",
    Outcome.NON_STRICT: "NON-STRICT",
}


class Status(_Value):
    """What one clause came to: the verdict over the outcomes of its tests."""

    PASS = "PASS"
    FAIL = "FAIL"
    NON_STRICT = "NON-STRICT"
    UNSUPPORTED = "UNSUPPORTED"
    SKIPPED = "SKIPPED"
    NOT_RUN = "NOT-RUN"
