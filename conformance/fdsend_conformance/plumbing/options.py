"""The plugin's command-line options, each also spelled ``--fdsend-NAME``.

They are added after every plugin and the project's initial conftests
have added theirs (see the plugin's ``pytest_load_initial_conftests``). A
short name (``--backend``) is added only where none of those owns it; the
long one always is. :func:`add_options` returns the short names lost that
way, which the plugin keeps for the run to explain itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from fdsend_conformance.backend import EVENT_LOOPS
from fdsend_conformance.harness.timeouts import TEST_TIMEOUT
from fdsend_conformance.plumbing.contract import LEVELS

__all__ = ["DEFAULT_BACKEND", "OPTIONS", "REPORT_FILES", "add_options"]

DEFAULT_BACKEND = "reference"

#: The files a run writes (plumbing/outputs.py), each an option that names
#: its PATH: option name -> (what goes there, how it is laid out).
REPORT_FILES: dict[str, tuple[str, str]] = {
    "conformance-report": ("the per-clause conformance report as JSON", ""),
    "ktap": (
        "the run as KTAP version 1 (the kernel's test output format)",
        "one subtest block per clause, one result line per test",
    ),
    "html": (
        "the report as one self-contained HTML page",
        "the clause table, each failing clause with its why and first failure, backend and kernel",
    ),
}

#: Options as (name, help, extra keyword arguments); the dest is fdsend_NAME.
OPTIONS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "backend",
        "fd-passing implementation to test: a registered name (see --list-backends) "
        f"or a module (mymodule, package.module) or module:attr; default {DEFAULT_BACKEND}",
        {"metavar": "NAME", "default": None},
    ),
    (
        "event-loop",
        "event loop an async backend runs on, one per test: "
        f"{' | '.join(EVENT_LOOPS)} (trio for backends built on anyio); "
        "default: the backend's first; ignored for a synchronous backend",
        {"choices": EVENT_LOOPS, "default": None},
    ),
    (
        "list-backends",
        "list the registered backends with their versions and exit",
        {"action": "store_true", "default": False},
    ),
    (
        "level",
        "conformance level that fails the run: core (MUST clauses, default) "
        "or strict (MUST and SHOULD)",
        {"choices": LEVELS, "default": "core"},
    ),
    *(
        (
            name,
            f"write {what} to PATH" + (f": {layout}" if layout else ""),
            {"metavar": "PATH", "default": None},
        )
        for name, (what, layout) in REPORT_FILES.items()
    ),
    (
        "expected",
        "expected-failure file (default: the built-in file of the backend, if any); "
        "'none' to use none",
        {"metavar": "PATH", "default": None},
    ),
    (
        "isolate",
        "run each conformance test in a forked child so a crashing or hanging backend "
        "cannot end or break the run: auto (default: yes, but not with --pdb, nor for a driver, "
        "which runs in a process of its own), yes, no",
        {"choices": ("auto", "yes", "no"), "default": "auto"},
    ),
    (
        "test-timeout",
        "seconds before a conformance test is failed as hung (pytest-timeout); "
        f"default {TEST_TIMEOUT:g}",
        {"metavar": "SECONDS", "type": float, "default": TEST_TIMEOUT},
    ),
]


def _taken(parser: pytest.Parser, option: str) -> bool:
    """Whether another plugin or a conftest has registered ``option`` so far.

    Asked through the parser's public ``parse_known_and_unknown_args``: an
    option nobody registered comes back unknown; one somebody did is taken
    (parsed, or refused for its value: a flag given a value, a value not
    among its choices).
    """
    try:
        _, unknown = parser.parse_known_and_unknown_args([f"{option}=0"])
    except pytest.UsageError:
        return True
    return f"{option}=0" not in unknown


def add_options(parser: pytest.Parser) -> frozenset[str]:
    """Add every option to the ``fdsend`` group, after the other plugins' options.

    Returns the short names (``backend``, ...) that belong to another plugin
    or a conftest in this run, so that only ``--fdsend-NAME`` was added.
    """
    shadowed: set[str] = set()
    taken = {name for name, _, _ in OPTIONS if _taken(parser, f"--{name}")}
    group = parser.getgroup("fdsend", "fdsend conformance suite")
    for name, help_text, kwargs in OPTIONS:
        dest = "fdsend_" + name.replace("-", "_")
        if name not in taken:
            group.addoption(f"--{name}", f"--fdsend-{name}", dest=dest, help=help_text, **kwargs)
        else:  # another plugin or a conftest owns --NAME
            shadowed.add(name)
            group.addoption(
                f"--fdsend-{name}",
                dest=dest,
                help=help_text + f" (--{name} belongs to another plugin)",
                **kwargs,
            )
    return frozenset(shadowed)
