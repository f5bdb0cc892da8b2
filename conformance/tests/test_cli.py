"""``fdsend-conformance``: the top-level help names every command."""

from __future__ import annotations

import pytest

from fdsend_conformance.tools.cli import main


@pytest.mark.parametrize("spelling", ["--help", "-h", "help"])
def test_top_level_help_lists_every_command(spelling, capsys):
    assert main([spelling]) == 0
    out = capsys.readouterr().out
    for command in ("run", "gate", "list", "bench", "matrix", "compare"):
        assert f"fdsend-conformance {command}" in out or f"[{command}]" in out


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
