"""Drivers kept in a folder (``conformance/drivers/NAME/``), built on demand and cached.

``--backend driver:PATH``, where PATH is a folder with a ``build.sh``, runs
``bash build.sh OUTDIR`` once per version of the folder's files and then
runs ``OUTDIR/driver``. The build is cached under
:func:`cache_dir` (``$FDSEND_DRIVER_CACHE``, else
``$XDG_CACHE_HOME/fdsend-conformance/drivers``), keyed by the folder's name
and a hash of its files and of the shared ``_*`` folders beside it, so every
xdist worker and every later run finds it built; a lock makes concurrent
loads build it once. The backend is named after the folder, and its
expected-failure file is the folder's ``expected.txt``.

As a command, it builds and says how long that took (what ci/drivers.sh
times)::

    python -m fdsend_conformance.driver.named build conformance/drivers/go-xsys

exiting 77, with build.sh's reason, where a build tool is missing.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from fdsend_conformance.harness.timeouts import DRIVER_BUILD_TIMEOUT

__all__ = ["MISSING_TOOL", "BuildError", "Built", "build", "cache_dir", "is_driver_folder"]

#: build.sh's exit status when a build tool or library is not installed.
MISSING_TOOL = 77


class BuildError(Exception):
    """A driver folder did not build; ``missing_tool`` when build.sh exited 77."""

    def __init__(self, message: str, missing_tool: bool) -> None:
        super().__init__(message)
        self.missing_tool = missing_tool


@dataclass(frozen=True)
class Built:
    """A built driver: its name, the executable, its expected file, the build's seconds."""

    name: str
    executable: Path
    expected: Path | None
    seconds: float  # 0 when found in the cache


def is_driver_folder(path: str) -> bool:
    """Whether ``path`` is a driver's folder (it holds a build.sh)."""
    return Path(path, "build.sh").is_file()


def cache_dir() -> Path:
    """Where built drivers are kept."""
    explicit = os.environ.get("FDSEND_DRIVER_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fdsend-conformance" / "drivers"


def _digest(folder: Path) -> str:
    """A hash of every file (names and contents) in ``folder`` and its shared ``_*`` siblings.

    A sibling folder whose name starts with ``_`` (``_protocol-c``, ``_protocol-go``) is
    code that build.sh compiles in from ``..``: a change there builds the driver anew.
    """
    shared = sorted(p for p in folder.parent.glob("_*") if p.is_dir())
    digest = hashlib.sha256()
    for root in [folder, *shared]:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            digest.update(path.relative_to(folder.parent).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(folder: str | Path) -> Built:
    """Build the driver in ``folder`` (or find it built); raise :class:`BuildError`."""
    source = Path(folder).resolve()
    name = source.name
    out = cache_dir() / f"{name}-{_digest(source)}"
    executable = out / "driver"
    expected = source / "expected.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; the rest find it built
        if os.access(executable, os.X_OK):
            return Built(name, executable, expected if expected.is_file() else None, 0.0)
        out.mkdir(exist_ok=True)
        started = time.monotonic()
        try:
            done = subprocess.run(
                ["bash", str(source / "build.sh"), str(out)],
                capture_output=True,
                text=True,
                timeout=DRIVER_BUILD_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BuildError(
                f"{name}: build.sh did not finish in {DRIVER_BUILD_TIMEOUT:g} s", False
            ) from None
        seconds = time.monotonic() - started
        if done.returncode != 0 or not os.access(executable, os.X_OK):
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            missing = done.returncode == MISSING_TOOL
            reason = "a build tool is missing" if missing else f"exit status {done.returncode}"
            raise BuildError(f"{name}: build.sh failed ({reason}): {' | '.join(tail)}", missing)
    return Built(name, executable, expected if expected.is_file() else None, seconds)


def main(argv: Sequence[str] | None = None) -> int:
    """``build FOLDER``: build a driver, print its executable and the build's time."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] != "build":
        print("usage: python -m fdsend_conformance.driver.named build FOLDER", file=sys.stderr)
        return 2
    try:
        built = build(args[1])
    except BuildError as exc:
        print(str(exc), file=sys.stderr)
        return MISSING_TOOL if exc.missing_tool else 1
    when = f"built in {built.seconds:.1f} s" if built.seconds else "already built (cached)"
    print(f"{built.name}: {built.executable} ({when})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
