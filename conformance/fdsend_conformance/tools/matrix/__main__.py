"""``python -m fdsend_conformance.tools.matrix``."""

from __future__ import annotations

from fdsend_conformance.tools.matrix.cli import main

raise SystemExit(main())
