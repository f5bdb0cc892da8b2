"""Debian's kernel images, downloaded and unpacked, never installed.

``debian:6.1`` names the newest generic amd64 image of the 6.1 series that
apt offers (``linux-image-6.1.0-NN-amd64``), ``debian:6.12`` the newest
6.12 (``linux-image-6.12.NN+deb12-amd64``); ``debian:linux-image-...`` one
package by name. :func:`fetch` runs ``apt-get download`` and ``dpkg -x``
into ``CACHE/PACKAGE/root`` and ``depmod -b`` over the unpacked modules, so
virtme-ng can load 9p and virtio from them; it returns the ``vmlinuz``.
The ``-cloud-`` images lack 9p, the ``-rt-`` ones are another kernel: both
are left out. CACHE is ``$FDSEND_KERNELS`` or ``~/.cache/fdsend/kernels``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterable
from pathlib import Path

__all__ = ["DEBIAN_PREFIX", "FetchError", "cache_dir", "fetch", "newest_package", "unpack"]

DEBIAN_PREFIX = "debian:"
#: Image flavours that are not the generic kernel of a series.
_OTHER_FLAVOURS = ("-cloud-", "-rt-", "-dbg", "-unsigned")


class FetchError(Exception):
    """A kernel could not be named, downloaded or unpacked (the message says why)."""


def cache_dir() -> Path:
    """Where fetched kernels are unpacked."""
    configured = os.environ.get("FDSEND_KERNELS")
    return Path(configured) if configured else Path.home() / ".cache" / "fdsend" / "kernels"


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def newest_package(series: str, names: Iterable[str]) -> str | None:
    """The newest generic amd64 image package of ``series`` ("6.1") among ``names``."""
    pattern = re.compile(rf"linux-image-{re.escape(series)}[.-][0-9][0-9.+a-z~-]*-amd64")
    found = [
        name
        for name in names
        if pattern.fullmatch(name) and not any(flavour in name for flavour in _OTHER_FLAVOURS)
    ]
    return max(found, key=_version_key, default=None)


def _run(command: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
        )
    except FileNotFoundError as exc:
        raise FetchError(f"{command[0]} not found (Debian's apt and dpkg are needed)") from exc
    if done.returncode != 0:
        raise FetchError(f"{shlex.join(command)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def resolve(spec: str) -> str:
    """The package ``debian:SERIES`` or ``debian:PACKAGE`` names."""
    wanted = spec.removeprefix(DEBIAN_PREFIX)
    if wanted.startswith("linux-image-"):
        return wanted
    listing = _run(["apt-cache", "search", "--names-only", f"^linux-image-{re.escape(wanted)}"])
    names = [line.split(" ", 1)[0] for line in listing.splitlines()]
    package = newest_package(wanted, names)
    if package is None:
        raise FetchError(
            f"apt offers no generic amd64 image of Linux {wanted} "
            "(run apt-get update first; apt-cache search linux-image- lists them)"
        )
    return package


def unpack(deb: Path, root: Path) -> Path:
    """``dpkg -x`` ``deb`` into ``root``, ``depmod`` its modules; the ``vmlinuz``."""
    _run(["dpkg", "-x", str(deb), str(root)])
    images = sorted((root / "boot").glob("vmlinuz-*"))
    if not images:
        raise FetchError(f"{deb.name} holds no boot/vmlinuz-*")
    image = images[0]
    release = image.name.removeprefix("vmlinuz-")
    _run(["depmod", "-b", str(root), release])
    return image


def fetch(spec: str, cache: Path | None = None) -> Path:
    """Download and unpack the kernel ``spec`` names (once); its ``vmlinuz``."""
    package = resolve(spec)
    folder = (cache or cache_dir()) / package
    images = sorted((folder / "root" / "boot").glob("vmlinuz-*"))
    if images:
        return images[0]
    folder.mkdir(parents=True, exist_ok=True)
    _run(["apt-get", "download", package], cwd=folder)
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if not debs:
        raise FetchError(f"apt-get download {package} left no .deb in {folder}")
    image = unpack(debs[-1], folder / "root")
    debs[-1].unlink()  # the unpacked tree is what is kept
    return image
