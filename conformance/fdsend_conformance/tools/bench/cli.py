"""``fdsend-conformance bench``: every backend against the floors, in one run.

::

    fdsend-conformance bench [--backend NAME ...] [--quick] [--reps N] [--batch-ms MS]
                             [--fds N ...] [--payload BYTES ...]
                             [--where in-process|cross-process|both] [--no-c-floor]
                             [--json PATH] [--plot PATH]

(also ``python -m fdsend_conformance.tools.bench``). The exit status is 0 when the
run completed, whatever the numbers; 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fdsend_conformance.backend import Kind
from fdsend_conformance.driver.client import DriverFailure
from fdsend_conformance.harness.limits import SCM_MAX_FD
from fdsend_conformance.plumbing.registry import available_backends, load_backend
from fdsend_conformance.tools.bench.floor_c import CFloor, compile_floor
from fdsend_conformance.tools.bench.report import (
    Result,
    far_from_floor,
    machine,
    plot,
    plot_available,
    scaling,
    table,
    to_json,
)
from fdsend_conformance.tools.bench.rounds import (
    CALL_FLOOR,
    INLINE,
    Case,
    Contestant,
    backend_contestant,
    batch_ns,
    in_driver_contestant,
)
from fdsend_conformance.tools.cli import add_backend_option

__all__ = ["FULL_CASES", "QUICK_CASES", "main", "run"]

FDS = (1, 16, SCM_MAX_FD)
PAYLOADS = (16, 65536)
FULL_CASES = [
    Case(fds, payload, cross) for cross in (False, True) for payload in PAYLOADS for fds in FDS
]
QUICK_CASES = [Case(1, 16, False), Case(SCM_MAX_FD, 16, False), Case(1, 16, True)]
FULL_REPS, QUICK_REPS = 21, 3
FULL_BATCH_MS, QUICK_BATCH_MS = 10.0, 2.0

#: (rounds, warm-up rounds) -> ns per round
Measure = Callable[[int, int], float]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _backends(names: Sequence[str], notes: list[str]) -> list[Contestant]:
    """The chosen backends, or every registered one that loads; failures noted."""
    if not names:
        chosen = []
        for availability in available_backends():
            if availability.error is None:
                chosen.append(availability.name)
            else:
                notes.append(f"backend {availability.name} skipped: {availability.error}")
        # The reference first, then the registry's order.
        names = sorted(chosen, key=lambda name: name != "reference")
    contestants = []
    for name in dict.fromkeys(names):
        try:
            backend = load_backend(name)
        except Exception as exc:  # not installed, broken: the others still run
            notes.append(f"backend {name} skipped: {type(exc).__name__}: {exc}")
            continue
        if backend.asynchronous:  # its rounds run on an event loop: the aio bench's
            notes.append(
                f"backend {name} skipped: asynchronous; "
                "python -m fdsend_conformance.tools.bench.aio measures it"
            )
            continue
        contestants.append(backend_contestant(backend))
        if backend.kind == Kind.DRIVER:  # and its rounds inside the driver, if it has a bench
            contestants.append(in_driver_contestant(backend))
    return contestants


def _python_measure(contestant: Contestant, case: Case) -> Measure:
    def measure(rounds: int, warmup: int) -> float:
        if warmup:
            batch_ns(contestant, case, warmup)
        return batch_ns(contestant, case, rounds)

    return measure


def _c_measure(floor: CFloor, case: Case) -> Measure:
    def measure(rounds: int, warmup: int) -> float:
        return floor.round_ns(case.fds, case.payload, rounds, case.cross_process, warmup)

    return measure


def _calibrate(measure: Measure, batch_ns_target: float) -> int:
    """Warm up, then pick the rounds per batch that take about ``batch_ns_target``."""
    measure(20, 20)  # warm-up (the C floor: one run of its own warm-up and 20 rounds)
    per_round = measure(20, 0)
    return max(10, min(1_000_000, round(batch_ns_target / max(per_round, 1.0))))


def _calibrated(
    case: Case, measures: dict[str, Measure], batch_ms: float, notes: list[str]
) -> dict[str, Result]:
    """A result to fill for each contestant that calibrates; one that fails leaves ``measures``."""
    by_name: dict[str, Result] = {}
    for name, measure in list(measures.items()):
        try:
            rounds = _calibrate(measure, batch_ms * 1e6)
        except (Exception, DriverFailure) as exc:  # a driver that hung or crashed, too
            notes.append(f"{name} failed in {case.label}: {type(exc).__name__}: {exc}")
            del measures[name]
        else:
            by_name[name] = Result(case, name, rounds)
    return by_name


def run(
    cases: Sequence[Case],
    contestants: Sequence[Contestant],
    floor: CFloor | None,
    reps: int,
    batch_ms: float,
    notes: list[str],
) -> list[Result]:
    """Measure every contestant in every case, repetitions interleaved (A B C A B C ...)."""
    results: list[Result] = []
    for number, case in enumerate(cases, 1):
        _progress(f"[{number}/{len(cases)}] {case.label}")
        measures: dict[str, Measure] = {}
        for contestant in contestants:
            if case.payload > 16 and not contestant.carries_payload:
                notes.append(
                    f"{contestant.name}: carries no payload; the {case.size} cases are skipped"
                )
                continue
            refusal = contestant.refuses(case)
            if refusal is not None:
                notes.append(f"{contestant.name}: {refusal}; the other cases are skipped")
                continue
            measures[contestant.name] = _python_measure(contestant, case)
        if floor is not None:
            measures["c-floor"] = _c_measure(floor, case)
        by_name = _calibrated(case, measures, batch_ms, notes)
        for _ in range(reps):
            for name, measure in list(measures.items()):
                result = by_name[name]
                try:
                    # The C floor warms up in each run of its program; Python stays warm.
                    warmup = max(20, result.rounds_per_batch // 10) if name == "c-floor" else 0
                    result.samples_ns.append(measure(result.rounds_per_batch, warmup))
                except (Exception, DriverFailure) as exc:
                    notes.append(f"{name} failed in {case.label}: {type(exc).__name__}: {exc}")
                    del measures[name], by_name[name]
        results.extend(by_name.values())
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fdsend-conformance bench",
        description="Benchmark fd-passing backends against the inline, Python-call and C "
        "floors, measured interleaved in the same run.",
    )
    add_backend_option(
        parser,
        "a backend (registered name, module or module:attr)",
        "every registered backend that loads",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_REPS} repetitions of {QUICK_BATCH_MS:g} ms batches, "
        "16 B payload, 1 and 253 fds in-process, 1 fd across processes",
    )
    parser.add_argument(
        "--reps", type=int, metavar="N", help=f"repetitions per case (default {FULL_REPS})"
    )
    parser.add_argument(
        "--batch-ms",
        type=float,
        metavar="MS",
        help=f"milliseconds per timed batch (default {FULL_BATCH_MS:g})",
    )
    parser.add_argument(
        "--fds", type=int, action="append", metavar="N", help="fds per message; repeatable"
    )
    parser.add_argument(
        "--payload", type=int, action="append", metavar="BYTES", help="payload; repeatable"
    )
    parser.add_argument(
        "--where", choices=("in-process", "cross-process", "both"), help="default: both"
    )
    parser.add_argument("--no-c-floor", action="store_true", help="do not compile the C floor")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write the results as JSON")
    parser.add_argument(
        "--plot", type=Path, metavar="PATH", help="write a PNG plot (needs matplotlib)"
    )
    return parser


def _cases(options: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Case]:
    if not (options.fds or options.payload or options.where):
        return QUICK_CASES if options.quick else FULL_CASES
    fds = options.fds or ([1, SCM_MAX_FD] if options.quick else list(FDS))
    payloads = options.payload or ([16] if options.quick else list(PAYLOADS))
    places = {"in-process": [False], "cross-process": [True]}.get(
        options.where or "both", [False, True]
    )
    if not all(1 <= n <= SCM_MAX_FD for n in fds):
        parser.error(f"--fds must be between 1 and {SCM_MAX_FD} (SCM_MAX_FD)")
    if not all(1 <= n <= 1 << 20 for n in payloads):
        parser.error("--payload must be between 1 byte and 1 MiB")
    return [Case(n, size, cross) for cross in places for size in payloads for n in fds]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks, print the table; write JSON/plot if asked."""
    parser = _parser()
    options = parser.parse_args(argv)
    if options.plot and not plot_available():
        print(
            "fdsend-conformance bench: --plot needs matplotlib, which is not installed "
            "(pip install 'fdsend-conformance[plot]')",
            file=sys.stderr,
        )
        return 2
    reps = options.reps or (QUICK_REPS if options.quick else FULL_REPS)
    batch_ms = options.batch_ms or (QUICK_BATCH_MS if options.quick else FULL_BATCH_MS)
    if reps < 1 or batch_ms <= 0:
        parser.error("--reps and --batch-ms must be positive")
    cases = _cases(options, parser)
    started = time.monotonic()
    notes: list[str] = []
    backends = _backends(options.backend, notes)
    contestants = [INLINE, CALL_FLOOR, *backends]
    with tempfile.TemporaryDirectory(prefix="fdsend-bench-") as workdir:
        floor: CFloor | None = None
        if options.no_c_floor:
            notes.append("C floor skipped: --no-c-floor")
        else:
            floor, floor_note = compile_floor(Path(workdir))
            notes.append(floor_note)
        results = run(cases, contestants, floor, reps, batch_ms, notes)
    notes += far_from_floor(results)
    wall = time.monotonic() - started
    unique_notes = list(dict.fromkeys(notes))
    _print(results, backends, reps, batch_ms, unique_notes, wall)
    if options.json:
        info: list[dict[str, Any]] = [
            {"name": c.name, "kind": c.kind, "version": c.version, "payload": c.carries_payload}
            for c in contestants
        ]
        if floor is not None:
            info.append({"name": "c-floor", "kind": "floor", "version": floor.compiler})
        config = {
            "reps": reps,
            "batch_ms": batch_ms,
            "quick": options.quick,
            "cases": [c.label for c in cases],
        }
        data = to_json(results, info, config, unique_notes, wall)
        options.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"JSON written to {options.json}")
    if options.plot:
        plot(results, options.plot)
        print(f"plot written to {options.plot}")
    return 0


def _print(
    results: Sequence[Result],
    backends: Sequence[Contestant],
    reps: int,
    batch_ms: float,
    notes: Sequence[str],
    wall: float,
) -> None:
    host = machine()
    print(f"fdsend bench: {host['cpu']} ({host['cpus']} CPUs); {host['kernel']}; {host['python']}")
    print("backends: " + (", ".join(f"{b.name} ({b.version})" for b in backends) or "none"))
    print(
        f"{reps} interleaved repetitions per case (A B C A B C ...), each a batch of "
        f"~{batch_ms:g} ms timed with perf_counter_ns, after a warm-up, gc off."
    )
    print(
        "A round: send one message (payload + n fds), receive it, close the received fds;\n"
        "across processes a forked child receives and acks with one byte on a pipe.\n"
        "Median and IQR per round; ratios are medians of per-repetition ratios to the floors\n"
        "(inline: sendmsg/recvmsg in the loop; call: smallest Python functions; C: same in C).\n"
        "Backends are measured as they are: an adapter's own overhead is part of its cost."
    )
    for line in table(results) + scaling(results):
        print(line)
    if notes:
        print()
    for note in notes:
        print(f"note: {note}")
    print(f"wall time: {wall:.1f} s")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
