#!/usr/bin/env bash
# tox with every installed Python on PATH: `bash ci/tox.sh -e py39,py313`
# (sourced, it only sets PATH).
# On pyenv machines python3.9 ... python3.13 live in pyenv's version
# directories; tox's interpreter discovery does not see PYENV_VERSION (the
# shims fail there). Links to the real interpreters, by their versioned names
# only, go first on PATH. Elsewhere tox finds what the machine has.
if command -v pyenv >/dev/null 2>&1; then
    pythons=$(mktemp -d)
    for python in "$(pyenv root)"/versions/3.*/bin/python3.*; do
        if [[ "$(basename "$python")" =~ ^python3\.[0-9]+$ && -x "$python" ]]; then
            ln -sf "$python" "$pythons/"
        fi
    done
    export PATH="$pythons:$PATH"
fi
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    exec tox "$@"
fi
