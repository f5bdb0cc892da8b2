"""Whether each speed-up of the reference still pays (repository upkeep).

::

    PYTHONPATH=conformance/upkeep python -m fdsend_upkeep.speedups [--reps 15] [--json PATH]

loads ``fdsend/__init__.py`` once as it is and once per speed-up with that
speed-up undone (a text replacement: it fails loudly when the code moved),
and times 16 B in-process rounds (send, receive, close the fds) of each, at
1 and 253 fds, interleaved, in thread CPU time (on a shared machine the other
processes' load does not count). It prints each variant's median against the
unchanged module; a speed-up pays where undoing it costs more than the run's
noise at a bench target. The figures go in the JSON and the CHANGELOG, not in
the code.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import statistics
import time
import types
from collections.abc import Sequence
from pathlib import Path

import fdsend
from fdsend_conformance.tools.bench.rounds import in_process_rounds

__all__ = ["UNDONE", "main", "variants"]

#: Each speed-up, as (what the code says, what it would say without it).
UNDONE: dict[str, list[tuple[str, str]]] = {
    "plain-int MSG_* flags": [
        ("flags |= _MSG_CMSG_CLOEXEC", "flags |= socket.MSG_CMSG_CLOEXEC"),
        ("msg_flags |= _MSG_CTRUNC", "msg_flags |= socket.MSG_CTRUNC"),
        ("strict and msg_flags & _MSG_CTRUNC", "strict and msg_flags & socket.MSG_CTRUNC"),
    ],
    "C getters for family and type": [
        ("_family_of = _socket.socket.family.__get__", "_family_of = lambda s: s.family"),
        ("_type_of = _socket.socket.type.__get__", "_type_of = lambda s: s.type"),
    ],
    "silent-loss checks skipped for bytes": [
        (
            "if type(msg) is not bytes or not msg or _family_of(sock) != _AF_UNIX:\n"
            "            _refuse_silent_loss(sock, msg)",
            "if True:\n            _refuse_silent_loss(sock, msg)",
        )
    ],
    "control-buffer table": [
        ("_CONTROL_SPACE[numfds]", "socket.CMSG_SPACE(4 * numfds) + CONTROL_HEADROOM"),
    ],
    "plain ints into the array in one call": [
        ('packed = array("i", fds)\n', "packed = _checked_fds(fds)\n"),
    ],
}
ROUNDS = {1: 4000, 253: 300}
PAYLOAD = b"\x5a" * 16


def variants(source: str) -> dict[str, types.ModuleType]:
    """The module as it is (``"as is"``), then once per entry of :data:`UNDONE`."""
    modules: dict[str, types.ModuleType] = {}
    for name, replacements in {"as is": [], **UNDONE}.items():
        text = source
        for old, new in replacements:
            if text.count(old) != 1:
                raise SystemExit(f"{name}: the code no longer says {old!r}")
            text = text.replace(old, new)
        module = types.ModuleType(f"fdsend_variant_{len(modules)}")
        exec(compile(text, f"fdsend ({name})", "exec"), module.__dict__)
        modules[name] = module
    return modules


def _batch(module: types.ModuleType, fds: list[int], rounds: int) -> float:
    """Microseconds of thread CPU time per round: the bench's in-process round."""
    a, b = socket.socketpair()
    try:
        start = time.thread_time_ns()
        in_process_rounds(module.sendfds, module.recvfds, a, b, PAYLOAD, fds, rounds)
        return (time.thread_time_ns() - start) / rounds / 1000
    finally:
        a.close()
        b.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Print each variant against the module as it is; write them as JSON if asked."""
    parser = argparse.ArgumentParser(prog="python -m fdsend_upkeep.speedups")
    parser.add_argument("--reps", type=int, default=15, help="batches per variant (median)")
    parser.add_argument("--json", type=Path, help="write the medians here")
    options = parser.parse_args(argv)
    modules = variants(Path(fdsend.__file__).read_text(encoding="utf-8"))
    read_end, write_end = os.pipe()
    figures: dict[str, dict[str, float]] = {}
    gc.disable()
    try:
        for n, rounds in ROUNDS.items():
            samples: dict[str, list[float]] = {name: [] for name in modules}
            for _ in range(options.reps):  # interleaved: drift hits every variant alike
                for name, module in modules.items():
                    samples[name].append(_batch(module, [read_end] * n, rounds))
            medians = {name: statistics.median(values) for name, values in samples.items()}
            figures[f"{n} fds"] = medians
            print(f"{n} fd{'s' if n > 1 else ''}, 16 B, in-process, thread CPU time:")
            for name, value in medians.items():
                print(f"  {name:<40} {value:8.3f} us  x{value / medians['as is']:.3f}")
    finally:
        gc.enable()
        os.close(read_end)
        os.close(write_end)
    if options.json is not None:
        options.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
