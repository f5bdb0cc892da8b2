"""The benchmark command works (it never checks numbers)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys

import pytest

from fdsend_conformance.plumbing.registry import load_backend
from fdsend_conformance.tools.bench.cli import main
from fdsend_conformance.tools.bench.floor_c import compile_floor, find_compiler
from fdsend_conformance.tools.bench.report import Result, scaling, table
from fdsend_conformance.tools.bench.rounds import (
    CALL_FLOOR,
    INLINE,
    Case,
    backend_contestant,
    batch_ns,
    floor_recvfds,
    floor_sendfds,
)
from fdsend_upkeep.bench_targets import results_of, targets

HAVE_REFERENCE = importlib.util.find_spec("fdsend") is not None
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fdsend_conformance.tools.bench", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_quick_run_writes_json_with_the_expected_keys(tmp_path):
    output = tmp_path / "bench.json"
    backends = ["--backend", "stdlib"] + (["--backend", "reference"] if HAVE_REFERENCE else [])
    run = _bench("--quick", *backends, "--json", str(output))
    assert run.returncode == 0, run.stderr
    assert "1 fd, 16 B, in-process" in run.stdout
    data = json.loads(output.read_text())
    assert {"schema", "machine", "config", "contestants", "results", "notes"} <= set(data)
    assert {"cpu", "kernel", "python"} <= set(data["machine"])
    assert data["config"]["quick"] is True
    names = {r["contestant"] for r in data["results"]}
    assert {"inline", "call-floor", "stdlib"} <= names
    if HAVE_REFERENCE:
        assert "reference" in names
    if find_compiler() is not None:
        assert "c-floor" in names
    reps = data["config"]["reps"]
    for row in data["results"]:
        assert {"case", "median_ns", "q1_ns", "q3_ns", "min_ns", "max_ns", "ratios"} <= set(row)
        assert len(row["samples_ns"]) == reps
        assert row["median_ns"] > 0
        assert set(row["ratios"]) == {"inline", "call-floor", "c-floor"}
        assert {"fds", "payload", "cross_process", "label"} <= set(row["case"])
    assert [t.what for t in targets(results_of(data))]  # the upkeep reads the same JSON


def test_main_in_process_with_a_chosen_case(capsys):
    args = "--backend stdlib --reps 2 --batch-ms 0.5 --fds 2 --payload 100 --where in-process"
    assert main([*args.split(), "--no-c-floor"]) == 0
    out = capsys.readouterr().out
    assert "2 fds, 100 B, in-process" in out
    assert "C floor skipped: --no-c-floor" in out
    assert "2 processes" not in out


def test_unknown_backend_is_noted_not_fatal(capsys):
    args = "--quick --no-c-floor --where in-process --fds 1 --backend no.such:thing"
    assert main(args.split()) == 0
    assert "backend no.such:thing skipped" in capsys.readouterr().out


def test_a_payloadless_backend_skips_the_large_payload_with_a_note(capsys):
    args = "--backend multiprocessing --reps 1 --batch-ms 0.2 --fds 1 --payload 16 --payload 65536"
    assert main([*args.split(), "--no-c-floor"]) == 0
    out = capsys.readouterr().out
    assert "multiprocessing: carries no payload; the 64 KiB cases are skipped" in out


def test_plot_without_matplotlib_says_so(tmp_path, capsys, monkeypatch):
    # As if it were not installed (the real check imports it).
    monkeypatch.setattr("fdsend_conformance.tools.bench.cli.plot_available", lambda: False)
    assert main(["--quick", "--plot", str(tmp_path / "plot.png")]) == 2
    assert "needs matplotlib" in capsys.readouterr().err


PLOT_ARGS = "--backend stdlib --reps 1 --batch-ms 0.2 --fds 1 --payload 16 --no-c-floor --plot"


@pytest.fixture(scope="session")
def fonts_loaded(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Draw one plot before any test's fd snapshot.

    matplotlib keeps every font file it loads open for the life of the
    process (a cache, not a leak): loaded here, they are open before the
    leak check looks, and the test's own plot opens nothing new.
    """
    if HAVE_MATPLOTLIB:
        main([*PLOT_ARGS.split(), str(tmp_path_factory.mktemp("fonts") / "plot.png")])


@pytest.mark.skipif(not HAVE_MATPLOTLIB, reason="matplotlib is not installed")
@pytest.mark.usefixtures("fonts_loaded")
def test_plot_is_written(tmp_path):
    path = tmp_path / "plot.png"
    assert main([*PLOT_ARGS.split(), str(path)]) == 0
    assert path.read_bytes().startswith(b"\x89PNG")


def test_bad_arguments_are_usage_errors():
    with pytest.raises(SystemExit) as exit_info:
        main(["--fds", "254"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("cross_process", [False, True], ids=["in-process", "two-processes"])
@pytest.mark.parametrize("payload", [16, 65536], ids=["16B", "64KiB"])
def test_batches_run_and_close_every_fd(cross_process, payload):
    backends = [backend_contestant(load_backend("stdlib"))]
    if HAVE_REFERENCE:
        backends.append(backend_contestant(load_backend("reference")))
    before = _open_fds()
    for contestant in (INLINE, CALL_FLOOR, *backends):
        assert batch_ns(contestant, Case(3, payload, cross_process), 5) > 0
    assert _open_fds() == before


def test_call_floor_round_trip():
    a, b = socket.socketpair()
    r, w = os.pipe()
    try:
        assert floor_sendfds(a, b"hi", 0, [r, w]) == 2
        msg, fds = floor_recvfds(b, 16, 0, 4)
        assert msg == b"hi"
        assert type(fds) is tuple
        assert len(fds) == 2
        for fd in fds:
            assert not os.get_inheritable(fd)
            os.close(fd)
    finally:
        for fd in (r, w):
            os.close(fd)
        a.close()
        b.close()


@pytest.mark.skipif(find_compiler() is None, reason="no C compiler")
def test_c_floor_compiles_and_measures(tmp_path):
    floor, note = compile_floor(tmp_path)
    assert floor is not None, note
    assert floor.round_ns(2, 16, 10, cross_process=False, warmup=5) > 0
    assert floor.round_ns(253, 65536, 5, cross_process=True) > 0


def test_no_compiler_is_a_note(monkeypatch):
    monkeypatch.setattr("fdsend_conformance.tools.bench.floor_c.find_compiler", lambda: None)
    floor, note = compile_floor()
    assert floor is None
    assert "no C compiler" in note


def test_table_scaling_and_targets_render_from_results():
    results = [
        Result(Case(n, 16, False), name, 100, [1000.0 * n, 1100.0 * n, 1200.0 * n])
        for n in (1, 253)
        for name in ("inline", "call-floor", "reference", "stdlib")
    ]
    lines = table(results)
    assert "253 fds, 16 B, in-process" in lines
    assert any(line.strip().startswith("reference") for line in lines)
    assert any("1->253" in line for line in scaling(results))
    checked = {t.what: t for t in targets(results)}
    assert checked["reference / call-floor, 1 fd"].met is True
    assert checked["reference / call-floor, 1 fd"].measured == pytest.approx(1.0)
    assert checked["reference / multiprocessing, 253 fds"].met is None
    assert all(t.line() for t in checked.values())


def test_a_target_whose_spread_straddles_the_limit_is_within_noise():
    case = Case(1, 16, False)
    floor = [1000.0, 1000.0, 1000.0, 1000.0, 1000.0]
    results = [
        Result(case, "call-floor", 100, floor),
        Result(case, "stdlib", 100, floor),
        # per-repetition ratios 1.00 .. 1.20 to both: median 1.10, quartiles 1.05-1.15
        Result(case, "reference", 100, [1000.0, 1050.0, 1100.0, 1150.0, 1200.0]),
    ]
    checked = {t.what: t for t in targets(results)}
    to_floor = checked["reference / call-floor, 1 fd"]  # limit 1.15: at the top quartile
    assert to_floor.spread == pytest.approx((1.05, 1.15))
    assert to_floor.met is True
    assert to_floor.within_noise
    assert to_floor.line().endswith("within noise: no verdict")
    assert not re.search(r"\b(met|MISSED)\b", to_floor.line())
    to_stdlib = checked["reference / stdlib, 1 fd"]  # limit 1.10: the median itself
    assert to_stdlib.met is True
    assert to_stdlib.within_noise
    clear = Result(case, "reference", 100, [900.0, 910.0, 920.0, 930.0, 940.0])
    checked = {t.what: t for t in targets([*results[:2], clear])}
    assert not checked["reference / call-floor, 1 fd"].within_noise
    assert checked["reference / call-floor, 1 fd"].line().endswith(" met")
    assert checked["reference / call-floor, 1 fd"].line(decide=False).endswith("(a quick run)")


def test_async_backends_are_left_to_the_aio_bench():
    from fdsend_conformance.tools.bench.cli import _backends

    notes: list[str] = []
    names = [contestant.name for contestant in _backends(["reference", "reference-aio"], notes)]
    assert names == ["reference"]
    assert any("reference-aio skipped: asynchronous" in note for note in notes)


def test_the_aio_bench_prints_every_contestant_and_its_ratios(capsys):
    from fdsend_conformance.tools.bench import aio

    assert aio.main(["--reps", "1", "--scale", "0.001", "--cpu"]) == 0
    out = capsys.readouterr().out
    for n in aio.ROUNDS:
        assert f"{n} fd" in out
    for name in aio.CONTESTANTS:
        assert re.search(rf"^  {re.escape(name)} +\d+\.\d+ us/round$", out, re.M), name
    for ratio in ("aio/anyio", "aio/sync", "aio/awaited-sync", "awaited-sync/sync"):
        assert re.search(rf"^  {ratio} +\d+\.\d+$", out, re.M), ratio
