#!/usr/bin/env bash
# bash build.sh OUTDIR: builds the driver as OUTDIR/driver from Debian's Go
# (golang-go) and golang.org/x/sys (golang-golang-x-sys-dev), offline, with
# the protocol loop of ../_protocol-go. Exits 77 when one of them is not
# installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../_build/steps.sh" "$@"
need_command go golang-go
[ -d "$gopath/src/golang.org/x/sys/unix" ] \
    || missing "$gopath/src/golang.org/x/sys/unix missing (Debian package golang-golang-x-sys-dev)"
go_build xsys.go
