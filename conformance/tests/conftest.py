"""The project's own tests of the conformance plugin (not conformance clauses)."""

pytest_plugins = ["pytester"]
