"""``python -m fdsend_conformance.bench``."""

from __future__ import annotations

from fdsend_conformance.bench.cli import main

raise SystemExit(main())
