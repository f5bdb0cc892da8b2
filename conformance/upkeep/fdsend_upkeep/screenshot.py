"""A screenshot of an HTML report in headless Chromium (repository upkeep: docs/report.png).

::

    PYTHONPATH=conformance/upkeep python -m fdsend_upkeep.screenshot REPORT.html PNG

renders the page written by ``--html REPORT.html`` as Chromium shows it and
writes a PNG of its top, reduced to a small palette so that the file stays
small. The tests use :func:`screenshot` to check the page in a real browser.
Chromium is Debian's ``chromium`` package (``apt-get install chromium``);
each run gets a new profile folder and no network.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["CHROMIUM_FLAGS", "chromium", "main", "screenshot"]

#: Headless, no sandbox (CI runs as root), nothing fetched, nothing kept.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
#: Seconds a screenshot may take (measured: 3 s on a loaded 2-CPU machine).
SCREENSHOT_TIMEOUT = 120


def chromium() -> str | None:
    """The Chromium executable on PATH, if there is one."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: Path, png: Path, width: int = 1100, height: int = 1300) -> None:
    """Write Chromium's rendering of ``page`` (its top ``width`` x ``height`` pixels) to ``png``.

    Raises FileNotFoundError without Chromium, CalledProcessError when it
    fails, TimeoutExpired when it takes longer than SCREENSHOT_TIMEOUT.
    """
    executable = chromium()
    if executable is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="fdsend-chromium-") as profile:
        log_path = Path(profile, "chromium.log")
        command = [
            executable,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png.resolve()}",
            page.resolve().as_uri(),
        ]
        # Its own session, its output in a file: helpers Chromium leaves behind
        # (the crash handler) would hold a pipe open; they are ended with it.
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                status = process.wait(timeout=SCREENSHOT_TIMEOUT)
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if status != 0 or not png.exists():
            output = log_path.read_text(errors="replace")
            raise subprocess.CalledProcessError(status, command, output=output)


def main(argv: Sequence[str] | None = None) -> int:
    """Screenshot an HTML report into a small PNG (a 64-colour palette)."""
    parser = argparse.ArgumentParser(
        prog="python -m fdsend_upkeep.screenshot",
        description="Screenshot an HTML conformance report for the README.",
    )
    parser.add_argument("page", type=Path, help="what --html PATH wrote")
    parser.add_argument("png", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1100)
    parser.add_argument("--height", type=int, default=1300)
    options = parser.parse_args(argv)
    from PIL import Image  # from matplotlib's dependencies ([plot])

    with tempfile.TemporaryDirectory(prefix="fdsend-screenshot-") as folder:
        raw = Path(folder, "raw.png")
        screenshot(options.page, raw, options.width, options.height)
        with Image.open(raw) as image:
            image.convert("RGB").quantize(64).save(options.png, optimize=True)
    print(f"{options.png}: {options.png.stat().st_size} bytes")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
