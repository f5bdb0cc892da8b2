#!/usr/bin/env bash
# bash build.sh OUTDIR: builds the driver as OUTDIR/driver from Debian's Go
# (golang-go) and golang.org/x/sys (golang-golang-x-sys-dev), offline, with
# the protocol loop of ../_protocol-go. Exits 77 when one of them is not
# installed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:?usage: build.sh OUTDIR}" && cd "$1" && pwd)"
gopath=/usr/share/gocode
if ! command -v go >/dev/null; then
    echo "go-xsys: go not found (Debian package golang-go)" >&2
    exit 77
fi
if [ ! -d "$gopath/src/golang.org/x/sys/unix" ]; then
    echo "go-xsys: $gopath/src/golang.org/x/sys/unix missing (Debian package golang-golang-x-sys-dev)" >&2
    exit 77
fi
src="$out/go-xsys-src"
rm -rf "$src" && mkdir "$src"
cp "$here/../_protocol-go/protocol.go" "$here/xsys.go" "$src/"
cd "$src"
GO111MODULE=off GOPATH="$gopath" GOPROXY=off GOFLAGS= GOCACHE="${GOCACHE:-$out/go-cache}" \
    go build -o "$out/driver" protocol.go xsys.go
