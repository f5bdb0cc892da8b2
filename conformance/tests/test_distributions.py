"""The two distributions as a user gets them: built, checked, installed into fresh venvs.

``fdsend`` (reference/) must install alone and import without any test
framework; ``fdsend-conformance`` (conformance/) must carry its data files
as real files and run its suite from the installed wheel with short names.
Building and installing take some seconds, so these tests are marked
``distributions`` (``-m "not distributions"`` leaves them out).
"""

from __future__ import annotations

import email.parser
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import fdsend
import fdsend_conformance

# Builds and pip installs: minutes on a loaded machine, not the default 60 s.
pytestmark = [pytest.mark.distributions, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
SOURCES = {"fdsend": REPO / "reference", "fdsend_conformance": REPO / "conformance"}
TEST_FRAMEWORKS = ("pytest", "_pytest", "hypothesis", "xdist", "pluggy", "fdsend_conformance")


def run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Both distributions built the way a release is: sdist, then the wheel from it.

    Returns the files by name: ``fdsend.whl``, ``fdsend.tar.gz``, and the
    same for ``fdsend_conformance``.
    """
    pytest.importorskip("build", reason="needs the build package (requirements-dev.txt)")
    out = tmp_path_factory.mktemp("dist")
    for source in SOURCES.values():
        run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, source)
    found = {}
    for name in SOURCES:
        [wheel] = out.glob(f"{name}-*.whl")
        [sdist] = out.glob(f"{name}-*.tar.gz")
        found[f"{name}.whl"], found[f"{name}.tar.gz"] = wheel, sdist
    return found


def fresh_venv(path: Path) -> Path:
    """A venv without pip (this interpreter's pip installs into it); its python."""
    run(sys.executable, "-m", "venv", "--without-pip", path)
    return path / "bin" / "python"


def pip(python: Path, *args: str | Path) -> str:
    return run(sys.executable, "-m", "pip", "--python", python, *args)


def installed(python: Path) -> set[str]:
    """The distributions in a venv, by name (``pip freeze --all``)."""
    lines = pip(python, "freeze", "--all").splitlines()
    return {line.split("==")[0].split(" @ ")[0].lower() for line in lines if line}


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


@pytest.fixture(scope="module")
def reference_venv(
    dists: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, set[str], set[str]]:
    """A fresh venv with the fdsend wheel installed: (python, before, after).

    With ``--no-index`` and dependencies resolved: a dependency fdsend
    declared would fail the install, and would show in ``after``.
    """
    python = fresh_venv(tmp_path_factory.mktemp("reference") / ".venv")
    before = installed(python)
    pip(python, "install", "-q", "--no-index", dists["fdsend.whl"])
    return python, before, installed(python)


def test_installing_fdsend_brings_nothing_else(reference_venv):
    _, before, after = reference_venv
    assert after - before == {"fdsend"}


def test_importing_fdsend_imports_no_test_framework(reference_venv):
    python, _, _ = reference_venv
    script = (
        "import sys, fdsend; "
        f"print(fdsend.__file__); print(*sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{TEST_FRAMEWORKS!r}))"
    )
    where, loaded = run(python, "-c", script).splitlines()
    assert "site-packages" in where  # the wheel's copy, not this checkout's
    assert loaded == ""


def test_fdsend_wheel_declares_no_dependency_and_no_entry_point(dists):
    meta = metadata(dists["fdsend.whl"])
    assert meta["Name"] == "fdsend"
    assert meta["Version"] == fdsend.__version__
    assert meta.get_all("Requires-Dist") is None
    assert meta["License-Expression"] == "MIT"
    with zipfile.ZipFile(dists["fdsend.whl"]) as archive:
        names = archive.namelist()
    assert not [n for n in names if n.endswith("entry_points.txt")]
    assert {n.split("/")[0] for n in names if not n.startswith("fdsend-")} == {"fdsend"}
    assert "fdsend/py.typed" in names


def test_conformance_wheel_depends_on_fdsend_and_registers_the_plugin(dists):
    meta = metadata(dists["fdsend_conformance.whl"])
    assert meta["Name"] == "fdsend-conformance"
    assert meta["Version"] == fdsend_conformance.__version__
    requires = meta.get_all("Requires-Dist") or []
    plain = {r.split(";")[0].split(">")[0].strip() for r in requires if "extra ==" not in r}
    # anyio: the ASYNC clauses are written with it (they run on asyncio, uvloop and Trio)
    assert plain == {"fdsend", "pytest", "pytest-xdist", "pytest-timeout", "hypothesis", "anyio"}
    assert set(meta.get_all("Provides-Extra") or []) == {
        "anyio",
        "twisted",
        "plot",
        "uvloop",
        "vm",
        "scgi",
    }
    with zipfile.ZipFile(dists["fdsend_conformance.whl"]) as archive:
        [entry_points] = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "fdsend_conformance = fdsend_conformance.plumbing.plugin" in text
    assert "fdsend-conformance = fdsend_conformance.tools.cli:main" in text
    assert "reference = fdsend_conformance.adapters.reference" in text


def data_files() -> list[str]:
    """The conformance package's files other than Python modules, as in the checkout."""
    package = SOURCES["fdsend_conformance"] / "fdsend_conformance"
    return sorted(
        p.relative_to(package.parent).as_posix()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc")
    )


def test_both_archives_of_the_suite_hold_its_data_as_real_files(dists):
    expected = data_files()
    assert "fdsend_conformance/CONTRACT.md" in expected
    assert "fdsend_conformance/expected/stdlib.txt" in expected
    assert "fdsend_conformance/report.schema.json" in expected
    with zipfile.ZipFile(dists["fdsend_conformance.whl"]) as archive:
        in_wheel = {info.filename: info for info in archive.infolist()}
    for name in expected:
        assert name in in_wheel, name
        source = SOURCES["fdsend_conformance"] / name
        assert in_wheel[name].file_size == source.stat().st_size, name
    with tarfile.open(dists["fdsend_conformance.tar.gz"]) as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name}
    for name in expected:
        assert members[name].isfile(), name
    assert not [name for name, m in members.items() if m.issym() or m.islnk()]


@pytest.mark.parametrize("name", list(SOURCES))
def test_each_distribution_ships_the_licence(dists, name):
    licence = (REPO / "LICENSE").read_bytes()
    assert b"MIT License" in licence
    assert (SOURCES[name] / "LICENSE").read_bytes() == licence  # the copy beside pyproject.toml
    with zipfile.ZipFile(dists[f"{name}.whl"]) as archive:
        [path] = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(path) == licence
    with tarfile.open(dists[f"{name}.tar.gz"]) as archive:
        [member] = [m for m in archive.getmembers() if m.name.endswith("/LICENSE")]
        assert member.isfile()


def test_twine_check_passes(dists):
    pytest.importorskip("twine", reason="needs twine (requirements-dev.txt)")
    out = run(sys.executable, "-m", "twine", "check", "--strict", *dists.values())
    assert out.count("PASSED") == len(dists)


def test_installed_suite_runs_with_short_names_and_its_own_config(dists, tmp_path):
    # The quickstart's shape: the venv inside the folder the suite runs from.
    python = fresh_venv(tmp_path / ".venv")
    wheels = [dists["fdsend.whl"], dists["fdsend_conformance.whl"]]
    pip(python, "install", "-q", *wheels)
    assert installed(python) >= {"fdsend", "fdsend-conformance", "pytest", "hypothesis"}
    cli = tmp_path / ".venv" / "bin" / "fdsend-conformance"
    out = run(cli, "--backend", "reference", "-k", "test_errors", cwd=tmp_path)
    progress = [line for line in out.splitlines() if line.endswith("%]")]
    assert progress
    assert all(line.startswith("fdsend_conformance/suite/test_errors.py ") for line in progress)
    [configfile] = [line for line in out.splitlines() if line.startswith("configfile: ")]
    assert configfile.endswith("/fdsend_conformance/suite.ini")
    assert "dev/null" not in out
    assert "fdsend conformance report" in out
    # Plain pytest there: its walk of the folder skips .venv, the suite comes anyway.
    pytest_script = tmp_path / ".venv" / "bin" / "pytest"
    plain = run(pytest_script, "--backend=reference", "-k", "test_errors", cwd=tmp_path)
    progress = [line for line in plain.splitlines() if line.endswith("%]")]
    assert progress
    assert all(line.startswith("fdsend_conformance/suite/test_errors.py ") for line in progress)
    assert "fdsend conformance report" in plain
    # the suite, and nothing else the venv holds
    assert collected(plain) == collected(out)


def collected(output: str) -> str:
    [line] = [line for line in output.splitlines() if line.startswith("collected ")]
    return line


@pytest.mark.parametrize("module", [fdsend, fdsend_conformance], ids=lambda m: m.__name__)
def test_each_changelog_opens_with_the_version_being_built(module):
    changelog = SOURCES[module.__name__] / "CHANGELOG.md"
    [latest, *_] = [line for line in changelog.read_text().splitlines() if line.startswith("## ")]
    assert latest == f"## {module.__version__}"
