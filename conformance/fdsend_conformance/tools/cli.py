"""``fdsend-conformance``: run the packaged suite, gate a CI job, list backends.

The subcommands ``bench``, ``compare``, ``soak``, ``vm`` and
``kernels`` belong to their own modules; ``main`` hands them their arguments. ``HELP`` is what
``--help`` prints.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

__all__ = ["HELP", "SUITE_INI", "add_backend_option", "main", "suite_command"]

HELP = """\
usage: fdsend-conformance [COMMAND] [options]

Run the fdsend conformance suite against an fd-passing implementation.

commands:
  run --backend NAME [pytest options]   run the suite and print the per-clause
                                        report (the default command)
  gate --backend NAME [--strict] [--junit-xml PATH] [--report PATH]
                                        CI gate: exit 1 when a MUST clause fails
  list                                  list the registered backends
  bench [options]                       benchmark backends against raw floors
  compare OLD.json NEW.json             clauses that changed between two reports
  soak [--backend NAME] [--fds N]       pass many fds between two processes
  vm KERNEL [pytest options]            the suite on another kernel, in a VM
                                        (KERNEL: a vmlinuz or debian:6.1)
  kernels [--run KERNEL]                regenerate docs/kernels.md, the
                                        clause-by-kernel matrix
  kernels --brackets                    run the fix table's kernel brackets:
                                        docs/kernel-regressions.md

NAME is a registered backend (see list), a module (mymodule, package.module)
or module:attr, or driver:COMMAND (a driver, docs/drivers.md; COMMAND may be
a driver's folder, built first). "fdsend-conformance COMMAND --help" tells more about one
command. Options that run and gate do not know go to pytest unchanged
(-k EXPR, -n auto, --level strict, ...). The suite runs with its own empty
pytest configuration, so the calling project's settings do not change its
result.
"""

#: The suite's pytest configuration here: a packaged, empty one (see the file).
SUITE_INI = Path(__file__).resolve().parent.parent / "suite.ini"

#: Subcommands that belong to other modules: name -> "module:function".
_DELEGATED = {
    "bench": "fdsend_conformance.tools.bench.cli:main",
    "compare": "fdsend_conformance.tools.compare:main",
    "soak": "fdsend_conformance.tools.soak:main",
    "vm": "fdsend_conformance.tools.vm:main",
    "kernels": "fdsend_conformance.tools.kernels:main",
}


def suite_command(
    backend: str | None,
    extra: Sequence[str],
    rootdir: Path | None = None,
    package: str = "fdsend_conformance",
) -> list[str]:
    """The command that runs the packaged suite against ``backend``, then ``extra``.

    A fresh interpreter (nothing imported here leaks into the run) with the
    suite's own pytest configuration, rooted at ``rootdir`` (default: the
    current directory), collecting ``package`` (default: all of the suite).
    """
    command = [sys.executable, "-m", "pytest", "--pyargs", package]
    command += ["-c", str(SUITE_INI), "--rootdir", str(rootdir or os.getcwd())]
    command += ["-p", "no:cacheprovider"]
    if backend:
        command.append(f"--fdsend-backend={backend}")
    return command + list(extra)


def add_backend_option(parser: argparse.ArgumentParser, what: str, default: str) -> None:
    """``--backend NAME``, repeatable, for the tools that run several backends.

    Gives a list, empty when not given; ``what`` says what a NAME is,
    ``default`` what no NAME means.
    """
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="NAME",
        help=f"{what}; repeatable; default: {default}",
    )


def _run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="fdsend-conformance run",
        description="Run the conformance suite against a backend and print the per-clause "
        "report. Options not listed here go to pytest (-k EXPR, -n auto, --level strict, ...).",
    )
    parser.add_argument(
        "--backend", metavar="NAME", help="backend name, module or module:attr; default reference"
    )
    known, extra = parser.parse_known_args(argv)
    return subprocess.call(suite_command(known.backend, extra))


def _gate(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="fdsend-conformance gate",
        description=(
            "CI gate: run the suite, write JUnit XML and the JSON conformance report, "
            "exit non-zero when a MUST clause fails (with --strict: any clause)."
        ),
    )
    parser.add_argument(
        "--backend", required=True, metavar="NAME", help="backend name, module or module:attr"
    )
    parser.add_argument("--strict", action="store_true", help="SHOULD clauses gate too")
    parser.add_argument(
        "--junit-xml",
        default="fdsend-conformance.xml",
        metavar="PATH",
        help="JUnit XML of every test (default %(default)s)",
    )
    parser.add_argument(
        "--report",
        default="fdsend-conformance.json",
        metavar="PATH",
        help="the JSON conformance report (default %(default)s)",
    )
    parser.add_argument("--expected", metavar="PATH", help="expected-failure file of the backend")
    known, extra = parser.parse_known_args(argv)
    args = [
        f"--junitxml={known.junit_xml}",
        f"--fdsend-conformance-report={known.report}",
        f"--fdsend-level={'strict' if known.strict else 'core'}",
        "-rfE",
    ]
    if known.expected:
        args.append(f"--fdsend-expected={known.expected}")
    status = subprocess.call(suite_command(known.backend, [*args, *extra]))
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        print("fdsend-conformance gate: no test ran", file=sys.stderr)
        return 1
    return status


def _list(argv: Sequence[str]) -> int:
    command = [sys.executable, "-m", "pytest", "--fdsend-list-backends", "-c", str(SUITE_INI)]
    return subprocess.call([*command, *argv])


def _delegate(name: str, argv: Sequence[str]) -> int:
    module_name, _, function = _DELEGATED[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"fdsend-conformance {name}: not available ({exc})", file=sys.stderr)
        return 2
    return int(getattr(module, function)(list(argv)))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``fdsend-conformance`` and ``python -m fdsend_conformance``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["-h"], ["--help"], ["help"]):
        print(HELP, end="")
        return 0
    command = args[0] if args and not args[0].startswith("-") else "run"
    rest = args[1:] if args and args[0] == command else args
    if command == "run":
        return _run(rest)
    if command == "gate":
        return _gate(rest)
    if command == "list":
        return _list(rest)
    if command in _DELEGATED:
        return _delegate(command, rest)
    print(f"fdsend-conformance: unknown command {command!r}", file=sys.stderr)
    print(HELP, end="", file=sys.stderr)
    return 2
