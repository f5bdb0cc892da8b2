"""The compatibility matrix: the suite run against every installed backend.

Run ``fdsend-conformance matrix`` or ``python -m fdsend_conformance.matrix``.
"""

from __future__ import annotations

from fdsend_conformance.matrix.build import (
    CONSIDERED,
    KERNEL_SECTION,
    NOT_INSTALLABLE,
    Unusable,
    build_matrix,
    explain,
    main,
    pytest_command,
    render_markdown,
    run_backend,
)

__all__ = [
    "CONSIDERED",
    "KERNEL_SECTION",
    "NOT_INSTALLABLE",
    "Unusable",
    "build_matrix",
    "explain",
    "main",
    "pytest_command",
    "render_markdown",
    "run_backend",
]
