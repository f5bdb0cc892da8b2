"""``fdsend-conformance bench``: run, print the table, check the targets.

::

    fdsend-conformance bench [--backend NAME ...] [--reps N] [--quick]
                             [--json PATH] [--plot PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fdsend_conformance.bench.cfloor import CFloor, compile_floor
from fdsend_conformance.bench.contestants import (
    Case,
    Contestant,
    backend_contestant,
    call_floor,
    inline,
)
from fdsend_conformance.bench.timing import batch_ns
from fdsend_conformance.registry import available_backends, load_backend

__all__ = ["main"]

FULL_CASES = [
    Case(fds, payload, cross)
    for cross in (False, True)
    for payload in (16, 65536)
    for fds in (1, 16, 253)
]
QUICK_CASES = [Case(1, 16, False), Case(253, 16, False), Case(1, 16, True)]

Measure = Callable[[int], float]  # rounds -> ns per round


@dataclass
class Result:
    """The repetitions of one contestant in one case."""

    case: str
    contestant: str
    fds: int
    samples_ns: list[float] = field(default_factory=list)

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples_ns)

    def spread(self) -> tuple[float, float]:
        """Lower and upper quartile of the repetitions, in ns."""
        if len(self.samples_ns) < 2:
            return self.median_ns, self.median_ns
        quartiles = statistics.quantiles(self.samples_ns, n=4)
        return quartiles[0], quartiles[2]


def _machine() -> dict[str, str]:
    cpu = "unknown"
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
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def _contestants(names: Sequence[str], notes: list[str]) -> list[Contestant]:
    chosen = list(names) or [a.name for a in available_backends() if a.error is None]
    contestants = [inline, call_floor]
    for name in chosen:
        try:
            contestants.append(backend_contestant(load_backend(name)))
        except Exception as exc:  # an optional backend that is not installed
            notes.append(f"backend {name} skipped: {type(exc).__name__}: {exc}")
    return contestants


def _python_measure(contestant: Contestant, case: Case) -> Measure:
    return lambda rounds: batch_ns(contestant, case, rounds)


def _c_measure(floor: CFloor, case: Case) -> Measure:
    return lambda rounds: floor.round_ns(case.fds, case.payload, rounds, case.cross_process)


def _calibrate(measure: Measure, target_ns: float) -> int:
    """Rounds per batch so that one batch takes about ``target_ns``."""
    per_round = measure(20)  # also the warm-up
    measure(20)
    return max(10, min(200_000, int(target_ns / max(per_round, 1.0))))


def run(
    cases: Sequence[Case],
    contestants: Sequence[Contestant],
    floor: CFloor | None,
    reps: int,
    target_ns: float,
    notes: list[str],
) -> list[Result]:
    """Measure every contestant in every case, repetitions interleaved."""
    results: list[Result] = []
    for case in cases:
        measures: dict[str, Measure] = {}
        for contestant in contestants:
            if case.payload > 16 and not contestant.carries_payload:
                notes.append(f"{contestant.name}: no payload of its own, {case.label} skipped")
                continue
            measures[contestant.name] = _python_measure(contestant, case)
        if floor is not None:
            measures["c-floor"] = _c_measure(floor, case)
        rounds = {name: _calibrate(measure, target_ns) for name, measure in measures.items()}
        case_results = {name: Result(case.label, name, case.fds) for name in measures}
        for _ in range(reps):
            for name, measure in measures.items():
                case_results[name].samples_ns.append(measure(rounds[name]))
        results.extend(case_results.values())
    return results


def _ratio(results: list[Result], case: str, name: str, base: str) -> float | None:
    by_name = {r.contestant: r for r in results if r.case == case}
    if name not in by_name or base not in by_name:
        return None
    return by_name[name].median_ns / by_name[base].median_ns


def table(results: list[Result]) -> list[str]:
    """Medians, spread, ratios to the floors and cost per fd, case by case."""
    lines = []
    header = (
        f"{'contestant':<16} {'median µs':>10} {'IQR µs':>15} {'rounds/s':>10} "
        f"{'x inline':>9} {'x call':>7} {'x C':>7} {'ns/fd':>8}"
    )
    for case in dict.fromkeys(r.case for r in results):
        lines += ["", case, header]
        for result in (r for r in results if r.case == case):
            low, high = result.spread()
            ratios = [_ratio(results, case, result.contestant, b) for b in _FLOORS]
            shown = [f"{x:.3f}" if x is not None else "-" for x in ratios]
            lines.append(
                f"{result.contestant:<16} {result.median_ns / 1000:>10.2f} "
                f"{f'{low / 1000:.2f}-{high / 1000:.2f}':>15} "
                f"{1e9 / result.median_ns:>10.0f} {shown[0]:>9} {shown[1]:>7} {shown[2]:>7} "
                f"{result.median_ns / result.fds:>8.0f}"
            )
    return lines


_FLOORS = ("inline", "call-floor", "c-floor")


@dataclass
class Target:
    """One of the issue's performance targets, checked on this run."""

    what: str
    measured: float | None
    limit: float

    @property
    def met(self) -> bool | None:
        return None if self.measured is None else self.measured <= self.limit


def targets(results: list[Result]) -> list[Target]:
    """The reference's targets (informational: the exit status ignores them)."""
    one = Case(1, 16, False).label
    many = Case(253, 16, False).label
    checks = [
        Target(
            "reference / call-floor, 1 fd", _ratio(results, one, "reference", "call-floor"), 1.15
        ),
        Target(
            "reference / call-floor, 253 fds",
            _ratio(results, many, "reference", "call-floor"),
            1.04,
        ),
        Target("reference / stdlib, 1 fd", _ratio(results, one, "reference", "stdlib"), 1.10),
        Target("reference / stdlib, 253 fds", _ratio(results, many, "reference", "stdlib"), 1.00),
        Target(
            "reference / multiprocessing, 253 fds",
            _ratio(results, many, "reference", "multiprocessing"),
            1.00,
        ),
    ]
    by_case = {r.case: r for r in results if r.contestant == "reference"}
    if one in by_case and many in by_case:
        per_fd = (by_case[many].median_ns / 253) / (by_case[one].median_ns / 1)
        checks.append(Target("reference ns/fd at 253 / at 1 (flat or falling)", per_fd, 1.0))
    return checks


def _plot(results: list[Result], path: Path, notes: list[str]) -> None:
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        notes.append("matplotlib is not installed (pip install 'fdsend[plot]'): no plot")
        return
    cases = list(dict.fromkeys(r.case for r in results))
    names = [n for n in dict.fromkeys(r.contestant for r in results) if n != "inline"]
    figure, axis = plt.subplots(figsize=(max(8, len(cases) * 1.4), 5))
    width = 0.8 / max(len(names), 1)
    for index, name in enumerate(names):
        values = [_ratio(results, case, name, "inline") or 0.0 for case in cases]
        axis.bar([i + index * width for i in range(len(cases))], values, width, label=name)
    axis.axhline(1.0, color="black", linewidth=0.8)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(cases))])
    axis.set_xticklabels(cases, rotation=30, ha="right", fontsize=8)
    axis.set_ylabel("median round time / inline floor")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    notes.append(f"plot written to {path}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; print the table; write JSON and a plot if asked."""
    parser = argparse.ArgumentParser(prog="fdsend-conformance bench", description=__doc__)
    parser.add_argument("--backend", action="append", default=[], help="repeatable; default all")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (default 15)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds")
    parser.add_argument("--json", type=Path, help="write the results as JSON")
    parser.add_argument("--plot", type=Path, help="write a PNG plot (needs matplotlib)")
    options = parser.parse_args(argv)
    notes: list[str] = []
    started = time.monotonic()
    cases = QUICK_CASES if options.quick else FULL_CASES
    reps = options.reps or (3 if options.quick else 15)
    target_ns = 2e6 if options.quick else 1e7
    floor, floor_note = compile_floor()
    notes.append(floor_note)
    contestants = _contestants(options.backend, notes)
    results = run(cases, contestants, floor, reps, target_ns, notes)
    machine = _machine()
    checked = targets(results)
    print(f"fdsend bench: {machine['cpu']}; {machine['kernel']}; {machine['python']}")
    print(f"median of {reps} interleaved repetitions per contestant and case; IQR shown")
    for line in table(results):
        print(line)
    print("\ntargets (from one run; informational):")
    for target in checked:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target.met]
        value = "-" if target.measured is None else f"{target.measured:.3f}"
        print(f"  {target.what:<52} {value:>7} <= {target.limit:<5} {verdict}")
    for note in dict.fromkeys(notes):
        print(f"note: {note}")
    elapsed = time.monotonic() - started
    print(f"wall time: {elapsed:.1f} s")
    if options.json:
        data: dict[str, Any] = {
            "machine": machine,
            "reps": reps,
            "results": [
                {**asdict(r), "median_ns": r.median_ns, "iqr_ns": r.spread()} for r in results
            ],
            "targets": [{**asdict(t), "met": t.met} for t in checked],
            "notes": list(dict.fromkeys(notes)),
            "wall_seconds": elapsed,
        }
        options.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    if options.plot:
        _plot(results, options.plot, notes)
        print(f"note: {notes[-1]}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
