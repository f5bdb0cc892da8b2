"""The compatibility matrix: the suite run against every installed backend.

::

    python -m fdsend_upkeep.matrix [--backend NAME ...] [--output-dir DIR]

runs the packaged suite once per backend and writes ``compatibility.json``
and ``compatibility.md``: one row per clause of CONTRACT.md, one column per
backend, each cell PASS / FAIL / NON-STRICT / UNSUPPORTED (or SKIPPED /
NOT-RUN). Every FAIL or NON-STRICT cell is explained by the backend's
expected-failure file; one that is not is flagged loudly and answered with
exit status 1.

The modules, one idea each:

- :mod:`~fdsend_upkeep.matrix.packages`: the PyPI packages that pass
  fds but have no adapter (:data:`NOT_INSTALLABLE`, :data:`CONSIDERED`),
  and the systems Linux lacks (:data:`NOT_ON_LINUX`);
- :mod:`~fdsend_upkeep.matrix.run`: one run of the suite against one
  backend;
- :mod:`~fdsend_upkeep.matrix.build`: the matrix as JSON-ready data,
  every failing cell explained;
- :mod:`~fdsend_upkeep.matrix.render`: ``compatibility.md`` from it;
- :mod:`~fdsend_upkeep.matrix.cli`: the command line (:func:`main`).
"""

from __future__ import annotations

from fdsend_upkeep.matrix.build import KERNEL_SECTION, build_matrix, explain
from fdsend_upkeep.matrix.cli import main
from fdsend_upkeep.matrix.packages import CONSIDERED, NOT_INSTALLABLE, NOT_ON_LINUX, Unusable
from fdsend_upkeep.matrix.render import render_markdown
from fdsend_upkeep.matrix.run import pytest_command, run_backend

__all__ = [
    "CONSIDERED",
    "KERNEL_SECTION",
    "NOT_INSTALLABLE",
    "NOT_ON_LINUX",
    "Unusable",
    "build_matrix",
    "explain",
    "main",
    "pytest_command",
    "render_markdown",
    "run_backend",
]
