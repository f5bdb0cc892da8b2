#!/usr/bin/env bash
# The kernel checks on Debian's 6.1 in a virtme-ng VM, compared with this
# machine's kernel and with the committed report of that image (docs/kernels/).
#
# Skipped (exit 0, saying why) only where QEMU cannot be had at all:
#   - not Linux on x86_64 (Debian's amd64 images need an x86_64 QEMU host);
#   - no apt-get (not a Debian-like machine: QEMU is not installed from Debian);
#   - QEMU missing and not root (nothing can be installed).
# Everywhere else (Debian with apt, as CI's machines) a failure to install
# QEMU, virtme-ng or the kernel, or to boot it and bring a report back, fails
# the step; so does a result that differs from the committed report.
# Usage: bash ci/kernel-vm.sh VENV   (VENV has fdsend installed)
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv-ci}"
kernel="${FDSEND_CI_KERNEL:-debian:6.1.0-57-amd64}"
started=$SECONDS

cannot() {
    echo "kernel VM step skipped: $*"
    exit 0
}
broken() {
    echo "kernel VM step FAILED: $* (QEMU can be had on this machine: fix it)"
    exit 1
}

[ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ] || cannot "needs Linux on x86_64, this is $(uname -s)/$(uname -m)"
command -v apt-get >/dev/null || cannot "no apt-get to install QEMU from Debian's packages"
if ! command -v qemu-system-x86_64 >/dev/null || ! command -v busybox >/dev/null \
    || ! command -v depmod >/dev/null; then
    [ "$(id -u)" = 0 ] || cannot "QEMU is not installed and installing it needs root"
    apt-get update -q >/dev/null || broken "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-system-x86 kmod busybox-static \
        >/dev/null || broken "apt-get install qemu-system-x86 kmod busybox-static failed"
fi
"$venv/bin/python" -m pip install -q -e './conformance[vm]' || broken "pip install virtme-ng failed"
qemu-system-x86_64 --version >/dev/null 2>&1 || broken "qemu-system-x86_64 does not start"
echo "tools ready after $((SECONDS - started)) s"

export FDSEND_KERNELS="$venv/kernels"
host_report="$venv/kernel-host.json"
"$venv/bin/fdsend-conformance" run -m kernel -q -p no:xdist \
    --conformance-report "$host_report" >"$venv/kernel-host.log" 2>&1 \
    || { cat "$venv/kernel-host.log"; echo "the kernel checks fail on the host"; exit 1; }
"$venv/bin/fdsend-conformance" vm "$kernel" --out "$venv/vm" --timeout 600 --compare "$host_report"
status=$?
echo "kernel VM step: $((SECONDS - started)) s in all"
[ "$status" = 2 ] && broken "fdsend-conformance vm could not fetch $kernel or run the suite in a guest (why: above)"
# An older kernel may fail clauses (that is what docs/kernels.md records): the
# step fails when the guest's results differ from the committed report of
# that image, i.e. when the suite or the kernel changed and the matrix is stale.
guest_report=$(ls "$venv"/vm/kernel-*.json 2>/dev/null | tail -n 1)
[ -n "$guest_report" ] || { echo "the guest wrote no report"; exit 1; }
committed="docs/kernels/$(basename "$guest_report")"
if [ ! -e "$committed" ]; then
    echo "no committed report $committed: exit status of the run decides"
    exit "$status"
fi
echo "== $kernel against the committed $committed"
"$venv/bin/fdsend-conformance" compare "$committed" "$guest_report" \
    || { echo "results on $kernel changed: fix the suite, or regenerate docs/kernels" \
        "(tox -e kernels -- --run $kernel)"; exit 1; }
