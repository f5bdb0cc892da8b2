#!/usr/bin/env bash
# bash build.sh OUTDIR: installs the driver as OUTDIR/driver, a copy of
# driver.pl run by Debian's perl with Socket::MsgHdr (libsocket-msghdr-perl).
# Exits 77 when either is not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:?usage: build.sh OUTDIR}" && cd "$1" && pwd)"
if ! command -v perl >/dev/null; then
    echo "perl-msghdr: perl not found (Debian package perl)" >&2
    exit 77
fi
if ! perl -MSocket::MsgHdr -MJSON::PP -MTime::HiRes -e 1 2>/dev/null; then
    echo "perl-msghdr: Perl module Socket::MsgHdr missing (Debian package libsocket-msghdr-perl)" >&2
    exit 77
fi
perl -c "$here/driver.pl" 2>/dev/null
install -m 755 "$here/driver.pl" "$out/driver"
