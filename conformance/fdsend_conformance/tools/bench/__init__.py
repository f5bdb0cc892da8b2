"""Benchmarks: every backend against raw floors measured in the same run.

A *round* is one message: send ``n`` fds with a payload, receive it, close
the received fds (across processes: a forked child receives and acks with a
byte on a pipe; see :mod:`fdsend_conformance.tools.bench.rounds`). Contestants run
interleaved (A B C A B C ...), each repetition one timed batch of rounds
after a warm-up, and the report gives medians with their spread and ratios
to three floors:

- ``inline``: ``socket.sendmsg``/``recvmsg`` written out in the loop, doing
  the kernel work of the reference's defaults (MSG_CMSG_CLOEXEC);
- ``call-floor``: the smallest pair of Python functions doing that work;
- ``c-floor``: the same rounds in C, compiled at run time when a compiler
  is present.

Run ``fdsend-conformance bench`` or ``python -m fdsend_conformance.tools.bench``
(entry point: :func:`fdsend_conformance.tools.bench.cli.main`).
"""
