"""``python -m fdsend_conformance.tools.bench``."""

from __future__ import annotations

from fdsend_conformance.tools.bench.cli import main

raise SystemExit(main())
