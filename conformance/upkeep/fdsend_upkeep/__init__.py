"""Upkeep of this repository, not shipped in any wheel: regenerating docs/.

Run from the repository's root with ``PYTHONPATH=conformance/upkeep`` (tox and
the tests set it): ``python -m fdsend_upkeep.matrix`` writes
docs/compatibility.md and .json. A user of the installed suite needs none of it.
"""
