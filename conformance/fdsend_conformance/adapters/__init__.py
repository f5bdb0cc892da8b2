"""Built-in backends: one small module per implementation.

Each module is itself a backend (see :mod:`fdsend_conformance.backend`): it
exposes ``sendfds``/``recvfds`` in the fdsend call shape plus its
declarations, and maps call shapes only.
"""
