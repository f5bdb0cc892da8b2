"""``fdsend-conformance``: help that reads well in a terminal, the suite's configuration."""

from __future__ import annotations

import os
import re

import pytest

from fdsend_conformance.tools.cli import SUITE_INI, main, suite_command


@pytest.mark.parametrize("spelling", ["--help", "-h", "help"])
def test_top_level_help_lists_every_command(spelling, capsys):
    assert main([spelling]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if re.match(r"  [a-z]", line)}
    assert listed == {"run", "gate", "list", "bench", "compare", "soak", "vm", "kernels"}


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


#: reStructuredText that reads as noise in a terminal.
RST_MARKUP = re.compile(r"``|::|:(?:func|class|mod|meth|data|attr):`")

COMMANDS = ["run", "gate", "bench", "compare", "soak", "vm", "kernels"]


def help_of(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    """What ``fdsend-conformance COMMAND --help`` prints (argparse exits 0)."""
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_is_plain_text(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert not RST_MARKUP.search(out), RST_MARKUP.findall(out)
    assert out.startswith("usage: fdsend-conformance")
    assert "soak" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_is_plain_text_and_explains_every_option(command, capsys):
    out = help_of(command, capsys)
    assert out.startswith(f"usage: fdsend-conformance {command}")
    assert not RST_MARKUP.search(out), RST_MARKUP.findall(out)
    # argparse writes an option's help after two spaces, or on the next,
    # deeper-indented line; an option with neither has none.
    lines = out.splitlines()
    options = [(i, line) for i, line in enumerate(lines) if line.startswith("  -")]
    bare = [
        line
        for i, line in options
        if not re.search(r"\S {2,}\S", line.strip())
        and not (i + 1 < len(lines) and lines[i + 1].startswith(" " * 8))
    ]
    assert options
    assert not bare, bare


def test_suite_runs_with_the_packaged_empty_configuration():
    args = suite_command("reference", [])
    config = args[args.index("-c") + 1]
    assert config == str(SUITE_INI)
    assert os.devnull not in args
    lines = [line.strip() for line in SUITE_INI.read_text().splitlines()]
    assert [line for line in lines if line and not line.startswith("#")] == ["[pytest]"]
    assert SUITE_INI.name != "pytest.ini"  # pytest must never find it by itself
