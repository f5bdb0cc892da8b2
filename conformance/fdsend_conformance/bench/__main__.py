"""``python -m fdsend_conformance.bench``."""

from fdsend_conformance.bench.cli import main

raise SystemExit(main())
