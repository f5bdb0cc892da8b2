#!/usr/bin/env bash
# bash build.sh OUTDIR: builds the driver as OUTDIR/driver from Debian's Go
# (golang-go), standard library only, offline, with the protocol loop of
# ../_protocol-go. Exits 77 when Go is not installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:?usage: build.sh OUTDIR}" && cd "$1" && pwd)"
if ! command -v go >/dev/null; then
    echo "go-net: go not found (Debian package golang-go)" >&2
    exit 77
fi
src="$out/go-net-src"
rm -rf "$src" && mkdir "$src"
cp "$here/../_protocol-go/protocol.go" "$here/netconn.go" "$src/"
cd "$src"
GO111MODULE=off GOPATH=/usr/share/gocode GOPROXY=off GOFLAGS= GOCACHE="${GOCACHE:-$out/go-cache}" \
    go build -o "$out/driver" protocol.go netconn.go
