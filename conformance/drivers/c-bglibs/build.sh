#!/bin/bash
# bash build.sh OUTDIR: builds OUTDIR/driver against Debian's libbg-dev (bglibs 2.04).
# Exits 77, naming what is missing, when the compiler or bglibs is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../_build/steps.sh" "$@"
cc=${CC:-cc}
need_command "$cc" gcc
[ -r /usr/include/bglibs/socket.h ] || missing "bglibs is not installed (Debian package libbg-dev)"
"$cc" -std=gnu11 -O2 -Wall -Wextra -I"$here/../_protocol-c" -o "$out/driver" \
    "$here/../_protocol-c/protocol.c" "$here/driver.c" -L/usr/lib -lbg
