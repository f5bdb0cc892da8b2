#!/bin/bash
# bash build.sh OUTDIR: builds OUTDIR/driver against Debian's libglib2.0-dev (GLib 2.74, gio-unix).
# Exits 77, naming what is missing, when the compiler, pkg-config or gio-unix-2.0 is not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../_build/steps.sh" "$@"
cc=${CC:-cc}
need_command "$cc" gcc
need_command pkg-config pkg-config
pkg-config --exists gio-unix-2.0 || missing "gio-unix-2.0 is not installed (Debian package libglib2.0-dev)"
# shellcheck disable=SC2046 # pkg-config's words are meant to split
"$cc" -std=gnu11 -O2 -Wall -Wextra -I"$here/../_protocol-c" -DGLIB_VERSION_STRING="\"$(pkg-config --modversion glib-2.0)\"" \
    $(pkg-config --cflags gio-unix-2.0) -o "$out/driver" \
    "$here/../_protocol-c/protocol.c" "$here/driver.c" $(pkg-config --libs gio-unix-2.0)
