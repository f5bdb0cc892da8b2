#!/usr/bin/env bash
# bash build.sh OUTDIR: builds the driver as OUTDIR/driver from Debian's Go
# (golang-go), standard library only, offline, with the protocol loop of
# ../_protocol-go. Exits 77 when Go is not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../_build/steps.sh" "$@"
need_command go golang-go
go_build netconn.go
