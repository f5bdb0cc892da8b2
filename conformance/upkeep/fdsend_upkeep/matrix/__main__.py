"""``python -m fdsend_upkeep.matrix``."""

from __future__ import annotations

from fdsend_upkeep.matrix.cli import main

raise SystemExit(main())
