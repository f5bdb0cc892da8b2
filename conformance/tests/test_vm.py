"""``fdsend-conformance vm``: the command lines, the guest's script, the report's way back.

No QEMU needed: the guest's script runs on the host here (it is what the
guest runs over the host's own root), and a stand-in ``vng`` runs it the way
the real one does. One test boots a real kernel, opt-in: set
``FDSEND_VM_KERNEL`` to a vmlinuz or to ``debian:6.1``.
"""

from __future__ import annotations

import json
import os
import platform
import select
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from fdsend_conformance.tools import vm

TINY_RUN = ("-m", "kernel", "-k", "scm_max_fd", "-p", "no:xdist", "-q")


def test_vng_boots_without_kvm_by_default_and_shares_only_the_output_folder(tmp_path: Path):
    setup = vm.VmSetup(Path("/k/vmlinuz-6.1"), tmp_path)
    command = vm.vng_command("/bin/vng", setup, "echo hi")
    assert command[:3] == ["/bin/vng", "--run", "/k/vmlinuz-6.1"]
    assert "--disable-kvm" in command
    assert "--force-9p" in command
    assert command[command.index("--rwdir") + 1] == str(tmp_path)
    assert command[-2:] == ["--", "echo hi"]
    assert "--rw" not in command  # the host's root stays read-only


def test_vng_with_kvm_and_sizes(tmp_path: Path):
    setup = vm.VmSetup(Path("/k/vmlinuz"), tmp_path, kvm=True, cpus=1, memory="2G")
    command = vm.vng_command("vng", setup, "true")
    assert "--disable-kvm" not in command
    assert command[command.index("--cpus") + 1] == "1"
    assert command[command.index("--memory") + 1] == "2G"


def test_guest_script_runs_the_kernel_checks_by_default(tmp_path: Path):
    script = vm.guest_script("/venv/bin/python", tmp_path, [])
    assert "-m kernel --fdsend-isolate=no" in script
    assert f"--fdsend-conformance-report={tmp_path / vm.REPORT_FILE}" in script
    assert f"--fdsend-ktap={tmp_path / vm.KTAP_FILE}" in script
    chosen = vm.guest_script("/venv/bin/python", tmp_path, ["--backend", "stdlib", "-k", "x y"])
    assert "-m kernel" not in chosen
    assert "--fdsend-isolate=no" not in chosen
    assert "--backend stdlib -k 'x y'" in chosen


def test_options_it_does_not_know_go_to_pytest_in_order():
    known, rest = vm._parser().parse_known_args(
        ["debian:6.1", "-m", "kernel", "--co", "-k", "x y", "--kvm", "--backend", "stdlib"]
    )
    assert (known.kernel, known.kvm, known.compare) == ("debian:6.1", True, None)
    assert rest == ["-m", "kernel", "--co", "-k", "x y", "--backend", "stdlib"]


def _script_on_host(out: Path) -> subprocess.CompletedProcess[str]:
    script = vm.guest_script(sys.executable, out, TINY_RUN)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=120)


def test_the_guests_script_leaves_a_report_that_is_retrieved_by_release(tmp_path: Path):
    done = _script_on_host(tmp_path)
    assert done.returncode == 0, done.stderr
    result = vm.retrieve(tmp_path)
    release = platform.release()
    assert (result.status, result.release) == (0, release)
    assert result.report == tmp_path / f"kernel-{release}.json"
    assert result.ktap == tmp_path / f"kernel-{release}.ktap"
    report = json.loads(result.report.read_text())
    assert report["environment"]["kernel"] == f"Linux {release}"
    [clause] = [c for c in report["clauses"] if c["id"] == "KERNEL-1"]
    assert clause["status"] == "PASS"
    assert result.ktap.read_text().startswith("KTAP version 1\n")
    assert "passed" in result.log


def test_the_default_run_collects_the_kernel_package_alone_without_unused_plugins(tmp_path: Path):
    script = vm.guest_script("/venv/bin/python", tmp_path, [])
    assert f"/venv/bin/python -m pytest --pyargs {vm.KERNEL_PACKAGE} " in script
    assert "-p no:hypothesispytest -p no:anyio -p no:xdist" in script
    assert f"cut -d' ' -f1 /proc/uptime > {tmp_path / vm.UPTIME_FILE}" in script


def test_clauses_select_the_kernel_modules_that_check_them(tmp_path: Path):
    modules = vm.modules_naming(["KERNEL-23", "KERNEL-1"])
    assert f"{vm.KERNEL_PACKAGE}.test_kernel_gc_cycles" in modules
    assert f"{vm.KERNEL_PACKAGE}.test_kernel_limits" in modules
    assert f"{vm.KERNEL_PACKAGE}.test_kernel_pidfd" not in modules
    script = vm.guest_script("py", tmp_path, [], modules)
    assert f"--pyargs {modules[0]} " in script
    assert all(f" {module} " in script for module in modules[1:])
    assert f"--pyargs {vm.KERNEL_PACKAGE} " not in script
    assert vm.modules_naming(["KERNEL-999"]) == []


def test_a_clause_no_kernel_test_checks_is_a_usage_error(capsys):
    assert vm.main([__file__, "--clauses", "KERNEL-999"]) == 2
    assert "no kernel test checks KERNEL-999" in capsys.readouterr().err


def test_the_run_says_where_the_time_went(tmp_path: Path):
    (tmp_path / vm.RELEASE_FILE).write_text("6.1.0-1-amd64\n")
    (tmp_path / vm.STATUS_FILE).write_text("0\n")
    (tmp_path / vm.UPTIME_FILE).write_text("12.50\n40.25\n")
    result = vm.retrieve(tmp_path)
    assert result.uptime == (12.5, 40.25)
    assert vm._timing(result, 50.0) == "boot 12.5 s, suite 27.8 s, 50.0 s in all"


def test_retrieve_without_a_status_says_the_suite_did_not_finish(tmp_path: Path):
    (tmp_path / vm.RELEASE_FILE).write_text("6.1.0-1-amd64\n")
    (tmp_path / vm.STATUS_FILE).write_text("")  # the guest died before writing it
    result = vm.retrieve(tmp_path)
    assert not result.ran
    assert (result.release, result.report) == ("6.1.0-1-amd64", None)


FAKE_VNG = """#!/bin/sh
# Stands in for vng: runs what follows "--" as the guest would, over this root.
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do shift; done
shift
echo "[    0.000000] Linux version fake" >&2
exec sh -c "$1"
"""


def _fake_vng(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bin" / "vng"
    path.parent.mkdir()
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def test_boot_runs_the_script_and_keeps_the_console(tmp_path: Path):
    vng = _fake_vng(tmp_path, FAKE_VNG)
    out = tmp_path / "out"
    result = vm.boot(vng, vm.VmSetup(Path("vmlinuz"), out), TINY_RUN, timeout=120)
    assert result.status == 0, result.log
    assert result.report is not None
    assert result.report.name == f"kernel-{platform.release()}.json"
    assert "Linux version fake" in (out / vm.CONSOLE_FILE).read_text()


def test_several_runs_in_one_boot_each_leave_their_report(tmp_path: Path):
    vng = _fake_vng(tmp_path, FAKE_VNG)
    out = tmp_path / "out"
    results = vm.boot_runs(vng, vm.VmSetup(Path("vmlinuz"), out), TINY_RUN, 240, runs=2)
    assert [r.status for r in results] == [0, 0]
    assert [r.report for r in results] == [
        out / f"run{n}" / f"kernel-{platform.release()}.json" for n in (1, 2)
    ]
    assert vm.run_folders(out, 1) == [out]
    # the commands reach the guest in a file: on the kernel's command line
    # (2048 bytes) three runs' commands made the kernel panic at boot
    assert (out / vm.SCRIPT_FILE).read_text().count(" -m fdsend_conformance run ") == 2


def test_boot_kills_a_guest_that_outlives_its_timeout_with_its_children(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    # The child stands in for QEMU: it blocks on a pipe nobody writes to.
    fifo = tmp_path / "never"
    os.mkfifo(fifo)
    hang = f"#!/bin/sh\ncat {fifo} &\necho $! > {pid_file}\nwait\n"
    vng = _fake_vng(tmp_path, hang)
    result = vm.boot(vng, vm.VmSetup(Path("vmlinuz"), tmp_path / "out"), [], timeout=10)
    assert not result.ran
    assert _ends_within(int(pid_file.read_text()), seconds=10)


def _ends_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` (not our child) has ended or ends within ``seconds``.

    A killed process ends a moment after the signal: its pidfd turns
    readable then, so this watches for that instead of sampling its state.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True  # already gone
    try:
        readable, _, _ = select.select([pidfd], [], [], seconds)
    finally:
        os.close(pidfd)
    return bool(readable)


def test_a_previous_runs_outputs_are_not_taken_for_this_ones(tmp_path: Path):
    vng = _fake_vng(tmp_path, "#!/bin/sh\nexit 1\n")  # a guest that never ran the script
    out = tmp_path / "out"
    out.mkdir()
    (out / vm.STATUS_FILE).write_text("0\n")
    (out / vm.REPORT_FILE).write_text("{}")
    result = vm.boot(vng, vm.VmSetup(Path("vmlinuz"), out), [], timeout=60)
    assert not result.ran
    assert result.report is None


def test_missing_tools_are_named_with_how_to_get_them(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(vm, "find_vng", lambda: None)
    image = Path(__file__)  # any file stands for the image here
    assert vm.main([str(image)]) == 2
    err = capsys.readouterr().err
    assert "pip install virtme-ng" in err
    assert "apt-get install qemu-system-x86" in err


def test_a_missing_image_is_a_usage_error(tmp_path: Path, capsys):
    assert vm.main([str(tmp_path / "vmlinuz-none")]) == 2
    assert "no kernel image" in capsys.readouterr().err


CI_STEP = Path(__file__).parents[2] / "ci" / "kernel-vm.sh"


def _ci_step(tmp_path: Path, fakes: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """ci/kernel-vm.sh on a PATH of the shell's basics and ``fakes`` (name: script)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "uname", "id"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    for name, script in fakes.items():
        (bin_dir / name).unlink(missing_ok=True)
        (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / name).chmod(0o755)
    return subprocess.run(
        [shutil.which("bash") or "/bin/bash", str(CI_STEP), str(tmp_path / "venv")],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ci_step_without_apt_says_why_and_goes_on(tmp_path: Path):
    done = _ci_step(tmp_path, {})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("kernel VM step skipped: "), done.stdout
    assert "apt-get" in done.stdout or "x86_64" in done.stdout


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the step skips other machines")
def test_ci_step_fails_where_apt_could_install_qemu_but_did_not(tmp_path: Path):
    done = _ci_step(tmp_path, {"apt-get": "exit 100", "id": "echo 0"})
    assert done.returncode == 1, done.stdout
    assert "kernel VM step FAILED: apt-get update failed" in done.stdout


@pytest.mark.skipif(not os.environ.get("FDSEND_VM_KERNEL"), reason="set FDSEND_VM_KERNEL to boot")
def test_a_real_guest_runs_the_checks_and_brings_the_report_back(tmp_path: Path):
    kernel = os.environ["FDSEND_VM_KERNEL"]
    if vm.missing_tools():
        pytest.skip(f"missing {'; '.join(vm.missing_tools())}")
    status = vm.main([kernel, "--out", str(tmp_path), *TINY_RUN])
    assert status == 0, (tmp_path / vm.CONSOLE_FILE).read_text()[-2000:]
    [report] = tmp_path.glob("kernel-*.json")
    assert report.name != f"kernel-{platform.release()}.json"  # the guest's kernel, not ours


def test_the_host_collects_the_guests_tests_first_writing_their_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The guest's root is read-only: what it imports must be compiled on the host."""
    package = tmp_path / "warmed"
    package.mkdir()
    (package / "module.py").write_text("VALUE = 1\n")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as on the machine this was written on
    # Stands in for a guest command: imports the module, as a collection would.
    importing = [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import module"]
    assert vm.warm_up([*importing, str(package)])
    assert [p.name.split(".")[0] for p in (package / "__pycache__").iterdir()] == ["module"]
    assert not vm.warm_up([sys.executable, "-c", "raise SystemExit(3)"])
