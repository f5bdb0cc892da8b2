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
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from fdsend_conformance.plumbing.options import DEFAULT_BACKEND, OPTIONS

__all__ = ["HELP", "SUITE_INI", "add_backend_option", "main", "suite_command"]

HELP = """\
usage: fdsend-conformance COMMAND [options]

Run the fdsend conformance suite against an fd-passing implementation.

commands:
  run --backend NAME [options]          run the suite and print the per-clause
                                        report
  gate --backend NAME [options]         CI gate: run, write JUnit XML and the
                                        JSON report, exit 1 when a MUST clause
                                        fails (--level strict: any clause)
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
a driver's folder, built first); a module must be importable (PYTHONPATH, or
pip install it). "fdsend-conformance run --help" lists the suite's options
(--level, --expected, --conformance-report, --html, ...): the same names as
in plain pytest. Other options go to pytest unchanged (-k EXPR, -n auto, -x,
...). The suite runs with its own empty pytest configuration and leaves
nothing in the current folder, so the calling project's settings do not change its
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


#: What run and gate say about the options they do not list.
_PYTEST_NOTE = (
    "Every other option is pytest's and goes to it unchanged: -k EXPR, -m EXPR, "
    "-n NUM (pytest-xdist), -x, -v, --tb STYLE, ... (python -m pytest --help lists them)."
)


def _suite_parser(prog: str, description: str, backend_help: str) -> argparse.ArgumentParser:
    """A parser of the suite's own options, spelled as in plain pytest (``--level`` ...)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=_PYTEST_NOTE)
    group = parser.add_argument_group(
        "the suite's options (the same in plain pytest, where each is also --fdsend-NAME)"
    )
    for name, help_text, kwargs in OPTIONS:
        text = backend_help if name == "backend" else help_text
        group.add_argument(f"--{name}", help=text.replace("%", "%%"), **kwargs)
    return parser


def _suite_args(parser: argparse.ArgumentParser, known: argparse.Namespace) -> list[str]:
    """The suite's options given, for pytest: ``--fdsend-NAME=VALUE`` (no plugin owns those)."""
    args = []
    for name, _, kwargs in OPTIONS:
        value = getattr(known, name.replace("-", "_"))
        if value == parser.get_default(name.replace("-", "_")):
            continue
        if kwargs.get("action") == "store_true":
            args.append(f"--fdsend-{name}")
        else:
            args.append(
                f"--fdsend-{name}={value:g}"
                if isinstance(value, float)
                else f"--fdsend-{name}={value}"
            )
    return args


def _call_suite(args: Sequence[str]) -> int:
    """Run the suite (:func:`suite_command`); Hypothesis's files go to a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="fdsend-hypothesis-") as storage:
        env = {**os.environ, "HYPOTHESIS_STORAGE_DIRECTORY": storage}
        return subprocess.call(suite_command(None, args), env=env)


def _run(argv: Sequence[str]) -> int:
    parser = _suite_parser(
        "fdsend-conformance run",
        "Run the conformance suite against a backend and print the per-clause report.",
        f"backend name, module or module:attr; default {DEFAULT_BACKEND}",
    )
    known, extra = parser.parse_known_args(argv)
    return _call_suite([*_suite_args(parser, known), *extra])


def _gate(argv: Sequence[str]) -> int:
    parser = _suite_parser(
        "fdsend-conformance gate",
        "CI gate: run the suite, write JUnit XML (fdsend-conformance.xml) and the JSON "
        "conformance report (fdsend-conformance.json) unless told other paths, and exit "
        "non-zero when a MUST clause fails (with --level strict: any clause).",
        "backend name, module or module:attr (required)",
    )
    parser.set_defaults(conformance_report="fdsend-conformance.json")
    gate = parser.add_argument_group("pytest's options the gate sets")
    gate.add_argument(
        "--junit-xml",
        "--junitxml",
        default="fdsend-conformance.xml",
        metavar="PATH",
        help="JUnit XML of every test (default %(default)s)",
    )
    for old, new in (("--strict", "--level strict"), ("--report", "--conformance-report PATH")):
        # pytest would take --strict as its own (--strict-markers): refuse the old names
        parser.add_argument(
            old, nargs="?", const=new, help=argparse.SUPPRESS, dest=f"old_{old[2:]}"
        )
    known, extra = parser.parse_known_args(argv)
    for old, new in (("--strict", "--level strict"), ("--report", "--conformance-report PATH")):
        if getattr(known, f"old_{old[2:]}") is not None:
            parser.error(f"{old} is now {new}, the name plain pytest takes too")
    if not known.backend:
        parser.error("the following arguments are required: --backend")
    args = [*_suite_args(parser, known), f"--junitxml={known.junit_xml}", "-rfE", *extra]
    if known.conformance_report == "fdsend-conformance.json":
        args.append(f"--fdsend-conformance-report={known.conformance_report}")
    status = _call_suite(args)
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
    if not args or args[:1] in (["-h"], ["--help"], ["help"]):
        print(HELP, end="")
        return 0
    command = args[0] if not args[0].startswith("-") else "run"
    rest = args[1:] if args[0] == command else args
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
