"""Backend: the reference implementation, :mod:`fdsend`."""

from __future__ import annotations

import fdsend
from fdsend import recvfds, sendfds

__all__ = ["name", "recvfds", "sendfds", "truncation", "unsupported", "version"]

name = "reference"
version = fdsend.__version__
truncation = "attribute"
unsupported: frozenset[str] = frozenset()
