"""Results: statistics, the table, JSON and the plot.

Times are medians of the repetitions; the spread shown is the interquartile
range (min and max are in the JSON). A ratio to a floor is the median of the
per-repetition ratios: repetition ``i`` of a contestant and of the floor ran
next to each other, so slow phases of a shared machine cancel out.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fdsend_conformance.tools.bench.rounds import Case

__all__ = [
    "FAR_FROM_FLOOR",
    "FLOORS",
    "WHY_FAR",
    "Result",
    "far_from_floor",
    "find_result",
    "machine",
    "plot",
    "ratio",
    "ratio_quartiles",
    "table",
    "to_json",
]

#: The baselines every contestant is compared with, in table order.
FLOORS = ("inline", "call-floor", "c-floor")
_FLOOR_HEADINGS = {"inline": "x inline", "call-floor": "x call", "c-floor": "x C"}

#: A contestant costing more than this many times the call floor gets a note saying why.
FAR_FROM_FLOOR = 2.0
#: Why a built-in backend costs far more than the floor: its design, not the machine.
WHY_FAR = {
    "anyio-asyncio": "an event loop per call through its adapter "
    "(anyio.run around each send and each receive; its native backend awaits on one loop)",
    "anyio-trio": "an event loop per call through its adapter "
    "(anyio.run on Trio around each send and each receive; its native backend awaits on one loop)",
}


@dataclass
class Result:
    """The repetitions of one contestant in one case (ns per round)."""

    case: Case
    contestant: str
    rounds_per_batch: int = 0
    samples_ns: list[float] = field(default_factory=list)

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples_ns)

    @property
    def quartiles_ns(self) -> tuple[float, float]:
        """Lower and upper quartiles of the repetitions."""
        if len(self.samples_ns) < 2:
            return self.median_ns, self.median_ns
        q1, _, q3 = statistics.quantiles(self.samples_ns, n=4, method="inclusive")
        return q1, q3

    @property
    def ns_per_fd(self) -> float:
        return self.median_ns / self.case.fds


def find_result(results: Sequence[Result], case: Case, name: str) -> Result | None:
    for result in results:
        if result.case == case and result.contestant == name:
            return result
    return None


def _ratios(results: Sequence[Result], case: Case, name: str, base: str) -> list[float]:
    """Per-repetition ratios of ``name``'s time to ``base``'s time in ``case``.

    Unpaired results (different repetition counts) give the ratio of medians.
    """
    mine, theirs = find_result(results, case, name), find_result(results, case, base)
    if mine is None or theirs is None or not mine.samples_ns or not theirs.samples_ns:
        return []
    if len(mine.samples_ns) != len(theirs.samples_ns):
        return [mine.median_ns / theirs.median_ns]
    return [x / y for x, y in zip(mine.samples_ns, theirs.samples_ns)]


def ratio(results: Sequence[Result], case: Case, name: str, base: str) -> float | None:
    """Median over repetitions of ``name``'s time / ``base``'s time in ``case``."""
    ratios = _ratios(results, case, name, base)
    return statistics.median(ratios) if ratios else None


def ratio_quartiles(
    results: Sequence[Result], case: Case, name: str, base: str
) -> tuple[float, float] | None:
    """Lower and upper quartiles of the per-repetition ratios (their spread)."""
    ratios = _ratios(results, case, name, base)
    if len(ratios) < 2:
        return None
    q1, _, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
    return q1, q3


def far_from_floor(results: Sequence[Result]) -> list[str]:
    """A note for each contestant that costs over FAR_FROM_FLOOR times the call floor, and why."""
    notes = []
    for name in dict.fromkeys(r.contestant for r in results if r.contestant not in FLOORS):
        ratios = [ratio(results, case, name, "call-floor") for case in _cases(results)]
        worst = max((x for x in ratios if x is not None), default=None)
        if worst is not None and worst > FAR_FROM_FLOOR:
            why = WHY_FAR.get(name, "its own work beyond the floor's (the bench knows no more)")
            notes.append(f"{name}: {why}; up to {worst:.0f}x the call floor")
    return notes


def _cases(results: Sequence[Result]) -> list[Case]:
    return list(dict.fromkeys(r.case for r in results))


def _us(ns: float) -> str:
    return f"{ns / 1000:.2f}"


def table(results: Sequence[Result]) -> list[str]:
    """One block per case: median, IQR, rounds/s, ratios to the floors, ns per fd."""
    header = (
        f"  {'contestant':<16}{'median us':>10}{'IQR us':>17}{'rounds/s':>10}"
        + "".join(f"{_FLOOR_HEADINGS[f]:>10}" for f in FLOORS)
        + f"{'ns/fd':>9}"
    )
    lines: list[str] = []
    for case in _cases(results):
        lines += ["", case.label, header]
        for result in (r for r in results if r.case == case):
            low, high = result.quartiles_ns
            ratios = [ratio(results, case, result.contestant, f) for f in FLOORS]
            lines.append(
                f"  {result.contestant:<16}{_us(result.median_ns):>10}"
                f"{_us(low) + '-' + _us(high):>17}{1e9 / result.median_ns:>10.0f}"
                + "".join(f"{'-' if x is None else f'{x:.3f}':>10}" for x in ratios)
                + f"{result.ns_per_fd:>9.0f}"
            )
    return lines


def scaling(results: Sequence[Result]) -> list[str]:
    """Cost per added fd: (t(n2) - t(n1)) / (n2 - n1), for each payload and place."""
    groups: dict[tuple[int, bool], list[Case]] = {}
    for case in _cases(results):
        groups.setdefault((case.payload, case.cross_process), []).append(case)
    lines: list[str] = []
    for cases in groups.values():
        counts = sorted(c.fds for c in cases)
        if len(counts) < 2:
            continue
        steps = list(zip(counts, counts[1:]))
        by_fds = {c.fds: c for c in cases}
        first = by_fds[counts[0]]
        lines += ["", f"ns per added fd, {first.size}, {first.where}"]
        lines.append(f"  {'contestant':<16}" + "".join(f"{f'{a}->{b}':>11}" for a, b in steps))
        for name in dict.fromkeys(r.contestant for r in results if r.case in cases):
            cells = []
            for low, high in steps:
                a = find_result(results, by_fds[low], name)
                b = find_result(results, by_fds[high], name)
                value = None if a is None or b is None else (b.median_ns - a.median_ns)
                cells.append("-" if value is None else f"{value / (high - low):.0f}")
            lines.append(f"  {name:<16}" + "".join(f"{c:>11}" for c in cells))
    return lines


def machine() -> dict[str, str]:
    """CPU model, kernel and Python of this run."""
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpus": str(os.cpu_count() or "?"),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _case_json(case: Case) -> dict[str, Any]:
    return {
        "fds": case.fds,
        "payload": case.payload,
        "cross_process": case.cross_process,
        "label": case.label,
    }


def to_json(
    results: Sequence[Result],
    contestants: Sequence[dict[str, Any]],
    config: dict[str, Any],
    notes: Sequence[str],
    wall_seconds: float,
) -> dict[str, Any]:
    """Everything the run measured, as plain JSON data."""
    rows = []
    for r in results:
        q1, q3 = r.quartiles_ns
        rows.append(
            {
                "case": _case_json(r.case),
                "contestant": r.contestant,
                "rounds_per_batch": r.rounds_per_batch,
                "samples_ns": r.samples_ns,
                "median_ns": r.median_ns,
                "q1_ns": q1,
                "q3_ns": q3,
                "min_ns": min(r.samples_ns),
                "max_ns": max(r.samples_ns),
                "rounds_per_second": 1e9 / r.median_ns,
                "ns_per_fd": r.ns_per_fd,
                "ratios": {f: ratio(results, r.case, r.contestant, f) for f in FLOORS},
            }
        )
    return {
        "schema": 1,
        "machine": machine(),
        "config": config,
        "contestants": list(contestants),
        "results": rows,
        "notes": list(notes),
        "wall_seconds": wall_seconds,
    }


def plot_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def plot(results: Sequence[Result], path: Path) -> None:
    """A PNG: each contestant's time relative to the call floor, per case (log scale).

    Bars are the median ratios; whiskers span their quartiles.
    """
    import matplotlib  # type: ignore[import-not-found, unused-ignore]

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    from matplotlib.ticker import FuncFormatter  # type: ignore[import-not-found, unused-ignore]

    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 0.8, not 8 x 10^-1

    cases = _cases(results)
    places = [p for p in (False, True) if any(c.cross_process is p for c in cases)]
    names = [n for n in dict.fromkeys(r.contestant for r in results) if n != "call-floor"]
    figure, axes = plt.subplots(
        len(places), 1, figsize=(max(8.0, 1.6 * len(cases) / len(places)), 4.5 * len(places))
    )
    axes = list(axes) if len(places) > 1 else [axes]
    width = 0.8 / max(len(names), 1)
    for axis, place in zip(axes, places):
        shown = [c for c in cases if c.cross_process is place]
        for index, name in enumerate(names):
            xs, ys, below, above = [], [], [], []
            for position, case in enumerate(shown):
                value = ratio(results, case, name, "call-floor")
                if value is not None:
                    low, high = ratio_quartiles(results, case, name, "call-floor") or (value, value)
                    xs.append(position + (index - (len(names) - 1) / 2) * width)
                    ys.append(value)
                    below.append(value - low)
                    above.append(high - value)
            axis.bar(xs, ys, width, yerr=[below, above], capsize=2, label=name)
        axis.axhline(1.0, color="black", linewidth=0.8)
        axis.set_yscale("log")
        axis.yaxis.set_major_formatter(plain)
        axis.yaxis.set_minor_formatter(plain)
        axis.set_xticks(range(len(shown)))
        axis.set_xticklabels([f"{c.fds} fd, {c.size}" for c in shown], fontsize=8)
        axis.set_ylabel("round time / call floor")
        axis.set_title(shown[0].where if shown else "", fontsize=10)
        axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    figure.suptitle("fdsend bench: median of per-repetition ratios to the Python call floor")
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
