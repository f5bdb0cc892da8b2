"""``reference-driver``: the reference (fdsend) served through the driver protocol.

The protocol's own conformance check: its report must give every clause the
status the in-process ``reference`` gets, but the clauses a driver cannot
take (:data:`~fdsend_conformance.driver.caller.PROTOCOL_UNSUPPORTED`).
The driver is :mod:`fdsend_conformance.driver.reference`, run by this
interpreter.
"""

from __future__ import annotations

import shlex
import sys

from fdsend_conformance.driver.caller import DriverBackend

__all__ = ["COMMAND", "backend"]

#: The command the driver runs as.
COMMAND = shlex.join([sys.executable, "-m", "fdsend_conformance.driver.reference"])

backend = DriverBackend(COMMAND, name="reference-driver")
