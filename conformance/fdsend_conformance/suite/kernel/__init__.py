"""The second suite: the KERNEL clauses, checks of the kernel's own SCM_RIGHTS behaviour.

They call the kernel directly, never the backend under test (``-m kernel`` selects them).
"""
