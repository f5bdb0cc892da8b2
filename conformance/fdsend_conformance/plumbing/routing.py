"""Collection routing: ``pytest --backend=NAME`` runs the suite from any folder.

pytest collects ``testpaths``, or the current folder, when given no paths.
With ``--backend`` and no test paths, the plugin adds the installed suite to
what pytest collects (:func:`route`), walking down to it through a folder the
walk would skip, such as the ``.venv`` in the current folder
(:func:`ignore_beside_suite`). An installed suite's modules are named by
import path, the same on every machine (:func:`suite_module`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "SUITE_DIR",
    "ignore_beside_suite",
    "in_suite",
    "nothing_to_test",
    "route",
    "suite_complete",
    "suite_module",
    "suite_node",
]

SUITE_DIR = Path(__file__).parent.parent / "suite"

#: A folder pytest's walk would skip that holds the installed suite (see :func:`route`).
_WALK_INTO = pytest.StashKey[Path]()


def in_suite(item: pytest.Item) -> bool:
    """Whether ``item`` is a test of the conformance suite."""
    return SUITE_DIR in Path(str(item.path)).parents


def suite_complete(items: list[pytest.Item]) -> bool:
    """Whether ``items`` come from every module of the suite."""
    return {Path(str(item.path)) for item in items} >= set(SUITE_DIR.rglob("test_*.py"))


def _installed() -> bool:
    """Whether the suite runs from an installed package, not from a checkout.

    A checkout has the distribution's ``pyproject.toml`` beside the package.
    """
    return not (SUITE_DIR.parent.parent / "pyproject.toml").is_file()


def suite_module(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """An installed suite's module named by import path: ``fdsend_conformance/suite/test_x.py``.

    pytest names a module by its path from the rootdir, which for an
    installed package runs through the environment
    (``.venv/lib/python3.11/site-packages/...``) or, outside the rootdir, by
    whatever argument reached it. The import path is the same on every
    machine, so progress lines stay short and the ids in two reports (two
    kernels, two hosts) compare. In a checkout pytest's own ids stay (None):
    they are paths a developer can open.
    """
    if SUITE_DIR not in module_path.parents or not _installed():
        return None
    nodeid = module_path.relative_to(SUITE_DIR.parent.parent).as_posix()
    module: pytest.Module = pytest.Module.from_parent(parent, path=module_path, nodeid=nodeid)
    return module


def _suite_path() -> Path:
    """The suite's folder as pytest's walk spells it: absolute, links not resolved."""
    return Path(os.path.abspath(SUITE_DIR))


def _path_of(config: pytest.Config, arg: str) -> Path | None:
    """The file or directory ``arg`` names: a path (maybe with ``::`` parts) or a module."""
    name = arg.split("::")[0]
    path = Path(config.invocation_params.dir, name)
    if path.exists():
        return Path(os.path.abspath(path))
    if not config.getoption("pyargs"):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin:
        return None
    origin = Path(os.path.abspath(spec.origin))
    return origin.parent if origin.name == "__init__.py" else origin


def route(config: pytest.Config) -> None:
    """With ``--backend`` and no test paths on the command line, collect the suite too.

    The decision is made from the arguments alone, the same way on every
    xdist worker. Explicit paths are left as they are (the plugin says so
    when they hold no test of the suite).
    """
    if not config.getoption("fdsend_backend"):
        return
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        return
    paths = [path for path in (_path_of(config, arg) for arg in config.args) if path]
    suite = _suite_path()
    if any(path == suite or suite in path.parents for path in paths):
        return  # the suite, or a part of it, is what the user's settings ask for
    above = [path for path in paths if path in suite.parents]
    if not above:
        config.args.append(str(suite))
        return
    skipped = [folder for folder in (_skipped_on_the_way(config, p) for p in above) if folder]
    if skipped:
        # The suite is installed below a folder being walked, in a folder the
        # walk skips (the .venv in the current folder): walk down to the suite.
        # (An argument for it would be dropped as one inside another.)
        config.stash[_WALK_INTO] = skipped[0]


def _skipped_on_the_way(config: pytest.Config, path: Path) -> Path | None:
    """The folder between ``path``, a folder above the suite, and the suite that the walk skips.

    None when the walk gets there. The folders are asked as the walk asks them.
    """
    suite = _suite_path()
    above = list(suite.parents)  # (Path.parents takes no slice before Python 3.10)
    for folder in reversed(above[: above.index(path)]):
        if config.hook.pytest_ignore_collect(collection_path=folder, config=config):
            return folder
    return None


def ignore_beside_suite(collection_path: Path, config: pytest.Config) -> bool | None:
    """Inside a skipped folder the suite is installed in, walk to the suite and only to it.

    None (pytest decides) anywhere else.
    """
    skipped = config.stash.get(_WALK_INTO, None)
    if skipped is None or (collection_path != skipped and skipped not in collection_path.parents):
        return None
    suite = _suite_path()
    if collection_path == suite or suite in collection_path.parents:
        return None  # the suite itself: as pytest would
    return collection_path not in suite.parents  # on the way down: walk on; beside it: skip


def nothing_to_test(config: pytest.Config, shadowed: frozenset[str]) -> str:
    """The usage error of a backend given with paths that hold no test of the suite."""
    prefix = "fdsend-" if "backend" in shadowed else ""
    option = f"--{prefix}backend={config.getoption('fdsend_backend')}"
    return (
        f"fdsend: {option} names a backend to test, but no test of the conformance "
        f"suite was collected from {' '.join(config.args)}.\n"
        f"  To run the suite: pytest {option}  (with no test paths), "
        f"or pytest --pyargs fdsend_conformance {option}"
    )


def suite_node(item: pytest.Item) -> Any:
    """The collector of the suite's folder among ``item``'s parents, if pytest made one."""
    return next(
        (node for node in item.listchain() if getattr(node, "path", None) == SUITE_DIR), None
    )
