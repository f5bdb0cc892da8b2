#!/usr/bin/env bash
# Mutation testing of the reference (docs/mutation.md): cosmic-ray mutates
# reference/fdsend/__init__.py and aio.py IN PLACE, one mutant at a time, and runs
# the conformance suite against the reference on each; commit first, edit nothing
# while it runs. Resumable: a second run goes on where the first stopped.
#   bash ci/mutation/run.sh [OUTDIR]        (tox -e mutation; OUTDIR .mutation)
# MUTATION_SAMPLE=N runs a deterministic 1-in-N sample (ci/mutation/sample.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-.mutation}"
mkdir -p "$out"
for name in fdsend aio; do
    config="ci/mutation/$name.toml"
    session="$out/$name.sqlite"
    if [ ! -s "$session" ]; then  # a missing or empty file: a new session
        cosmic-ray init "$config" "$session"
        python ci/mutation/skip_annotations.py "$session"
        if [ "${MUTATION_SAMPLE:-1}" -gt 1 ]; then
            python ci/mutation/sample.py "$session" "$MUTATION_SAMPLE"
        fi
        cosmic-ray baseline "$config"  # the suite passes on the unmutated code
    fi
    cosmic-ray exec "$config" "$session"
    cr-report --show-pending "$session" >"$out/$name.txt"
    tail -n 3 "$out/$name.txt"
done
