"""The package's floors hold: read every module's imports (with ast) and check where they reach.

From the bottom: ``backend`` and ``outcome`` (declarations), ``harness`` (what
the tests use), the ``suite`` (the tests), ``plumbing`` (the pytest plugin
and what it runs the suite with), ``tools`` (the command lines). A module
imports from its own floor and the floors below, never above; an import
inside a function counts too. The suite's conftest.py is the one door by
which the plugin's fixtures reach the suite.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import fdsend_conformance

PACKAGE = Path(fdsend_conformance.__file__).parent

#: Where each part of the package must not reach (the parts above it).
FORBIDDEN = {
    "backend.py": ("plumbing", "tools", "suite", "harness", "adapters"),
    "outcome.py": ("plumbing", "tools", "suite", "harness", "adapters"),
    "adapters": ("plumbing", "tools", "suite", "harness"),
    "harness": ("plumbing", "tools", "suite", "adapters"),
    "suite": ("plumbing", "tools", "adapters"),
    "plumbing": ("tools", "suite"),
}

#: Modules allowed one reach up, and why.
DOORS = {
    "suite/conftest.py": "loads the plugin's fixtures into the suite, and only there",
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path``, relative imports resolved."""
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join([*base, node.module or ""]).strip(".")
            found.append((node.lineno, module))
    return found


def reaches_up(path: Path) -> list[str]:
    """The imports of ``path`` that reach a floor above its own."""
    relative = path.relative_to(PACKAGE).as_posix()
    if relative in DOORS:
        return []
    part = relative.split("/")[0]
    forbidden = FORBIDDEN.get(part, ())
    return [
        f"{relative}:{line} imports {module}"
        for line, module in imported_modules(path)
        if any(module.startswith(f"fdsend_conformance.{above}") for above in forbidden)
    ]


def test_no_module_reaches_above_its_floor():
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50  # the walk found the package
    offending = [hit for path in modules for hit in reaches_up(path)]
    assert not offending, "imports that reach above their floor:\n  " + "\n  ".join(offending)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from fdsend_conformance.plumbing.callers import open_caller\n", True),
        ("def f():\n    import fdsend_conformance.tools.soak\n", True),
        ("from ..plumbing import fixtures\n", True),
        ("from fdsend_conformance.harness.fds import identity\n", False),
        ("from . import fds\n", False),
    ],
)
def test_the_check_sees_every_spelling_of_an_import(tmp_path, monkeypatch, source, expected):
    harness = tmp_path / "fdsend_conformance" / "harness"
    harness.mkdir(parents=True)
    module = harness / "example.py"
    module.write_text(source, encoding="utf-8")
    monkeypatch.setattr(f"{__name__}.PACKAGE", tmp_path / "fdsend_conformance")
    assert bool(reaches_up(module)) is expected
