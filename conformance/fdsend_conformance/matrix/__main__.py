"""``python -m fdsend_conformance.matrix``."""

from __future__ import annotations

from fdsend_conformance.matrix.build import main

raise SystemExit(main())
