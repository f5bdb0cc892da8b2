"""tools/kernel_fetch: naming Debian's images, apt's private configuration, the layouts.

Nothing here downloads: apt's answers are the ones it gave on Debian's
mirror, and the packages are built with dpkg-deb. ``FDSEND_FETCH_NETWORK=1``
enables the one test that asks the mirror.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fdsend_conformance.tools import kernel_fetch
from fdsend_conformance.tools.kernel_fetch import Image

NAMES = [
    "linux-image-6.1.0-9-amd64",
    "linux-image-6.1.0-57-amd64",
    "linux-image-6.1.0-57-cloud-amd64",
    "linux-image-6.1.0-57-rt-amd64",
    "linux-image-6.1.0-57-amd64-dbg",
    "linux-image-6.1.0-57-amd64-unsigned",
    "linux-image-6.12.117+deb12-amd64",
    "linux-image-6.12.9+deb12-amd64",
    "linux-image-6.12-amd64",
    "linux-image-amd64",
]

NEEDS_DPKG = pytest.mark.skipif(
    not (shutil.which("dpkg-deb") and (shutil.which("depmod") or Path("/sbin/depmod").exists())),
    reason="needs dpkg-deb and depmod (Debian's dpkg and kmod)",
)


@pytest.mark.parametrize(
    ("series", "package"),
    [
        ("6.1", "linux-image-6.1.0-57-amd64"),
        ("6.12", "linux-image-6.12.117+deb12-amd64"),
        ("5.10", None),
    ],
)
def test_the_newest_generic_image_of_a_series_is_chosen(series: str, package: str | None):
    assert kernel_fetch.newest_package(series, NAMES) == package


def test_an_image_knows_its_release_linux_version_and_name():
    backport = Image("trixie-backports", "linux-image-7.2.6+deb13-amd64", "7.2.6-1~bpo13+1")
    assert backport.release == "7.2.6+deb13-amd64"
    assert backport.upstream == "7.2.6"
    assert backport.spec == "debian:trixie-backports/7.2.6"
    candidate = Image("experimental", "linux-image-7.3-amd64", "7.3~rc7-1~exp1")
    assert candidate.upstream == "7.3-rc7"


def test_apt_reads_only_its_own_configuration(tmp_path: Path):
    apt = kernel_fetch.Apt("bookworm", tmp_path)
    options = dict(option.removeprefix("-o").split("=", 1) for option in apt.options())
    for key in ("SourceList", "SourceParts", "Preferences", "PreferencesParts"):
        assert options[f"Dir::Etc::{key}"].startswith(str(tmp_path))
    assert options["Dir::State::Status"].startswith(str(tmp_path))
    assert options["Dir::State::Lists"].startswith(str(tmp_path))
    assert options["Dir::Cache"].startswith(str(tmp_path))
    assert not any("/etc/apt" in value for value in options.values())
    sources = apt.sources().splitlines()
    assert [line.split()[-2] for line in sources] == [
        "bookworm",
        "bookworm-updates",
        "bookworm-security",
    ]
    assert all(f"signed-by={kernel_fetch.KEYRING}" in line for line in sources)


def test_an_unknown_suite_is_named():
    with pytest.raises(kernel_fetch.FetchError, match="unknown suite 'buster'"):
        kernel_fetch.Apt("buster", Path("/nonexistent"))
    with pytest.raises(kernel_fetch.FetchError, match="unknown suite 'buster'"):
        kernel_fetch.resolve("debian:buster/4.19.0")


_DEB = "http://deb.debian.org/debian trixie-backports/main"
MADISON = f"""\
linux-image-7.2.6+deb13-amd64 | 7.2.6-1~bpo13+1 | {_DEB} amd64 Packages
linux-image-7.2.9+deb13-amd64 | 7.2.9-1~bpo13+1 | {_DEB} amd64 Packages
     linux | 7.2.9-1~bpo13+1 | {_DEB} Sources
"""


def test_madison_lines_give_binary_packages_and_versions():
    assert kernel_fetch._madison(MADISON) == [
        ("linux-image-7.2.6+deb13-amd64", "7.2.6-1~bpo13+1"),
        ("linux-image-7.2.9+deb13-amd64", "7.2.9-1~bpo13+1"),
    ]


OFFERED = {
    "bookworm": [
        Image("bookworm", "linux-image-6.1.0-55-amd64", "6.1.192-1"),
        Image("bookworm", "linux-image-6.1.0-57-amd64", "6.1.192-3"),
        Image("bookworm", "linux-image-6.12.117+deb12-amd64", "6.12.117-1~deb12u1"),
    ],
    "trixie-backports": [
        Image("trixie-backports", "linux-image-7.2.6+deb13-amd64", "7.2.6-1~bpo13+1"),
        Image("trixie-backports", "linux-image-7.2.9+deb13-amd64", "7.2.9-1~bpo13+1"),
    ],
}


@pytest.mark.parametrize(
    ("spec", "package"),
    [
        ("debian:trixie-backports/7.2.6", "linux-image-7.2.6+deb13-amd64"),
        ("debian:trixie-backports/7.2.9-1~bpo13+1", "linux-image-7.2.9+deb13-amd64"),
        ("debian:trixie-backports", "linux-image-7.2.9+deb13-amd64"),
        ("debian:bookworm/6.1.192", "linux-image-6.1.0-57-amd64"),  # newest revision
        ("debian:bookworm/6.1.192-1", "linux-image-6.1.0-55-amd64"),
        ("debian:6.1.0-55-amd64", "linux-image-6.1.0-55-amd64"),
        ("debian:linux-image-7.2.6+deb13-amd64", "linux-image-7.2.6+deb13-amd64"),
        ("debian:6.1", "linux-image-6.1.0-57-amd64"),
        ("debian:7.2", "linux-image-7.2.9+deb13-amd64"),
    ],
)
def test_every_way_of_naming_an_image(monkeypatch: pytest.MonkeyPatch, spec: str, package: str):
    monkeypatch.setattr(kernel_fetch, "images", lambda suite, cache=None: OFFERED.get(suite, []))
    assert kernel_fetch.resolve(spec).package == package


def test_a_version_or_series_the_mirror_lacks_is_named(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(kernel_fetch, "images", lambda suite, cache=None: OFFERED.get(suite, []))
    with pytest.raises(kernel_fetch.FetchError, match=r"no generic amd64 image 7\.2\.7 .*7\.2\.6"):
        kernel_fetch.resolve("debian:trixie-backports/7.2.7")
    with pytest.raises(kernel_fetch.FetchError, match=r"no generic amd64 image of Linux 4\.19"):
        kernel_fetch.resolve("debian:4.19")


def _deb(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    tree = tmp_path / f"tree-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1\nArchitecture: all\nMaintainer: t <t@t>\nDescription: t\n"
    )
    for path, content in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(content)
    deb = tmp_path / f"{name}.deb"
    subprocess.run(["dpkg-deb", "-b", str(tree), str(deb)], check=True, capture_output=True)
    return deb


@NEEDS_DPKG
@pytest.mark.parametrize("modules", ["lib/modules", "usr/lib/modules"])  # 6.18 on: usr/lib
def test_unpack_lays_out_a_classic_image_and_indexes_its_modules(tmp_path: Path, modules: str):
    deb = _deb(
        tmp_path,
        "linux-image-9.9.9-test",
        {"boot/vmlinuz-9.9.9-test": b"not a kernel", f"{modules}/9.9.9-test/kernel/.k": b""},
    )
    image = kernel_fetch.unpack(deb, tmp_path / "root")
    assert image == tmp_path / "root" / "boot" / "vmlinuz-9.9.9-test"
    assert (tmp_path / "root" / "lib" / "modules" / "9.9.9-test" / "modules.dep").exists()


@NEEDS_DPKG
def test_a_split_image_gets_the_classic_layout_from_its_binary_package(tmp_path: Path):
    modules = "usr/lib/modules/9.9.9+deb13-amd64"
    debs = [
        _deb(tmp_path, "linux-image-9.9.9", {"usr/share/doc/linux-image-9.9.9/x": b""}),
        _deb(tmp_path, "linux-binary-9.9.9", {f"{modules}/vmlinuz": b"the kernel"}),
        _deb(tmp_path, "linux-modules-9.9.9", {f"{modules}/kernel/net/.k": b""}),
    ]
    root = tmp_path / "root"
    image = kernel_fetch.unpack(debs, root)
    assert image == root / "boot" / "vmlinuz-9.9.9+deb13-amd64"
    assert image.read_bytes() == b"the kernel"
    assert (root / "lib" / "modules" / "9.9.9+deb13-amd64" / "modules.dep").exists()


@NEEDS_DPKG
def test_a_package_without_a_kernel_is_refused(tmp_path: Path):
    deb = _deb(tmp_path, "linux-image-9.9.9", {"usr/share/doc/linux-image-9.9.9/x": b""})
    with pytest.raises(kernel_fetch.FetchError, match="holds no boot/vmlinuz"):
        kernel_fetch.unpack(deb, tmp_path / "root")


def test_fetch_reuses_an_unpacked_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    image = tmp_path / "linux-image-6.1.0-57-amd64" / "root" / "boot" / "vmlinuz-6.1.0-57-amd64"
    image.parent.mkdir(parents=True)
    image.write_bytes(b"")
    monkeypatch.setattr(kernel_fetch, "_run", pytest.fail)  # nothing is downloaded
    assert kernel_fetch.fetch("debian:linux-image-6.1.0-57-amd64", tmp_path) == image


@pytest.mark.skipif(not os.environ.get("FDSEND_FETCH_NETWORK"), reason="asks Debian's mirror")
def test_the_mirror_lists_a_split_backport_and_its_changelog(tmp_path: Path):
    offered = kernel_fetch.images("trixie-backports", tmp_path)
    assert any(image.spec == "debian:trixie-backports/7.2.6" for image in offered)
    text = kernel_fetch.changelog("debian:trixie-backports/7.2.6", tmp_path)
    assert text.startswith("linux (7.2.6-1~bpo13+1) trixie-backports;")


@NEEDS_DPKG
def test_the_guest_tree_keeps_file_systems_network_and_virtio_modules_only(tmp_path: Path):
    release = "9.9.9-test"
    modules = f"lib/modules/{release}/kernel"
    deb = _deb(
        tmp_path,
        "linux-image-9.9.9-test",
        {
            f"boot/vmlinuz-{release}": b"the kernel",
            f"{modules}/fs/9p/9p.ko": b"",
            f"{modules}/net/9p/9pnet.ko": b"",
            f"{modules}/drivers/cdrom/cdrom.ko": b"",
            f"{modules}/drivers/virtio/virtio_mmio.ko": b"",
        },
    )
    image = kernel_fetch.unpack(deb, tmp_path / "pkg" / "root")
    # depmod found no symbols in these empty files: say 9p needs a driver, as a real one might
    dep = tmp_path / "pkg" / "root" / f"lib/modules/{release}/modules.dep"
    dep.write_text(
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/drivers/cdrom/cdrom.ko\n"
        "kernel/net/9p/9pnet.ko:\nkernel/drivers/cdrom/cdrom.ko:\n"
        "kernel/drivers/virtio/virtio_mmio.ko:\n"
    )
    guest = kernel_fetch.guest_tree(image)
    assert guest == tmp_path / "pkg" / "guest" / "boot" / f"vmlinuz-{release}"
    assert guest.read_bytes() == b"the kernel"
    kept = guest.parent.parent / f"lib/modules/{release}"
    found = sorted(str(p.relative_to(kept)) for p in kept.rglob("*.ko"))
    assert found == [
        "kernel/drivers/cdrom/cdrom.ko",  # a dependency of 9p
        "kernel/drivers/virtio/virtio_mmio.ko",
        "kernel/fs/9p/9p.ko",
        "kernel/net/9p/9pnet.ko",
    ]
    assert (kept / "modules.dep").exists()
    assert kernel_fetch.guest_tree(image) == guest  # made once


SHOWN = """\
Package: linux-image-6.19.14+deb13-amd64
Version: 6.19.14-1~bpo13+1
Depends: kmod, linux-base-6.19.14+deb13-amd64 (= 6.19.14-1~bpo13+1), \
linux-binary-6.19.14+deb13-amd64 (= 6.19.14-1~bpo13+1), \
linux-modules-6.19.14+deb13-amd64 (= 6.19.14-1~bpo13+1)

Package: linux-image-7.2.6+deb13-amd64
Version: 7.2.6-1~bpo13+1
Depends: linux-binary-7.2.6+deb13-amd64 (= 7.2.6-1~bpo13+1), \
linux-modules-7.2.6+deb13-amd64 (= 7.2.6-1~bpo13+1)

Package: linux-image-6.18.15+deb13-amd64
Version: 6.18.15-1~bpo13+1
Depends: kmod, linux-base-6.18.15+deb13-amd64 (= 6.18.15-1~bpo13+1)
"""


def test_a_split_image_whose_modules_are_gone_is_not_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    offered = {  # what madison answers: 6.19.14's modules were dropped, its binary kept
        "linux-binary-6.19.14+deb13-amd64": "6.19.14-1~bpo13+1",
        "linux-binary-7.2.6+deb13-amd64": "7.2.6-1~bpo13+1",
        "linux-modules-7.2.6+deb13-amd64": "7.2.6-1~bpo13+1",
    }

    def run(self: kernel_fetch.Apt, tool: str, *args: str, cwd: Path | None = None) -> str:
        if args[0] == "show":
            return SHOWN
        assert args[0] == "madison"
        return "".join(
            f"{p} | {offered[p]} | {_DEB} amd64 Packages\n" for p in args[1:] if p in offered
        )

    monkeypatch.setattr(kernel_fetch.Apt, "run", run)
    found = {
        Image("trixie-backports", f"linux-image-{r}+deb13-amd64", f"{r}-1~bpo13+1")
        for r in ("6.19.14", "7.2.6", "6.18.15")
    }
    kept = kernel_fetch.Apt("trixie-backports", tmp_path)._bootable(found)
    assert sorted(image.upstream for image in kept) == ["6.18.15", "7.2.6"]


@NEEDS_DPKG
@pytest.mark.parametrize("with_kernel", [True, False])
def test_fetch_moves_in_a_whole_tree_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_kernel: bool
):
    files = {"boot/vmlinuz-9.9.9-test": b"k"} if with_kernel else {}
    deb = _deb(tmp_path, "linux-image-9.9.9-test", {**files, "lib/modules/9.9.9-test/.k": b""})
    image = Image("bookworm", "linux-image-9.9.9-test", "9.9.9-1")
    monkeypatch.setattr(kernel_fetch, "resolve", lambda spec, cache=None: image)
    monkeypatch.setattr(kernel_fetch.Apt, "depends", lambda self, p, v: [])
    monkeypatch.setattr(kernel_fetch.Apt, "madison", lambda self, *p: [])
    monkeypatch.setattr(kernel_fetch.Apt, "download", lambda self, p, v, folder: [deb])
    cache = tmp_path / "cache"
    cache.mkdir()
    folder = cache / image.package
    if with_kernel:
        assert kernel_fetch.fetch("debian:bookworm/9.9.9", cache) == (
            folder / "root" / "boot" / "vmlinuz-9.9.9-test"
        )
        assert (folder / "root" / "lib" / "modules" / "9.9.9-test" / "modules.dep").exists()
    else:
        with pytest.raises(kernel_fetch.FetchError, match="holds no boot/vmlinuz"):
            kernel_fetch.fetch("debian:bookworm/9.9.9", cache)
        assert not (folder / "root").exists()
    assert [p.name for p in cache.iterdir()] == ([image.package] if with_kernel else [])


def test_a_relative_kernel_cache_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """apt reads a relative Dir:: setting from /, so the cache is always absolute."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FDSEND_KERNELS", "venv/kernels")
    assert kernel_fetch.cache_dir() == tmp_path / "venv" / "kernels"
