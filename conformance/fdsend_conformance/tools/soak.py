"""``fdsend-conformance soak``: many fds between two processes, every one accounted for.

The soak itself is :func:`fdsend_conformance.harness.soak.soak` (LOAD-3 runs
it in the suite); this is its command line, which prints the accounting and
fds/s and exits 1 on any problem.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from fdsend_conformance.harness.soak import SoakResult, Usage, soak
from fdsend_conformance.plumbing.callers import OpenByName

__all__ = ["main"]


def _describe(name: str, result: SoakResult) -> str:
    def usage(side: str, u: Usage) -> str:
        return (
            f"{side} fds {u.fds_before} -> {u.fds_after}, "
            f"RSS {u.rss_early_kib} -> {u.rss_end_kib} KiB ({u.rss_growth_kib:+d})"
        )

    return (
        f"{name}: sent {result.sent} fds, received {result.received}, "
        f"lost {result.lost}, duplicated {result.duplicated}, wrong {result.wrong}; "
        f"{usage('sender', result.sender)}; {usage('receiver', result.receiver)}; "
        f"{result.seconds:.2f} s, {result.fds_per_second:,.0f} fds/s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run a soak and print the accounting; 1 on any problem (see ``problems``)."""
    parser = argparse.ArgumentParser(
        prog="fdsend-conformance soak",
        description="Pass many fds from this process to a spawned one, 253 per message, and "
        "account for every one: lost, duplicated, out of order, both fd tables and both "
        "processes' memory. Exit status 1 on any problem.",
    )
    parser.add_argument(
        "--backend",
        default="reference",
        metavar="NAME",
        help="backend name, module or module:attr (default %(default)s)",
    )
    parser.add_argument(
        "--fds", type=int, default=1_000_000, metavar="N", help="fds to pass (default %(default)s)"
    )
    options = parser.parse_args(argv)
    if options.fds < 1:
        parser.error("--fds must be at least 1")
    result = soak(OpenByName(options.backend), options.fds)
    print(_describe(options.backend, result))
    problems = result.problems()
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
