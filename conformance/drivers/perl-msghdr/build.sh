#!/usr/bin/env bash
# bash build.sh OUTDIR: installs the driver as OUTDIR/driver, a copy of
# driver.pl run by Debian's perl with Socket::MsgHdr (libsocket-msghdr-perl).
# Exits 77 when either is not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../_build/steps.sh" "$@"
need_command perl perl
perl -MSocket::MsgHdr -MJSON::PP -MTime::HiRes -e 1 2>/dev/null \
    || missing "Perl module Socket::MsgHdr missing (Debian package libsocket-msghdr-perl)"
perl -c "$here/driver.pl" 2>/dev/null
install -m 755 "$here/driver.pl" "$out/driver"
