# The steps the drivers' build.sh files share (docs/drivers.md). Not a
# build.sh itself: a driver's build.sh sources it once it knows its folder,
#
#     here="$(cd "$(dirname "$0")" && pwd)"
#     source "$here/../_build/steps.sh" "$@"
#
# which sets `name` (the driver's folder name) and `out` (OUTDIR, made,
# as an absolute path). A tool or library that is not installed ends the
# build with status 77 and one line naming it (see `missing`).

name="$(basename "$here")"
out="$(mkdir -p "${1:?usage: build.sh OUTDIR}" && cd "$1" && pwd)"

# Where Debian's Go packages (golang-golang-x-sys-dev, ...) install their sources.
gopath=/usr/share/gocode

# missing WHAT: say on standard error that WHAT is not installed; exit 77.
missing() {
    echo "$name: $1" >&2
    exit 77
}

# need_command COMMAND PACKAGE: COMMAND is on PATH, or the build ends as missing.
need_command() {
    command -v "$1" >/dev/null || missing "$1 not found (Debian package $2)"
}

# go_build FILE...: OUTDIR/driver from ../_protocol-go/protocol.go and the
# driver's FILEs, built by Debian's Go offline: GOPATH mode, no module proxy.
go_build() {
    local src="$out/$name-src" file
    rm -rf "$src" && mkdir "$src"
    cp "$here/../_protocol-go/protocol.go" "$src/"
    for file in "$@"; do
        cp "$here/$file" "$src/"
    done
    (cd "$src" && GO111MODULE=off GOPATH="$gopath" GOPROXY=off GOFLAGS= \
        GOCACHE="${GOCACHE:-$out/go-cache}" go build -o "$out/driver" protocol.go "$@")
}
