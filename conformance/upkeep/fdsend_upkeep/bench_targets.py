"""The bench's targets of issue 17, checked on a bench run's JSON (repository upkeep).

::

    PYTHONPATH=conformance/upkeep python -m fdsend_upkeep.bench_targets BENCH.json

reads what ``fdsend-conformance bench --json BENCH.json`` wrote and prints
each target of the reference (16 B, in-process rounds) with its verdict
(``tox -e bench`` does both). The targets are this project's goals for its
reference, not something a user of the installed suite needs.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdsend_conformance.tools.bench.report import Result, find_result, ratio, ratio_quartiles
from fdsend_conformance.tools.bench.rounds import Case

__all__ = ["TARGET_CASES", "Target", "main", "results_of", "targets"]


@dataclass
class Target:
    """One of issue 17's performance targets, checked on this run.

    ``measured`` is the median ratio; ``spread`` the quartiles of the
    per-repetition ratios, when there are any. A verdict whose spread
    straddles the limit is flagged as within noise: one run cannot tell.
    """

    what: str
    measured: float | None
    limit: float
    spread: tuple[float, float] | None = None

    @property
    def met(self) -> bool | None:
        return None if self.measured is None else self.measured <= self.limit

    @property
    def within_noise(self) -> bool:
        """Whether the limit lies inside the interquartile range of the ratios."""
        return self.spread is not None and self.spread[0] <= self.limit <= self.spread[1]

    def line(self, decide: bool = True) -> str:
        """The target's figures, and its verdict where one run can give one.

        None when ``decide`` is false (a ``--quick`` run) or the quartiles
        straddle the limit: a verdict there flips from run to run.
        """
        if self.met is None:
            verdict = "not measured"
        elif not decide:
            verdict = "figures only (a quick run)"
        elif self.within_noise:
            verdict = "within noise: no verdict"
        else:
            verdict = "met" if self.met else "MISSED"
        value = "-" if self.measured is None else f"{self.measured:.3f}"
        spread = "" if self.spread is None else f"[{self.spread[0]:.3f}-{self.spread[1]:.3f}]"
        return f"  {self.what:<48}{value:>7} {spread:<15} <= {self.limit:<6}{verdict}"


TARGET_CASES = {n: Case(n, 16, False) for n in (1, 16, 253)}


def targets(results: Sequence[Result], name: str = "reference") -> list[Target]:
    """The reference's targets on 16 B in-process rounds (informational)."""
    limits = [
        (1, "call-floor", 1.15),
        (253, "call-floor", 1.04),
        (1, "stdlib", 1.10),
        (253, "stdlib", 1.00),
        (253, "multiprocessing", 1.00),
    ]
    checks = []
    for fds, base, limit in limits:
        case = TARGET_CASES[fds]
        checks.append(
            Target(
                f"{name} / {base}, {fds} fd{'s' if fds > 1 else ''}",
                ratio(results, case, name, base),
                limit,
                ratio_quartiles(results, case, name, base),
            )
        )
    # No worse than linear: the cost per fd never grows from one count to the next.
    per_fd = [find_result(results, TARGET_CASES[n], name) for n in (1, 16, 253)]
    present = [r for r in per_fd if r is not None]
    growth = None
    if len(present) >= 2:
        growth = max(b.ns_per_fd / a.ns_per_fd for a, b in zip(present, present[1:]))
    counts = "->".join(str(r.case.fds) for r in present) or "1->16->253"
    checks.append(Target(f"{name} ns/fd growth, {counts} fds (max step)", growth, 1.00))
    return checks


def results_of(data: dict[str, Any]) -> list[Result]:
    """The results of a bench run, from its JSON (``to_json``'s ``results``)."""
    return [
        Result(
            Case(row["case"]["fds"], row["case"]["payload"], row["case"]["cross_process"]),
            row["contestant"],
            row["rounds_per_batch"],
            list(row["samples_ns"]),
        )
        for row in data["results"]
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Print the targets checked on a bench run's JSON; exit 0 whatever the verdicts."""
    parser = argparse.ArgumentParser(
        prog="python -m fdsend_upkeep.bench_targets",
        description="The reference's targets of issue 17, checked on a bench run's JSON.",
    )
    parser.add_argument("json", type=Path, help="what fdsend-conformance bench --json wrote")
    options = parser.parse_args(argv)
    data = json.loads(options.json.read_text(encoding="utf-8"))
    print("targets (reference; 16 B, in-process; one run, informational):")
    decide = not data.get("config", {}).get("quick", False)
    for target in targets(results_of(data)):
        print(target.line(decide))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
