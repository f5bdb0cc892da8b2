"""``python -m fdsend_conformance``: the same as ``fdsend-conformance``."""

from fdsend_conformance.tools.cli import main

raise SystemExit(main())
