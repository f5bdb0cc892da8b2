"""``python -m fdsend_conformance.matrix``."""

from __future__ import annotations

from fdsend_conformance.matrix.cli import main

raise SystemExit(main())
