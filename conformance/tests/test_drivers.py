"""The driver plumbing: a broken driver fails its test with a message that says how,
in bounded time, and the run goes on; a backend's bogus "fd" is never taken over."""

from __future__ import annotations

import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from suite_runs import run_suite, statuses, suite_runner

from fdsend_conformance.driver.client import PROTOCOL_VERSION, Driver, DriverFailure

#: A driver like the reference driver, broken in the way its argument names.
BROKEN_DRIVER = """
import json
import os
import sys
import time

from fdsend_conformance.driver import reference

MODE = sys.argv[1]


class Replies:
    def __init__(self, out):
        self.out = out

    def write(self, text):
        reply = json.loads(text)
        if MODE == "wrong-version" and "version" in reply:
            reply["version"] = 2
        if reply.get("fds") and "msg" in reply:  # a recvfds reply with fds
            if MODE == "crash":
                sys.stderr.write("about to crash in recvfds\\n")
                sys.stderr.flush()
                os._exit(3)
            if MODE == "hang":
                time.sleep(10**6)
            if MODE == "garbage":
                self.out.write("this is not JSON\\n")
                return
            if MODE == "bogus-fd":
                reply["fds"] = [999]
            if MODE == "leak":
                os.open(os.devnull, os.O_RDONLY)
        self.out.write(json.dumps(reply) + "\\n")

    def flush(self):
        self.out.flush()


reference.serve(sys.stdin.buffer, Replies(sys.stdout))
"""

#: An in-process backend whose receive hands back a number that is no fd it received.
BOGUS_BACKEND = """
import os

import fdsend

name = "bogus"
sendfds = fdsend.sendfds


def recvfds(sock, size, flags=0, numfds=64):
    msg, fds = fdsend.recvfds(sock, size, flags, numfds)
    for fd in fds:
        os.close(fd)
    return msg, [os.getpid()]  # as scgi's passfd does with SO_PASSCRED on


class NotAnInt:
    name = "not-an-int"
    sendfds = staticmethod(fdsend.sendfds)

    @staticmethod
    def recvfds(sock, size, flags=0, numfds=64):
        msg, fds = fdsend.recvfds(sock, size, flags, numfds)
        for fd in fds:
            os.close(fd)
        return msg, [str(fd) for fd in fds]


not_an_int = NotAnInt()
"""

#: One test that sends and receives (and one that does not touch the backend).
SELECTION = "test_several_fds_arrive_in_order and 1]"


@pytest.fixture
def run(pytester: pytest.Pytester):
    run_with_them = suite_runner(pytester, broken_driver=BROKEN_DRIVER, bogus=BOGUS_BACKEND)

    def run_selection(
        backend: str, *args: str, selection: str = SELECTION
    ) -> tuple[Any, dict[str, Any], float]:
        started = time.monotonic()
        result, report = run_with_them(
            f"--backend={backend}",
            "--tb=short",  # the failure's whole message, stderr tail included
            "-k",
            selection,
            "--expected=none",
            *args,
        )
        return result, report, time.monotonic() - started

    return run_selection


def _driver(pytester: pytest.Pytester, mode: str) -> str:
    return "driver:" + shlex.join([sys.executable, str(pytester.path / "broken_driver.py"), mode])


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("crash", "*driver crashed: exited with exit status 3 during 'recvfds'*"),
        ("garbage", "*driver garbage: replied to 'recvfds' with 'this is not JSON'*"),
        ("bogus-fd", "*driver bad-fd: its reply names fd 999, which it does not hold*"),
        ("leak", "*leaked 1 fd(s): * -> /dev/null*"),
    ],
)
def test_a_broken_driver_fails_its_test_and_says_how(run, pytester, mode, message):
    result, report, _ = run(_driver(pytester, mode))
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert statuses(report)["XFER-1"] == "FAIL"
    result.stdout.fnmatch_lines([message])


def test_a_crashed_driver_shows_the_tail_of_its_stderr(run, pytester):
    result, _, _ = run(_driver(pytester, "crash"))
    result.stdout.fnmatch_lines(["*the tail of its stderr:", "about to crash in recvfds"])


def test_a_hung_driver_is_killed_after_the_bound(run, pytester):
    from fdsend_conformance.harness.timeouts import DRIVER_REPLY_TIMEOUT

    result, report, seconds = run(_driver(pytester, "hang"))
    assert statuses(report)["XFER-1"] == "FAIL"
    result.stdout.fnmatch_lines(
        [f"*driver hung: did not reply to 'recvfds' within {DRIVER_REPLY_TIMEOUT:g} s; killed*"]
    )
    assert seconds < DRIVER_REPLY_TIMEOUT + 30, "the hang stalled the run"


def test_a_driver_of_another_version_is_refused_by_name(run, pytester):
    result, _, _ = run(_driver(pytester, "wrong-version"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*driver version: speaks protocol version 2; the suite speaks {PROTOCOL_VERSION}*"]
    )


def test_a_broken_driver_fails_its_test_only(run, pytester):
    """The run goes on: the tests after the crash get a fresh driver and pass."""
    selection = "test_several_fds_arrive_in_order or test_zero_fds_is_a_plain_message"
    result, _, _ = run(_driver(pytester, "crash"), selection=selection)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 4  # every fd count: each receive crashes a driver
    assert outcomes.get("passed") == 2  # plain messages still go through fresh drivers


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("bogus", "*the receive returned [[]*[]] as its fds: * is not an open fd*"),
        ("bogus:not_an_int", "*the receive returned [[]'*'[]] as its fds: '*' (str) is not*"),
    ],
)
def test_a_bogus_fd_from_an_in_process_backend_is_named_and_left_alone(run, backend, message):
    result, report, _ = run(backend)
    assert statuses(report)["XFER-1"] == "FAIL"
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*Bad file descriptor*")  # nothing it returned was closed


def test_a_driver_command_that_does_not_run_is_a_usage_error(pytester):
    result, _ = run_suite(pytester, "--tb=short", "--backend=driver:/nonexistent/driver")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*driver start: cannot run [[]'/nonexistent/driver'[]]*"])


def test_the_client_bounds_a_silent_start(tmp_path: Path):
    script = tmp_path / "silent.py"
    script.write_text("import sys, time\nsys.stdin.readline()\ntime.sleep(10**6)\n")
    driver = Driver([sys.executable, str(script)], start_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(DriverFailure) as raised:
        driver.start()
    assert raised.value.kind == "hung"
    assert "did not reply to 'start' within 0.5 s; killed" in str(raised.value)
    assert time.monotonic() - started < 5
    assert not driver.running


SCHEMA = Path(__file__).resolve().parents[1] / "fdsend_conformance" / "driver.schema.json"


def test_the_reference_drivers_messages_follow_the_schema(monkeypatch):
    """Every request the suite sends and every reply the reference driver gives, validated."""
    import errno
    import os
    import socket

    import jsonschema

    from fdsend_conformance.driver.caller import DriverBackend

    schema = json.loads(SCHEMA.read_text())
    assert schema["protocol_version"] == PROTOCOL_VERSION
    traffic: list[tuple[dict[str, Any], dict[str, Any]]] = []
    exchange = Driver._exchange

    def recorded(self: Driver, message: dict[str, Any], timeout: float) -> Any:
        reply = exchange(self, message, timeout)
        traffic.append((message, reply))
        return reply

    monkeypatch.setattr(Driver, "_exchange", recorded)
    backend = DriverBackend(
        shlex.join([sys.executable, "-m", "fdsend_conformance.driver.reference"])
    )
    a, b = socket.socketpair()
    read_end, write_end = os.pipe()
    try:
        with backend.session():
            backend.sendfds(a, b"schema", 0, [read_end, write_end])
            _, fds = backend.recvfds(b, 16, 0, 1)  # one of two: truncated
            for fd in fds:
                os.close(fd)
            b.setblocking(False)
            with pytest.raises(BlockingIOError):
                backend.recvfds(b, 16, 0, 1)
        backend.stop()
    finally:
        for fd in (read_end, write_end):
            os.close(fd)
        a.close()
        b.close()
    commands = [message["cmd"] for message, _ in traffic]
    assert {"start", "take", "sendfds", "recvfds", "close", "stop"} <= set(commands)
    validator = jsonschema.Draft202012Validator(schema)
    for message, reply in traffic:
        cmd = message["cmd"]
        validator.validate(message)
        jsonschema.validate(message, {**schema, "$ref": f"#/$defs/request-{cmd}"})
        done = "done" if cmd in ("close", "stop") else cmd
        shape = f"reply-{done}" if reply["ok"] else "reply-error"
        jsonschema.validate(reply, {**schema, "$ref": f"#/$defs/{shape}"})
    errors = [reply for _, reply in traffic if not reply["ok"]]
    assert [reply["errno"] for reply in errors] == [errno.EAGAIN]


def _driver_folder(root: Path, build: str) -> Path:
    folder = root / "toy"
    folder.mkdir()
    (folder / "build.sh").write_text(build)
    (folder / "expected.txt").write_text("")
    return folder


def test_a_driver_folder_is_built_once_and_cached(tmp_path: Path, monkeypatch):
    from fdsend_conformance.driver import named

    monkeypatch.setenv("FDSEND_DRIVER_CACHE", str(tmp_path / "cache"))
    reference = shlex.join([sys.executable, "-m", "fdsend_conformance.driver.reference"])
    builds = tmp_path / "builds"
    folder = _driver_folder(
        tmp_path,
        f'echo built >> {shlex.quote(str(builds))}\nprintf "#!/bin/sh\\nexec {reference}\\n"'
        ' > "$1/driver"\nchmod +x "$1/driver"\n',
    )
    first = named.build(folder)
    again = named.build(folder)
    assert first.executable == again.executable
    assert first.name == "toy"
    assert first.expected == folder / "expected.txt"
    assert again.seconds == 0.0
    assert builds.read_text() == "built\n"  # the second found it built
    (folder / "build.sh").write_text((folder / "build.sh").read_text() + "\n# changed\n")
    changed = named.build(folder).executable
    assert changed != first.executable  # a change builds anew
    shared = tmp_path / "_protocol-toy"  # code build.sh would compile in from ..
    shared.mkdir()
    (shared / "protocol.c").write_text("int x;\n")
    with_shared = named.build(folder).executable
    assert with_shared != changed
    (shared / "protocol.c").write_text("int y;\n")
    assert named.build(folder).executable != with_shared  # so does a change there
    assert builds.read_text() == "built\n" * 4


def test_a_driver_folder_missing_a_tool_says_so(tmp_path: Path, monkeypatch, pytester):
    from fdsend_conformance.driver import named

    monkeypatch.setenv("FDSEND_DRIVER_CACHE", str(tmp_path / "cache"))
    folder = _driver_folder(
        tmp_path, 'echo "toy: frobc not found (Debian package frobc)" >&2\nexit 77\n'
    )
    with pytest.raises(named.BuildError) as raised:
        named.build(folder)
    assert raised.value.missing_tool
    assert "frobc not found" in str(raised.value)
    assert named.main(["build", str(folder)]) == named.MISSING_TOOL


def test_the_bench_runs_a_drivers_rounds_inside_it():
    from fdsend_conformance.plumbing.callers import closing_backend
    from fdsend_conformance.plumbing.registry import load_backend
    from fdsend_conformance.tools.bench.rounds import Case, batch_ns, in_driver_contestant

    with closing_backend(load_backend("reference-driver")) as backend:
        contestant = in_driver_contestant(backend)
        assert contestant.name == "reference-driver (in driver)"
        assert batch_ns(contestant, Case(1, 16, False), 50) > 0
        assert contestant.refuses(Case(1, 16, True)) is not None  # rounds in one process only
        assert contestant.refuses(Case(16, 16, False)) is not None  # one fd a round
