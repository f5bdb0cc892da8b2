"""The downstream CI gate, run the way the shipped CI files run it, against
an example backend package installed from a temporary directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GITLAB = REPO / "ci" / "gitlab" / "fdsend-conformance.yml"
GITHUB = REPO / ".github" / "workflows" / "fdsend-conformance.yml"

EXAMPLE = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "example-fdpass"
        version = "0.1"

        [project.entry-points."fdsend.backends"]
        example-good = "example_fdpass.good"
        example-broken = "example_fdpass.broken"
        example-inheritable = "example_fdpass.inheritable"
    """,
    "example_fdpass/__init__.py": '"""Example fd-passing backends for the gate test."""\n',
    "example_fdpass/good.py": """
        from fdsend import recvfds, sendfds

        name = "example-good"
        version = "0.1"
    """,
    "example_fdpass/broken.py": """
        import fdsend

        name = "example-broken"
        version = "0.1"
        recvfds = fdsend.recvfds


        def sendfds(sock, msg, flags=0, fds=None):
            fds = list(fds or [])[:1]  # loses every fd but the first, silently
            return fdsend.sendfds(sock, msg, flags, fds)
    """,
    "example_fdpass/inheritable.py": """
        import fdsend

        name = "example-inheritable"
        version = "0.1"
        sendfds = fdsend.sendfds


        def recvfds(sock, len, flags=0, numfds=64):
            # breaks only a SHOULD clause (OWN-2: received fds are close-on-exec)
            return fdsend.recvfds(sock, len, flags, numfds, cloexec=False)
    """,
}


@pytest.fixture(scope="module")
def example_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example package installed (with its entry points) into a target dir."""
    source = tmp_path_factory.mktemp("example-src")
    for name, text in EXAMPLE.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    site = tmp_path_factory.mktemp("example-site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    return site


def _gitlab_gate_command() -> str:
    script = yaml.safe_load(GITLAB.read_text())[".fdsend-conformance"]["script"]
    [command] = [line for line in script if "fdsend-conformance gate" in line]
    return str(command)


#: pytest-timeout budget of a test that runs the whole suite through the gate
#: up to three times: each run may take its subprocess timeout (300 s); the
#: default 60 s was measured too short on a loaded 2-core machine (one run
#: of the 325-test suite: 34 s at load average 9).
GATE_TIMEOUT = 900


def run_gate(
    example_site: Path, workdir: Path, **variables: str
) -> subprocess.CompletedProcess[str]:
    """Run the GitLab snippet's gate command through sh, as GitLab would."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(example_site), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env.update({"FDSEND_EXPECTED": "", "FDSEND_STRICT": "", **variables})
    return subprocess.run(
        ["sh", "-c", _gitlab_gate_command()],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.timeout(GATE_TIMEOUT)
def test_gate_passes_a_conforming_backend_and_writes_both_reports(example_site, tmp_path):
    result = run_gate(example_site, tmp_path, FDSEND_BACKEND="example-good")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "fdsend-conformance.json").read_text())
    assert report["backend"]["name"] == "example-good"
    assert report["conforming"] is True
    suite = ElementTree.parse(tmp_path / "fdsend-conformance.xml").getroot().find("testsuite")
    assert suite is not None
    assert int(suite.get("tests", "0")) > 50


@pytest.mark.timeout(GATE_TIMEOUT)
def test_gate_fails_a_backend_that_drops_fds(example_site, tmp_path):
    result = run_gate(example_site, tmp_path, FDSEND_BACKEND="example-broken")
    assert result.returncode == 1, result.stdout[-3000:]
    report = json.loads((tmp_path / "fdsend-conformance.json").read_text())
    statuses = {c["id"]: c["status"] for c in report["clauses"]}
    assert statuses["XFER-1"] == "FAIL"
    assert report["conforming"] is False


@pytest.mark.timeout(GATE_TIMEOUT)
def test_gate_with_an_expected_file_documents_the_deviation(example_site, tmp_path):
    run_gate(example_site, tmp_path, FDSEND_BACKEND="example-broken")
    first = json.loads((tmp_path / "fdsend-conformance.json").read_text())
    failing = [c["id"] for c in first["clauses"] if c["status"] in ("FAIL", "NON-STRICT")]
    assert "XFER-1" in failing
    expected = tmp_path / "expected.txt"
    expected.write_text("".join(f"{cid}  sends only the first fd\n" for cid in failing))
    result = run_gate(
        example_site, tmp_path, FDSEND_BACKEND="example-broken", FDSEND_EXPECTED=str(expected)
    )
    assert result.returncode == 0, result.stdout[-3000:]
    report = json.loads((tmp_path / "fdsend-conformance.json").read_text())
    documented = {c["id"]: c["expected"] for c in report["clauses"] if c["id"] in failing}
    assert documented == dict.fromkeys(failing, True)


@pytest.mark.timeout(GATE_TIMEOUT)
def test_gate_strict_fails_on_a_should_clause(example_site, tmp_path):
    good = run_gate(example_site, tmp_path, FDSEND_BACKEND="example-good", FDSEND_STRICT="1")
    assert good.returncode == 0
    report = json.loads((tmp_path / "fdsend-conformance.json").read_text())
    assert report["level"] == "strict"
    # Inheritable received fds break a SHOULD clause only: core passes, strict fails.
    core = run_gate(example_site, tmp_path, FDSEND_BACKEND="example-inheritable")
    assert core.returncode == 0, core.stdout + core.stderr
    report = json.loads((tmp_path / "fdsend-conformance.json").read_text())
    assert _status(report, "OWN-2") == "NON-STRICT"
    assert report["conforming"] is True
    strict = run_gate(
        example_site, tmp_path, FDSEND_BACKEND="example-inheritable", FDSEND_STRICT="1"
    )
    assert strict.returncode == 1, strict.stdout + strict.stderr
    report = json.loads((tmp_path / "fdsend-conformance.json").read_text())
    assert _status(report, "OWN-2") == "FAIL"  # a SHOULD clause failing a strict run
    assert report["conforming"] is False


def _status(report: dict[str, Any], clause: str) -> str:
    [status] = [c["status"] for c in report["clauses"] if c["id"] == clause]
    return str(status)


def test_ci_github_is_the_reusable_workflow_itself():
    # GitHub runs reusable workflows only from .github/workflows/.
    assert (REPO / "ci" / "github" / "fdsend-conformance.yml").resolve() == GITHUB.resolve()


SOURCE = "git+https://example.org/fdsend@main"
BOTH = [
    f"fdsend @ {SOURCE}#subdirectory=reference",
    f"fdsend-conformance @ {SOURCE}#subdirectory=conformance",
]


def _install_line(lines: list[str]) -> str:
    [install] = [line for line in lines if "pip install" in line and "fdsend" in line]
    return install


def _echo_install(install: str, source: str) -> subprocess.CompletedProcess[str]:
    """The install line run through sh with pip replaced by one line per argument."""
    return subprocess.run(
        ["sh", "-c", install.replace("python -m pip install", "printf '%s\\n'")],
        env={**os.environ, "FDSEND_SOURCE": source},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_both_ci_files_install_both_distributions_from_the_source():
    # Neither is on PyPI: the caller says where the repository is, and both
    # distributions come from its folders (fdsend first, so that the project
    # under test, installed after it, finds it).
    workflow = yaml.safe_load(GITHUB.read_text())
    trigger = workflow.get("on", workflow.get(True))
    assert trigger["workflow_call"]["inputs"]["fdsend-source"]["required"] is True
    steps = workflow["jobs"]["conformance"]["steps"]
    [step] = [step for step in steps if step.get("name") == "Install"]
    assert step["env"]["FDSEND_SOURCE"] == "${{ inputs.fdsend-source }}"
    lines = step["run"].splitlines()
    github = _echo_install(_install_line(lines), SOURCE)
    assert github.stdout.splitlines() == BOTH
    assert lines.index(_install_line(lines)) < lines.index("${{ inputs.install }}")
    script = yaml.safe_load(GITLAB.read_text())[".fdsend-conformance"]["script"]
    gitlab = _echo_install(_install_line(script), SOURCE)
    assert gitlab.stdout.splitlines() == BOTH
    assert script.index(_install_line(script)) < script.index('sh -c "$FDSEND_INSTALL"')
    missing = _echo_install(_install_line(script), "")
    assert missing.returncode != 0
    assert "set FDSEND_SOURCE" in missing.stderr


def test_github_workflow_is_reusable_and_calls_the_gate():
    workflow = yaml.safe_load(GITHUB.read_text())
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads `on` as true
    inputs = trigger["workflow_call"]["inputs"]
    assert {"backend", "install", "python-version", "strict", "expected"} <= set(inputs)
    steps = workflow["jobs"]["conformance"]["steps"]
    [gate] = [step["run"] for step in steps if "fdsend-conformance gate" in step.get("run", "")]
    for option in (
        "--backend",
        "--level strict",
        "--expected",
        "--junit-xml",
        "--conformance-report",
    ):
        assert option in gate
    help_text = subprocess.run(
        [sys.executable, "-m", "fdsend_conformance", "gate", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for option in ("--backend", "--level", "--expected", "--junit-xml", "--conformance-report"):
        assert option in help_text
