#!/bin/bash
# bash build.sh OUTDIR: installs the driver as OUTDIR/driver (a Ruby script).
# Exits 77 when ruby or its socket and json libraries are not installed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../_build/steps.sh" "$@"
need_command ruby ruby
ruby -e 'require "socket"; require "json"' >/dev/null 2>&1 \
    || missing "ruby cannot load its socket and json libraries (Debian package libruby)"
ruby -c "$here/driver.rb" >/dev/null
{
    echo '#!/usr/bin/env ruby'
    cat "$here/driver.rb"
} > "$out/driver"
chmod +x "$out/driver"
