#!/bin/bash
# bash build.sh OUTDIR: builds OUTDIR/driver with Debian's cargo and rustc against
# librust-nix-dev (nix 0.26), offline: crates.io is replaced by /usr/share/cargo/registry.
# The sources are copied into OUTDIR/build, so Cargo.lock and target/ stay in OUTDIR.
# Exits 77, naming what is missing, when cargo, rustc or the nix crate is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../_build/steps.sh" "$@"
registry=/usr/share/cargo/registry
cargo=/usr/bin/cargo # Debian's, never a rustup one earlier on PATH
rustc=/usr/bin/rustc
[ -x "$cargo" ] || missing "/usr/bin/cargo is not installed (Debian package cargo)"
[ -x "$rustc" ] || missing "/usr/bin/rustc is not installed (Debian package rustc)"
nix_dir=$(ls -d "$registry"/nix-0.26.* 2>/dev/null | tail -n 1 || true)
[ -n "$nix_dir" ] || missing "the nix 0.26 crate is not in $registry (Debian package librust-nix-dev)"
mkdir -p "$out/build/cargo-home"
cp -R "$here/Cargo.toml" "$here/src" "$out/build/"
cat >"$out/build/cargo-home/config.toml" <<TOML
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$registry"

[net]
offline = true
TOML
export CARGO_HOME="$out/build/cargo-home" CARGO_TARGET_DIR="$out/build/target" RUSTC="$rustc"
export DRIVER_NIX_VERSION="${nix_dir##*/nix-}"
DRIVER_RUSTC_VERSION="$("$rustc" --version | cut -d' ' -f2)"
export DRIVER_RUSTC_VERSION
"$cargo" build --quiet --offline --release --manifest-path "$out/build/Cargo.toml"
cp "$out/build/target/release/driver" "$out/driver"
