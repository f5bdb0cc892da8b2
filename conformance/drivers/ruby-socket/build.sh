#!/bin/bash
# bash build.sh OUTDIR: installs the driver as OUTDIR/driver (a Ruby script).
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
if ! command -v ruby >/dev/null 2>&1; then
    echo "ruby is not installed (Debian package: ruby)" >&2
    exit 77
fi
if ! ruby -e 'require "socket"; require "json"' >/dev/null 2>&1; then
    echo "ruby cannot load its socket and json libraries (Debian package: libruby)" >&2
    exit 77
fi
mkdir -p "$out"
ruby -c "$here/driver.rb" >/dev/null
{
    echo '#!/usr/bin/env ruby'
    cat "$here/driver.rb"
} > "$out/driver"
chmod +x "$out/driver"
