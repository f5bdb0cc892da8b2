"""fdsend_conformance: run the fdsend contract against any fd-passing implementation.

The suite is a pytest plugin (``-p fdsend_conformance.plumbing.plugin``, registered
automatically through the ``pytest11`` entry point) plus the test modules
under ``fdsend_conformance.suite``.  Run it with::

    pytest --backend=reference    # no test paths: the packaged suite

(the same as ``pytest --pyargs fdsend_conformance --backend=reference``) or
``fdsend-conformance --backend NAME``.  The contract it checks is
``CONTRACT.md`` beside this file; each test names the clause it proves.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "1.2.0"
