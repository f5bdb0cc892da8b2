#!/bin/bash
# bash build.sh OUTDIR: builds OUTDIR/driver against Debian's libbg-dev (bglibs 2.04).
# Exits 77, naming what is missing, when the compiler or bglibs is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
cc=${CC:-cc}
command -v "$cc" >/dev/null || { echo "c-bglibs: no C compiler ($cc)" >&2; exit 77; }
[ -r /usr/include/bglibs/socket.h ] || { echo "c-bglibs: bglibs is not installed (apt-get install libbg-dev)" >&2; exit 77; }
mkdir -p "$out"
"$cc" -std=gnu11 -O2 -Wall -Wextra -I"$here/../_protocol-c" -o "$out/driver" \
    "$here/../_protocol-c/protocol.c" "$here/driver.c" -L/usr/lib -lbg
