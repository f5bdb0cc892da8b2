"""``fdsend-conformance vm KERNEL [pytest args]``: the suite on another kernel, in a VM.

::

    fdsend-conformance vm debian:6.1                   # fetch Debian's 6.1, run -m kernel
    fdsend-conformance vm /boot/vmlinuz-6.12.0 -k pidfd --out vm-6.12
    fdsend-conformance vm --fetch debian:6.12          # only download and unpack it
    fdsend-conformance vm debian:trixie-backports/7.2.6 --clauses KERNEL-23 --runs 3
                                                       # its test modules, 3 runs, 1 boot

KERNEL is a kernel image (a ``vmlinuz``, with its modules in
``../lib/modules/RELEASE`` as ``dpkg -x`` lays them out) or one of Debian's
generic amd64 images: ``debian:SUITE/VERSION`` (``debian:bullseye/5.10.262``,
``debian:trixie-backports/7.2.6``), ``debian:RELEASE``, ``debian:SERIES``
(``debian:6.1``: its newest image), downloaded through a private apt
configuration and unpacked with ``dpkg -x`` into a cache folder, never
installed (see :mod:`fdsend_conformance.tools.kernel_fetch`, whose ``list``
command shows what each suite offers).

virtme-ng (``pip install virtme-ng``; QEMU from Debian's ``qemu-system-x86``,
with ``kmod`` and ``busybox-static``) boots the kernel over a read-only
snapshot of the running system, so the guest runs this very installation of
the suite. The guest runs ``fdsend-conformance run`` with the pytest
arguments given (:data:`DEFAULT_PYTEST_ARGS`, the kernel checks, when there
are none) and writes into the
output folder, the only folder it can write to (``--rwdir``):

- ``kernel-RELEASE.json``, the JSON conformance report, and
  ``kernel-RELEASE.ktap``, the same run as KTAP;
- ``pytest.log``, the run's output, printed here afterwards;
- ``status``, the run's exit status, which becomes this command's;
- ``uptime``, the guest's uptime when the script started and when the suite
  ended: the boot's share of the time and the suite's.

``fdsend-conformance compare HOST.json OUT/kernel-RELEASE.json`` (or
``--compare HOST.json`` here) then lists the clauses that differ.

QEMU runs without KVM unless ``--kvm`` is given: on the machine this was
written on, ``/dev/kvm`` exists but a KVM guest either aborts (``-cpu host``:
"failed to set MSR 0x10a") or hangs, while the emulated guest boots in
about 8 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fdsend_conformance.harness.kernel_fixes import THROWAWAY_KERNEL_ENV
from fdsend_conformance.tools.cli import suite_command
from fdsend_conformance.tools.kernel_fetch import DEBIAN_PREFIX, FetchError, fetch, guest_tree

__all__ = [
    "DEFAULT_PYTEST_ARGS",
    "VmResult",
    "VmSetup",
    "boot_runs",
    "guest_command",
    "guest_script",
    "main",
    "retrieve",
    "run_folders",
    "vng_command",
    "warm_up",
]

#: What the guest runs when no pytest arguments are given: the kernel checks,
#: in-process. They call no backend, so a forked child per test guards
#: against nothing here, and forks are slow under emulation: measured on
#: Debian's 6.1 without KVM, the same 144 tests and results took 83 s
#: in-process and 154 s isolated.
#: The per-test backstop is raised from the host's 20 s: under emulation on
#: a loaded machine, a check that makes a network namespace took longer on
#: Debian's 5.10 (pytest-timeout then ended the run with an INTERNALERROR).
DEFAULT_PYTEST_ARGS: tuple[str, ...] = (
    "-m",
    "kernel",
    "--fdsend-isolate=no",
    "--fdsend-test-timeout=300",
)
#: What the guest collects for the default run: the kernel checks' own
#: package, not the whole suite (whose other modules import anyio, trio,
#: hypothesis, ...), without the pytest plugins they do not use. Each
#: import reads its files over 9p under emulation: measured on this
#: machine's host, collecting the kernel checks took 6.7-7.8 s from the
#: whole suite and 1.7-2.6 s this way.
KERNEL_PACKAGE = "fdsend_conformance.suite.kernel"
#: pytest's own plugins whose fixtures and options the kernel checks do not
#: use are left out too: their imports are a tenth of the file system calls
#: of the guest's start-up (about 5,500 natively, each a 9p round trip there).
UNUSED_PLUGINS = (
    *("hypothesispytest", "anyio", "xdist", "xdist.looponfail", "platformdirs"),
    *("doctest", "junitxml", "pastebin", "legacypath", "unittest", "setuponly", "setupplan"),
    *("stepwise", "tmpdir", "recwarn", "monkeypatch", "subtests", "debugging"),
)
#: The files the guest writes into the output folder.
STATUS_FILE = "status"
RELEASE_FILE = "release"
LOG_FILE = "pytest.log"
REPORT_FILE = "report.json"
KTAP_FILE = "report.ktap"
CONSOLE_FILE = "console.log"
UPTIME_FILE = "uptime"
SCRIPT_FILE = "guest.sh"

#: The host's collection of the guest's tests (:func:`warm_up`), before it
#: gives up (the guest then compiles what is missing itself).
WARM_UP_TIMEOUT = 120.0


@dataclass(frozen=True)
class VmSetup:
    """How to boot the guest: the image, the output folder and QEMU's knobs."""

    image: Path
    out: Path
    kvm: bool = False
    cpus: int | None = None
    memory: str = "1G"
    #: Whether the host collects the guest's tests first (:func:`warm_up`).
    warm_up: bool = False


def modules_naming(clauses: Sequence[str]) -> list[str]:
    """The kernel test modules whose ``clause`` marks name one of ``clauses``."""
    folder = Path(__file__).resolve().parent.parent / "suite" / "kernel"
    found = []
    for path in sorted(folder.glob("test_*.py")):
        named = {
            cid
            for args in re.findall(r"mark\.clause\(([^)]*)\)", path.read_text(encoding="utf-8"))
            for cid in re.findall(r"[A-Z]+-\d+", args)
        }
        if named & set(clauses):
            found.append(f"{KERNEL_PACKAGE}.{path.stem}")
    return found


def guest_command(
    python: str,
    pytest_args: Sequence[str],
    packages: Sequence[str] = (),
    outputs: Sequence[str] = (),
) -> list[str]:
    """The suite's command line in the guest, writing ``outputs`` (report options).

    Without ``pytest_args`` the kernel checks run, collected from ``packages``
    (default: all of :data:`KERNEL_PACKAGE`), without the plugins they do
    not use; else ``fdsend-conformance run`` with ``pytest_args``.
    """
    if pytest_args:
        return [python, "-m", "fdsend_conformance", "run", *outputs, *pytest_args]
    unused = [arg for plugin in UNUSED_PLUGINS for arg in ("-p", f"no:{plugin}")]
    extra = [*outputs, *DEFAULT_PYTEST_ARGS, *unused]
    collected = list(packages) or [KERNEL_PACKAGE]
    command = suite_command(None, [*collected[1:], *extra], package=collected[0])
    return [python, *command[1:]]


def guest_script(
    python: str, out: Path, pytest_args: Sequence[str], packages: Sequence[str] = ()
) -> str:
    """The shell command the guest runs: the suite, its outputs into ``out``.

    The run's own output goes to a file: a kernel without a built-in
    virtio console has no channel back to the host's terminal but the
    serial console, which carries the kernel's messages too. The suite is
    :func:`guest_command`'s.
    """
    outputs = [
        f"--fdsend-conformance-report={out / REPORT_FILE}",
        f"--fdsend-ktap={out / KTAP_FILE}",
    ]
    # the guest's kernel is booted for this run alone: known leaks may run there
    run = f"{THROWAWAY_KERNEL_ENV}=1 " + shlex.join(
        guest_command(python, pytest_args, packages, outputs)
    )
    uptime = shlex.quote(str(out / UPTIME_FILE))
    return "; ".join(
        [
            f"cut -d' ' -f1 /proc/uptime > {uptime}",
            f"uname -r > {shlex.quote(str(out / RELEASE_FILE))}",
            f"{run} > {shlex.quote(str(out / LOG_FILE))} 2>&1",
            f"echo $? > {shlex.quote(str(out / STATUS_FILE))}",
            f"cut -d' ' -f1 /proc/uptime >> {uptime}",
        ]
    )


def warm_up(command: Sequence[str]) -> bool:
    """Collect what ``command`` (a :func:`guest_command`) collects, here, so that
    the bytecode of every module it imports is written; True if it could.

    The guest's root is the host's, read-only: it can write no bytecode, and
    without this compiled on every run, under emulation, each module of the
    suite that has none beside it (an editable install's, or any when
    PYTHONDONTWRITEBYTECODE is set, as it is where this was written) and
    each one pytest rewrites for its asserts (the test modules, and a
    plugin's: all of the suite's), which no installer compiles. Natively
    that takes a second or two; pytest and Python check each file's date
    and size, so nothing stale is ever read. Where the installation is not
    writable, nothing changes.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        collected = subprocess.run(
            [*command, "--collect-only", "-q"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            timeout=WARM_UP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return collected.returncode == 0


def vng_command(vng: str, setup: VmSetup, script: str) -> list[str]:
    """The ``vng`` command line that boots ``setup.image`` and runs ``script``.

    ``--force-9p``: the root is the host's, shared read-only over 9p (Debian's
    generic images have 9p as modules, virtme-ng loads them); ``--verbose``
    puts the guest's console on stderr, which is kept in ``console.log``.
    """
    command = [vng, "--run", str(setup.image), "--force-9p", "--verbose"]
    if not setup.kvm:
        command.append("--disable-kvm")
    if setup.cpus is not None:
        command += ["--cpus", str(setup.cpus)]
    command += ["--memory", setup.memory, "--rwdir", str(setup.out), "--", script]
    return command


@dataclass(frozen=True)
class VmResult:
    """What the guest left in the output folder, with the report renamed by release."""

    status: int | None
    release: str | None
    report: Path | None
    ktap: Path | None
    log: str
    #: The guest's uptime (s) when the script started and when the suite ended.
    uptime: tuple[float, ...] = ()

    @property
    def ran(self) -> bool:
        """Whether the suite ran to its end in the guest."""
        return self.status is not None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None


def retrieve(out: Path) -> VmResult:
    """Collect the guest's outputs from ``out``; name the report after the kernel.

    The report becomes ``kernel-RELEASE.json`` (and the KTAP
    ``kernel-RELEASE.ktap``), as ``fdsend-conformance run`` names a host's.
    """
    status_text = _read(out / STATUS_FILE)
    release = (_read(out / RELEASE_FILE) or "").strip() or None
    status = int(status_text) if status_text and status_text.strip().isdigit() else None
    stem = f"kernel-{release}" if release else "kernel"
    report = _rename(out / REPORT_FILE, out / f"{stem}.json")
    ktap = _rename(out / KTAP_FILE, out / f"{stem}.ktap")
    uptime = tuple(float(line) for line in (_read(out / UPTIME_FILE) or "").split())
    return VmResult(status, release, report, ktap, _read(out / LOG_FILE) or "", uptime)


def _rename(source: Path, target: Path) -> Path | None:
    if source.exists():
        source.replace(target)
    return target if target.exists() else None


def _clear(out: Path) -> None:
    """Remove a previous run's outputs, so that none is taken for this run's."""
    for name in (
        STATUS_FILE,
        RELEASE_FILE,
        LOG_FILE,
        REPORT_FILE,
        KTAP_FILE,
        CONSOLE_FILE,
        UPTIME_FILE,
    ):
        (out / name).unlink(missing_ok=True)


def find_vng() -> str | None:
    """The ``vng`` executable: on PATH, or beside this Python (a venv's bin)."""
    found = shutil.which("vng")
    if found:
        return found
    beside = Path(sys.executable).parent / "vng"
    return str(beside) if beside.exists() else None


def missing_tools(kvm: bool = False) -> list[str]:
    """What this machine lacks to boot a guest, each with how to get it."""
    missing = []
    if find_vng() is None:
        missing.append("vng (pip install virtme-ng)")
    if shutil.which("qemu-system-x86_64") is None:
        missing.append("qemu-system-x86_64 (apt-get install qemu-system-x86)")
    if shutil.which("busybox") is None:
        missing.append("busybox (apt-get install busybox-static)")
    if shutil.which("depmod") is None and not Path("/usr/sbin/depmod").exists():
        missing.append("depmod (apt-get install kmod)")
    if kvm and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        missing.append("/dev/kvm (for --kvm)")
    return missing


def run_folders(out: Path, runs: int) -> list[Path]:
    """Where each run's outputs go: ``out`` itself for one run, ``out/runN`` for more."""
    return [out] if runs == 1 else [out / f"run{n}" for n in range(1, runs + 1)]


def boot(
    vng: str,
    setup: VmSetup,
    pytest_args: Sequence[str],
    timeout: float,
    python: str = sys.executable,
    packages: Sequence[str] = (),
) -> VmResult:
    """Boot the guest, run the suite in it (with ``python``) and bring its outputs back."""
    return boot_runs(vng, setup, pytest_args, timeout, python, packages)[0]


def boot_runs(
    vng: str,
    setup: VmSetup,
    pytest_args: Sequence[str],
    timeout: float,
    python: str = sys.executable,
    packages: Sequence[str] = (),
    runs: int = 1,
) -> list[VmResult]:
    """Boot the guest once, run the suite ``runs`` times in it, bring each run's outputs back.

    Each run is its own interpreter and pytest session, one after the
    other, into its own folder (:func:`run_folders`).
    """
    setup.out.mkdir(parents=True, exist_ok=True)
    setup = dataclasses.replace(setup, out=setup.out.resolve())  # the guest's path too
    folders = run_folders(setup.out, runs)
    for folder in folders:
        folder.mkdir(exist_ok=True)
        _clear(folder)
    if setup.warm_up and not warm_up(guest_command(python, pytest_args, packages)):
        print("fdsend-conformance vm: the host could not collect the tests first", file=sys.stderr)
    # The script goes to a file in the shared folder: virtme-ng passes the
    # command on the kernel's command line, where a few runs' commands
    # overflow its 2048 bytes (the kernel panics in start_kernel).
    script = setup.out / SCRIPT_FILE
    script.write_text(
        "\n".join(guest_script(python, f, pytest_args, packages) for f in folders) + "\n"
    )
    command = vng_command(vng, setup, f"sh {shlex.quote(str(script))}")
    env = dict(os.environ)
    # vng starts virtme-run by name: it lives beside vng (a venv's bin).
    env["PATH"] = os.pathsep.join([str(Path(vng).parent), env.get("PATH", "")])
    with open(setup.out / CONSOLE_FILE, "wb") as console:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # QEMU and all: one group to end on timeout
        )
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            print(f"fdsend-conformance vm: guest killed after {timeout:.0f} s", file=sys.stderr)
    return [retrieve(folder) for folder in folders]


def _timing(result: VmResult, elapsed: float) -> str:
    """Where the time went: booting to the script, the suite, all from the command."""
    if len(result.uptime) < 2:
        return f"boot and run {elapsed:.1f} s"
    boot, ended = result.uptime[:2]
    return f"boot {boot:.1f} s, suite {ended - boot:.1f} s, {elapsed:.1f} s in all"


def _console_tail(out: Path, lines: int = 20) -> str:
    text = _read(out / CONSOLE_FILE) or ""
    return "\n".join(text.splitlines()[-lines:])


def _compare(host_report: Path, guest_report: Path) -> None:
    from fdsend_conformance.tools.compare import changes

    host = json.loads(host_report.read_text(encoding="utf-8"))
    guest: dict[str, Any] = json.loads(guest_report.read_text(encoding="utf-8"))
    found = changes(host, guest)
    print(f"compared with {host_report}:")
    for change in found:
        print(change.line())
    print(f"{len(found)} clause(s) changed" if found else "no clause changed")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fdsend-conformance vm",
        allow_abbrev=False,  # --co is pytest's --collect-only, not --compare
        description=(
            "Boot KERNEL with virtme-ng over a read-only snapshot of this system, run the "
            "suite inside (default: -m kernel, in-process; other options go to pytest) "
            "and bring the JSON report back."
        ),
    )
    parser.add_argument(
        "kernel",
        help="a vmlinuz, or debian:SUITE/VERSION, debian:RELEASE, debian:SERIES to fetch one",
    )
    parser.add_argument(
        "--fetch", action="store_true", help="only download and unpack KERNEL; print its image"
    )
    parser.add_argument("--out", type=Path, help="output folder (default: vm-RELEASE or vm)")
    parser.add_argument("--kvm", action="store_true", help="use KVM (default: emulate)")
    parser.add_argument("--cpus", type=int, help="guest CPUs (default: the host's count)")
    parser.add_argument("--memory", default="1G", help="guest memory (default: 1G)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=900.0,
        help="seconds per run before the guest is killed (default 900)",
    )
    parser.add_argument("--compare", type=Path, metavar="REPORT", help="a host report to compare")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="run the suite this many times in one boot, each into OUT/runN (default 1)",
    )
    parser.add_argument(
        "--clauses",
        metavar="ID,...",
        help="run only the kernel test modules that check these clauses (KERNEL-23,...)",
    )
    parser.add_argument(
        "--all-modules",
        action="store_true",
        help="let the guest load any of a Debian image's modules, device drivers too "
        "(default: file systems, network protocols and virtio; see kernel_fetch.GUEST_MODULES)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="do not print the guest's run, only its outcome"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python (with fdsend installed) the guest runs (default: this one)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite on another kernel in a VM; see the module docstring."""
    known, pytest_args = _parser().parse_known_args(argv)
    try:
        image = fetch(known.kernel) if known.kernel.startswith(DEBIAN_PREFIX) else None
        if image and not known.fetch and not known.all_modules:
            image = guest_tree(image)
    except FetchError as exc:
        print(f"fdsend-conformance vm: {exc}", file=sys.stderr)
        return 2
    image = image or Path(known.kernel)
    if known.fetch:
        print(image)
        return 0
    if not image.is_file():
        print(f"fdsend-conformance vm: no kernel image {image}", file=sys.stderr)
        return 2
    packages = modules_naming(known.clauses.split(",")) if known.clauses else []
    if known.clauses and not packages:
        print(f"fdsend-conformance vm: no kernel test checks {known.clauses}", file=sys.stderr)
        return 2
    missing = missing_tools(known.kvm)
    vng = find_vng()
    if missing or vng is None:
        print(f"fdsend-conformance vm: missing {'; '.join(missing)}", file=sys.stderr)
        return 2
    release = image.name.removeprefix("vmlinuz-") if image.name.startswith("vmlinuz-") else ""
    out = known.out or Path(f"vm-{release}" if release else "vm")
    setup = VmSetup(image, out, known.kvm, known.cpus, known.memory, warm_up=True)
    started = time.monotonic()
    timeout = known.timeout * known.runs
    results = boot_runs(vng, setup, pytest_args, timeout, known.python, packages, known.runs)
    elapsed = time.monotonic() - started
    statuses = []
    for result in results:
        if not known.quiet:
            sys.stdout.write(result.log)
        if not result.ran:
            print(
                f"fdsend-conformance vm: the suite did not finish in the guest; "
                f"its console ({out / CONSOLE_FILE}) ends:\n{_console_tail(out)}",
                file=sys.stderr,
            )
            return 2
        assert result.status is not None
        statuses.append(result.status)
        print(f"guest {result.release}: {_timing(result, elapsed)}; exit status {result.status}")
        if result.report:
            print(f"report: {result.report}")
        if result.ktap:
            print(f"ktap: {result.ktap}")
        if known.compare and result.report:
            _compare(known.compare, result.report)
    return max(statuses)
