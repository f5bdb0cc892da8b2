#!/usr/bin/env bash
# Every driver of conformance/drivers/ (docs/drivers.md): its build tools
# installed from Debian's packages where missing, built (each build timed),
# then gated against its expected.txt. A driver whose build.sh exits 77 (a
# tool or library missing) is skipped with build.sh's reason; any other
# failure fails CI.
# Usage: bash ci/drivers.sh VENV   (VENV has fdsend-conformance installed)
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-ci}"
started=$SECONDS

# The drivers' build tools and libraries, as Debian packages (issue 22 §2).
packages="golang-go golang-golang-x-sys-dev librust-nix-dev cargo rustc libglib2.0-dev
    libsocket-msghdr-perl libbg-dev pkg-config gcc ruby"
missing=""
for package in $packages; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $package"
done
if [ -n "$missing" ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "installing:$missing"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null \
            || echo "apt-get install failed; the drivers that need$missing are skipped below"
    else
        echo "cannot install$missing here (no apt-get or not root): their drivers are skipped below"
    fi
fi
echo "build tools ready after $((SECONDS - started)) s"

export FDSEND_DRIVER_CACHE="$PWD/$venv/drivers"
rm -rf "$FDSEND_DRIVER_CACHE"  # every build from scratch, so its time is real
status=0
for folder in conformance/drivers/*/; do
    folder="${folder%/}"
    name="$(basename "$folder")"
    [ -f "$folder/build.sh" ] || continue # shared code (_protocol-c), not a driver
    "$venv/bin/python" -m fdsend_conformance.driver.named build "$folder"
    built=$?
    if [ "$built" = 77 ]; then
        echo "SKIPPED $name: a build tool is missing (build.sh's reason above)"
        continue
    fi
    if [ "$built" != 0 ]; then
        echo "FAILED $name: build.sh failed"
        status=1
        continue
    fi
    if [ ! -f "$folder/expected.txt" ]; then
        echo "FAILED $name: no expected.txt to gate against"
        status=1
        continue
    fi
    "$venv/bin/fdsend-conformance" gate --backend "driver:$folder" -n auto -q \
        --conformance-report "$venv/conformance-driver-$name.json" \
        --junit-xml "$venv/conformance-driver-$name.xml" \
        || { echo "FAILED $name: its outcomes differ from $folder/expected.txt"; status=1; }
done
echo "drivers step: $((SECONDS - started)) s in all"
exit "$status"
