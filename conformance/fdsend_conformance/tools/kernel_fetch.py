"""Debian's kernel images, downloaded and unpacked, never installed.

A kernel is named ``debian:SUITE/VERSION`` (``debian:trixie-backports/7.2.6``,
``debian:bookworm/6.1.170``), ``debian:SUITE`` (the suite's newest image),
``debian:RELEASE`` (``debian:7.2.6+deb13-amd64``, ``debian:6.1.0-57-amd64``),
``debian:SERIES`` (``debian:6.1``: the newest image of the series in any
suite) or ``debian:linux-image-...`` (one package). Only the generic amd64
images count: the ``-cloud-`` ones lack 9p, the ``-rt-`` ones are another
kernel.

apt runs with a private configuration per suite (:class:`Apt`: its own
sources list, lists and package cache under ``CACHE/apt/SUITE``), never with
the machine's sources. :func:`fetch` downloads the image package and, for the
split images of Linux 6.19 and later (``linux-image-R`` is empty and depends
on ``linux-binary-R``, with ``usr/lib/modules/R/vmlinuz``, and on
``linux-modules-R`` and ``linux-base-R``), the packages it depends on;
``dpkg -x`` unpacks them into ``CACHE/PACKAGE/root``, where ``depmod -b``
indexes the modules so that virtme-ng can load 9p and virtio from them.
:func:`changelog` brings a version's ``changelog.Debian.gz`` (the linux
source's, from ``linux-libc-dev`` or ``linux-base-R``). CACHE is
``$FDSEND_KERNELS`` or ``~/.cache/fdsend/kernels``; the mirror is
``$FDSEND_DEBIAN_MIRROR`` or http://deb.debian.org.

::

    python -m fdsend_conformance.tools.kernel_fetch list [SUITE ...]
    python -m fdsend_conformance.tools.kernel_fetch fetch KERNEL
    python -m fdsend_conformance.tools.kernel_fetch changelog KERNEL [--out FILE]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEBIAN_PREFIX",
    "SUITES",
    "Apt",
    "FetchError",
    "Image",
    "cache_dir",
    "changelog",
    "fetch",
    "guest_tree",
    "images",
    "main",
    "newest_package",
    "resolve",
    "unpack",
    "upstream_version",
]

DEBIAN_PREFIX = "debian:"
#: The suites searched, each with the archive folders and distributions it
#: reads from the mirror (a release's security and updates suites with it).
SUITES: dict[str, tuple[tuple[str, str], ...]] = {
    "bullseye": (
        ("debian", "bullseye"),
        ("debian", "bullseye-updates"),
        ("debian-security", "bullseye-security"),
    ),
    "bookworm": (
        ("debian", "bookworm"),
        ("debian", "bookworm-updates"),
        ("debian-security", "bookworm-security"),
    ),
    "bookworm-backports": (("debian", "bookworm-backports"),),
    "trixie": (
        ("debian", "trixie"),
        ("debian", "trixie-updates"),
        ("debian-security", "trixie-security"),
    ),
    "trixie-backports": (("debian", "trixie-backports"),),
    "sid": (("debian", "sid"),),
    "experimental": (("debian", "experimental"),),
}
#: The keyring Debian's Release files are checked against.
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
#: Image flavours that are not the generic kernel of a series.
_OTHER_FLAVOURS = ("-cloud-", "-rt-", "-dbg", "-unsigned")
_IMAGE = re.compile(r"linux-image-([0-9][0-9.+a-z~-]*-amd64)")
#: The packages a split image depends on, besides itself ("linux-binary-R"):
#: the first two hold the kernel and its modules; linux-base-R (System.map,
#: config) is taken where the mirror still offers it.
_PARTS = ("linux-binary-", "linux-modules-", "linux-base-")


class FetchError(Exception):
    """A kernel could not be named, downloaded or unpacked (the message says why)."""


def cache_dir() -> Path:
    """Where fetched kernels are unpacked, as an absolute path.

    Absolute because apt reads a relative ``Dir::`` setting as relative to
    ``/``, not to the current folder: a relative FDSEND_KERNELS made every
    suite's package lists empty.
    """
    configured = os.environ.get("FDSEND_KERNELS")
    return (
        Path(configured).absolute() if configured else Path.home() / ".cache" / "fdsend" / "kernels"
    )


def mirror() -> str:
    """The Debian mirror's base URL (no trailing slash)."""
    return os.environ.get("FDSEND_DEBIAN_MIRROR", "http://deb.debian.org").rstrip("/")


def upstream_version(debian_version: str) -> str:
    """Linux's version of a Debian package's: "6.12.63-1" is 6.12.63, "7.3~rc7-1~exp1" 7.3-rc7."""
    return debian_version.rsplit("-", 1)[0].replace("~", "-")


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


def _generic(package: str) -> bool:
    return bool(_IMAGE.fullmatch(package)) and not any(f in package for f in _OTHER_FLAVOURS)


def newest_package(series: str, names: Iterable[str]) -> str | None:
    """The newest generic amd64 image package of ``series`` ("6.1") among ``names``."""
    pattern = re.compile(rf"linux-image-{re.escape(series)}[.-][0-9][0-9.+a-z~-]*-amd64")
    found = [name for name in names if pattern.fullmatch(name) and _generic(name)]
    return max(found, key=_version_key, default=None)


def _run(command: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=900, check=False
        )
    except FileNotFoundError as exc:
        raise FetchError(f"{command[0]} not found (Debian's apt and dpkg are needed)") from exc
    if done.returncode != 0:
        raise FetchError(f"{shlex.join(command)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


@dataclass(frozen=True)
class Image:
    """One generic amd64 image package of one suite."""

    suite: str
    package: str
    #: Debian's version of the package ("7.2.6-1~bpo13+1").
    version: str

    @property
    def release(self) -> str:
        """What ``uname -r`` says on it ("7.2.6+deb13-amd64")."""
        return self.package.removeprefix("linux-image-")

    @property
    def upstream(self) -> str:
        """Linux's version ("7.2.6"; "7.3-rc7" for Debian's "7.3~rc7-1~exp1")."""
        return upstream_version(self.version)

    @property
    def spec(self) -> str:
        """The name that fetches exactly this image: ``debian:SUITE/VERSION``."""
        return f"{DEBIAN_PREFIX}{self.suite}/{self.upstream}"


class Apt:
    """apt-get and apt-cache over one suite, with a configuration of their own.

    Everything lives under ``root``: the sources list, the lists, the
    package cache and an empty dpkg status; the machine's sources,
    preferences and status are never read.
    """

    def __init__(self, suite: str, root: Path) -> None:
        if suite not in SUITES:
            raise FetchError(f"unknown suite {suite!r} (known: {', '.join(SUITES)})")
        self.suite = suite
        self.root = root

    def options(self) -> list[str]:
        """The ``-o`` options that point apt at this configuration only."""
        root = self.root
        settings = {
            "Dir::Etc::SourceList": root / "sources.list",
            "Dir::Etc::SourceParts": root / "sources.list.d",
            "Dir::Etc::Preferences": root / "preferences",
            "Dir::Etc::PreferencesParts": root / "preferences.d",
            "Dir::State::Lists": root / "lists",
            "Dir::State::Status": root / "status",
            "Dir::Cache": root / "cache",
            "Acquire::Check-Valid-Until": "false",  # the mirror may be a frozen snapshot
            "Acquire::Languages": "none",
            "APT::Architecture": "amd64",
            "APT::Architectures": "amd64",
            "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
        }
        return [f"-o{key}={value}" for key, value in settings.items() if value != ""]

    def sources(self) -> str:
        """The sources list: the suite's distributions, main only, signed by Debian."""
        return "".join(
            f"deb [arch=amd64 signed-by={KEYRING}] {mirror()}/{archive} {dist} main\n"
            for archive, dist in SUITES[self.suite]
        )

    def update(self, force: bool = False) -> None:
        """``apt-get update`` once (or again with ``force``)."""
        lists = self.root / "lists"
        if not force and any(lists.glob("*_Packages*")):
            return
        for folder in (
            "sources.list.d",
            "preferences.d",
            "lists/partial",
            "cache/archives/partial",
        ):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
        (self.root / "sources.list").write_text(self.sources())
        (self.root / "status").touch()
        self.run("apt-get", "update", "-q")

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        """``tool`` (apt-get, apt-cache) with this configuration and ``args``."""
        return _run([tool, *self.options(), *args], cwd=cwd)

    def images(self) -> list[Image]:
        """The suite's generic amd64 images, oldest first."""
        self.update()
        listing = self.run("apt-cache", "search", "--names-only", "^linux-image-[0-9]")
        generic = [
            line.split(" ", 1)[0]
            for line in listing.splitlines()
            if _generic(line.split(" ", 1)[0]) and "meta-package" not in line
        ]
        if not generic:
            return []
        found = {Image(self.suite, package, version) for package, version in self.madison(*generic)}
        return sorted(self._bootable(found), key=lambda image: _version_key(image.version))

    def _bootable(self, found: set[Image]) -> list[Image]:
        """The images of ``found`` whose kernel and modules the mirror still has.

        A split image needs its ``linux-binary-R`` and ``linux-modules-R``;
        the mirror keeps a superseded signed image after it dropped those.
        """
        shown = self.run("apt-cache", "show", *(f"{i.package}={i.version}" for i in found))
        needs: dict[tuple[str, str], list[str]] = {}
        for paragraph in shown.split("\n\n"):
            fields = dict(re.findall(r"^(Package|Version|Depends): (.*)$", paragraph, re.MULTILINE))
            if "Package" not in fields:
                continue
            release = fields["Package"].removeprefix("linux-image-")
            depends = [
                re.split(r"[ (]", d.strip(), maxsplit=1)[0]
                for d in fields.get("Depends", "").split(",")
            ]
            needs[(fields["Package"], fields["Version"])] = [
                d for d in depends if d.startswith(_PARTS[:2]) and d.endswith(release)
            ]
        wanted = sorted({part for parts in needs.values() for part in parts})
        offered = set(self.madison(*wanted)) if wanted else set()
        return [
            image
            for image in found
            if all(
                (part, image.version) in offered
                for part in needs.get((image.package, image.version), [])
            )
        ]

    def madison(self, *packages: str) -> list[tuple[str, str]]:
        """(package, version) of each of ``packages`` the suite offers."""
        return _madison(self.run("apt-cache", "madison", *packages))

    def depends(self, package: str, version: str) -> list[str]:
        """The package names ``package`` (at ``version``) depends on."""
        shown = self.run("apt-cache", "show", f"{package}={version}")
        match = re.search(r"^Depends: (.*)$", shown, re.MULTILINE)
        if not match:
            return []
        return [re.split(r"[ (]", alt.strip(), maxsplit=1)[0] for alt in match[1].split(",")]

    def download(self, packages: Sequence[str], version: str, folder: Path) -> list[Path]:
        """``apt-get download`` each of ``packages`` at ``version`` into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.run("apt-get", "download", "-q", *(f"{p}={version}" for p in packages), cwd=folder)
        debs = [deb for p in packages for deb in sorted(folder.glob(f"{p}_*.deb"))]
        if len(debs) < len(packages):
            raise FetchError(f"apt-get download {' '.join(packages)} left too few .deb in {folder}")
        return debs


def _madison(listing: str) -> list[tuple[str, str]]:
    """(package, version) pairs from ``apt-cache madison``'s lines."""
    pairs = []
    for line in listing.splitlines():
        fields = [field.strip() for field in line.split("|")]
        if len(fields) >= 3 and "Packages" in fields[2]:
            pairs.append((fields[0], fields[1]))
    return pairs


def _parts(image: Image) -> list[str]:
    return [f"{prefix}{image.release}" for prefix in _PARTS]


def _apt(suite: str, cache: Path | None) -> Apt:
    return Apt(suite, (cache or cache_dir()) / "apt" / suite)


def images(suite: str, cache: Path | None = None) -> list[Image]:
    """The generic amd64 images ``suite`` offers, oldest first."""
    return _apt(suite, cache).images()


def _matches(image: Image, version: str) -> bool:
    return version in (image.upstream, image.version, image.version.replace("~", "-"))


def resolve(spec: str, cache: Path | None = None) -> Image:
    """The image ``spec`` names (see the module docstring)."""
    wanted = spec.removeprefix(DEBIAN_PREFIX)
    suite, slash, version = wanted.partition("/")
    if suite in SUITES:
        offered = images(suite, cache)
        chosen = [i for i in offered if _matches(i, version)] if slash else offered
        if chosen:
            return chosen[-1]
        listed = ", ".join(i.upstream for i in offered) or "none"
        raise FetchError(
            f"{suite} offers no generic amd64 image {version} (it has: {listed}; a split "
            "image whose linux-modules the mirror no longer has is left out)"
        )
    if slash:
        raise FetchError(f"unknown suite {suite!r} in {spec!r} (known: {', '.join(SUITES)})")
    everywhere = [image for name in SUITES for image in images(name, cache)]
    package = wanted if wanted.startswith("linux-image-") else f"linux-image-{wanted}"
    exact = [image for image in everywhere if image.package == package]
    if exact:
        return exact[-1]
    newest = newest_package(wanted, (image.package for image in everywhere))
    if newest is None:
        raise FetchError(
            f"Debian's mirror offers no generic amd64 image of Linux {wanted} "
            "(python -m fdsend_conformance.tools.kernel_fetch list shows them)"
        )
    return max(
        (image for image in everywhere if image.package == newest),
        key=lambda image: _version_key(image.version),
    )


def _layout(root: Path) -> Path | None:
    """The unpacked tree's ``boot/vmlinuz-R``, made for a split image if need be.

    A split image has ``usr/lib/modules/R/vmlinuz`` and no ``/boot``, and
    images from 6.18 on keep their modules in ``usr/lib/modules``: the
    classic layout (``boot/vmlinuz-R``, ``lib/modules/R``) is linked to
    them, which is where virtme-ng and depmod look.
    """
    if (root / "usr" / "lib" / "modules").is_dir() and not (root / "lib").exists():
        (root / "lib").symlink_to("usr/lib")  # modules in /usr/lib (6.18 on), looked for in /lib
    images = sorted((root / "boot").glob("vmlinuz-*"))
    if images:
        return images[0]
    split = sorted((root / "usr" / "lib" / "modules").glob("*/vmlinuz"))
    if not split:
        return None
    release = split[0].parent.name
    (root / "boot").mkdir(exist_ok=True)
    image = root / "boot" / f"vmlinuz-{release}"
    image.symlink_to(Path("..") / split[0].relative_to(root))
    return image


def unpack(debs: Path | Sequence[Path], root: Path) -> Path:
    """``dpkg -x`` ``debs`` into ``root``, ``depmod`` its modules; the ``vmlinuz``."""
    root.mkdir(parents=True, exist_ok=True)
    for deb in [debs] if isinstance(debs, Path) else debs:
        _run(["dpkg", "-x", str(deb), str(root)])
    image = _layout(root)
    if image is None:
        raise FetchError(f"{root} holds no boot/vmlinuz-* nor usr/lib/modules/*/vmlinuz")
    release = image.name.removeprefix("vmlinuz-")
    _run(["depmod", "-b", str(root), release])
    return image


#: The modules a guest of ``fdsend-conformance vm`` can load (folders of
#: ``lib/modules/R``), with what they depend on: file systems and network
#: protocols (the guest mounts the host's root over 9p with overlays; the
#: checks open sockets) and virtio. Device drivers are left out: at boot,
#: udev would load every driver that matches the emulated machine's
#: devices (CD-ROM, cpufreq, watchdog, ...), which took more of the boot
#: than the kernel did.
GUEST_MODULES = ("kernel/fs/", "kernel/net/", "kernel/drivers/virtio/")


def guest_tree(image: Path) -> Path:
    """The image of a tree beside ``image``'s whose modules are :data:`GUEST_MODULES`.

    ``image`` is an unpacked ``ROOT/boot/vmlinuz-R``; the tree is
    ``ROOT/../guest``, its modules hard links to ``ROOT``'s, indexed by
    ``depmod``, its ``boot/vmlinuz-R`` a link to ``image``. Made once.
    """
    release = image.name.removeprefix("vmlinuz-")
    root = image.parent.parent
    kept = root.parent / "guest" / "boot" / image.name
    if kept.exists():
        return kept
    with tempfile.TemporaryDirectory(dir=root.parent) as scratch:
        _make_guest_tree(image, root, Path(scratch) / "guest", release)
        try:
            os.replace(Path(scratch) / "guest", root.parent / "guest")  # whole, or not at all
        except OSError:
            if not kept.exists():  # not another process's tree, made meanwhile
                raise
    return kept


def _make_guest_tree(image: Path, root: Path, guest: Path, release: str) -> None:
    kept = guest / "boot" / image.name
    source = root / "lib" / "modules" / release
    target = guest / "lib" / "modules" / release
    wanted: set[str] = set()
    for line in (source / "modules.dep").read_text().splitlines():
        module, _, depends = line.partition(":")
        if module.startswith(GUEST_MODULES):
            wanted.update([module, *depends.split()])
    for module in sorted(wanted):
        (target / module).parent.mkdir(parents=True, exist_ok=True)
        os.link(source / module, target / module)
    for index in ("modules.order", "modules.builtin", "modules.builtin.modinfo"):
        if (source / index).exists():
            shutil.copyfile(source / index, target / index)
    _run(["depmod", "-b", str(guest), release])
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.symlink_to(image.resolve())


def _unpacked(folder: Path) -> Path | None:
    images = sorted((folder / "root" / "boot").glob("vmlinuz-*"))
    return images[0] if images else None


def fetch(spec: str, cache: Path | None = None) -> Path:
    """Download and unpack the kernel ``spec`` names (once); its ``vmlinuz``."""
    cache = cache or cache_dir()
    named = spec.removeprefix(DEBIAN_PREFIX)
    if named.startswith("linux-image-") and (found := _unpacked(cache / named)):
        return found
    image = resolve(spec, cache)
    folder = cache / image.package
    found = _unpacked(folder)
    if found:
        return found
    apt = _apt(image.suite, cache)
    offered = {package for package, _ in apt.madison(*_parts(image))}
    parts = [name for name in apt.depends(image.package, image.version) if name in offered]
    with tempfile.TemporaryDirectory(dir=cache) as downloads:
        debs = apt.download([image.package, *parts], image.version, Path(downloads))
        # Unpacked aside and moved in whole: an interrupted fetch leaves no
        # tree that looks complete.
        vmlinuz = unpack(debs, Path(downloads) / "root")
        folder.mkdir(parents=True, exist_ok=True)
        os.replace(Path(downloads) / "root", folder / "root")
    return folder / "root" / "boot" / vmlinuz.name


def changelog(spec: str, cache: Path | None = None) -> str:
    """The linux source's ``changelog.Debian`` of the version ``spec`` names.

    It comes from the image's unpacked tree where :func:`fetch` left one,
    else from ``linux-libc-dev`` at that version where the suite still
    offers it, else from a package built beside the image
    (``linux-headers-R``, ``linux-base-R``, the image itself), and is kept
    in ``CACHE/changelogs/SUITE_VERSION.txt``.
    """
    cache = cache or cache_dir()
    image = resolve(spec, cache)
    kept = cache / "changelogs" / f"{image.suite}_{image.version}.txt"
    if kept.exists():
        return kept.read_text(encoding="utf-8")
    text = _read_changelog(cache / image.package / "root", image.version)
    apt = _apt(image.suite, cache)
    candidates = ["linux-libc-dev", f"linux-headers-{image.release}", *_parts(image)[2:]]
    offered = set(apt.madison(*candidates))
    candidates = [p for p in candidates if (p, image.version) in offered] + [image.package]
    for package in candidates:
        if text is not None:
            break
        with tempfile.TemporaryDirectory(dir=cache) as scratch:
            [deb] = apt.download([package], image.version, Path(scratch))
            _run(["dpkg", "-x", str(deb), f"{scratch}/root"])
            text = _read_changelog(Path(scratch) / "root", image.version)
    if text is None:
        raise FetchError(
            f"no changelog of linux {image.version} in {', '.join(candidates)}; "
            "a later version's changelog holds this version's entries too"
        )
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(text, encoding="utf-8")
    return text


def _read_changelog(root: Path, version: str) -> str | None:
    """The linux source's changelog in an unpacked tree, if it starts at ``version``.

    Debian ships it as ``changelog.Debian.gz``, in the signed images as
    ``changelog.gz``.
    """
    for path in sorted(root.glob("usr/share/doc/*/changelog*.gz")):
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        if text.startswith(f"linux ({version})"):
            return text
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``list``, ``fetch`` and ``changelog``; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m fdsend_conformance.tools.kernel_fetch",
        description="Debian's kernel images through a private apt configuration.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the generic amd64 images of each suite")
    listing.add_argument("suites", nargs="*", metavar="SUITE", help=f"of {', '.join(SUITES)}")
    listing.add_argument("--update", action="store_true", help="apt-get update first")
    fetching = commands.add_parser("fetch", help="download and unpack; print the vmlinuz")
    fetching.add_argument("kernel", help="debian:SUITE/VERSION, debian:RELEASE, ...")
    logs = commands.add_parser("changelog", help="the version's changelog.Debian")
    logs.add_argument("kernel", help="debian:SUITE/VERSION, debian:RELEASE, ...")
    logs.add_argument("--out", type=Path, help="write it here (default: standard output)")
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            for suite in args.suites or list(SUITES):
                if args.update:
                    _apt(suite, None).update(force=True)
                for image in images(suite):
                    print(f"{image.spec}\t{image.release}\t{image.version}")
        elif args.command == "fetch":
            print(fetch(args.kernel))
        else:
            text = changelog(args.kernel)
            if args.out:
                args.out.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
    except FetchError as exc:
        print(f"kernel_fetch: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
