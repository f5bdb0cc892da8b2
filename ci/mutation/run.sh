#!/usr/bin/env bash
# Mutation testing of the reference (docs/mutation.md): cosmic-ray mutates
# reference/fdsend/__init__.py and aio.py IN PLACE, one mutant at a time, and runs
# the conformance suite against the reference on each; commit first, edit nothing
# while it runs. Resumable: a second run goes on where the first stopped.
#   bash ci/mutation/run.sh [OUTDIR]        (tox -e mutation; OUTDIR .mutation)
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-.mutation}"
mkdir -p "$out"
for name in fdsend aio; do
    config="ci/mutation/$name.toml"
    session="$out/$name.sqlite"
    if [ ! -f "$session" ]; then
        cosmic-ray init "$config" "$session"
        python ci/mutation/skip_annotations.py "$session"
        cosmic-ray baseline "$config"  # the suite passes on the unmutated code
    fi
    cosmic-ray exec "$config" "$session"
    cr-report --show-pending "$session" >"$out/$name.txt"
    tail -n 3 "$out/$name.txt"
done
