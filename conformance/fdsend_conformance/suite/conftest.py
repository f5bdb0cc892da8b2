"""Make the suite's fixtures available to the suite, and to it alone."""

from fdsend_conformance.plumbing.fixtures import (  # noqa: F401
    backend,
    backend_opener,
    closer,
    event_loop_started,
    make_pair,
    new_fd,
    no_fd_leaks,
    pair,
    spawn_context,
)
