#!/usr/bin/env bash
# The project's own CI: a fresh venv, lint, types, every test, both
# distributions built and checked, the suite against each built-in backend,
# a benchmark smoke run, and the other Pythons.
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${FDSEND_VENV:-.venv-ci}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# fdsend and fdsend-conformance editable, every optional backend, the tools
"$venv/bin/python" -m pip install -q -r requirements-dev.txt
export PATH="$PWD/$venv/bin:$PATH"

echo "== lint and types"
ruff check .
ruff format --check .
mypy
mypy --allow-untyped-defs --allow-incomplete-defs reference/tests  # fixtures stay untyped
mypy --allow-untyped-defs --allow-incomplete-defs conformance/tests

echo "== Chromium, for the test that checks the HTML report in a browser (Debian's package)"
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        { apt-get update -q >/dev/null \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
            || echo "apt-get install chromium failed: the screenshot test is skipped"
    else
        echo "no chromium, and apt-get needs root here: the screenshot test is skipped"
    fi
fi

echo "== all tests (the README's test command)"
python -m pytest -n auto -p no:cacheprovider

echo "== the two distributions: build (sdist and wheel) and twine check"
rm -rf "$venv/dist"
python -m build -q --outdir "$venv/dist" reference
python -m build -q --outdir "$venv/dist" conformance
twine check --strict "$venv/dist"/*

echo "== the suite against the other built-in backends, with their expected files"
for backend in stdlib multiprocessing; do
    fdsend-conformance gate --backend "$backend" -n auto -q \
        --conformance-report "$venv/conformance-$backend.json" --junit-xml "$venv/conformance-$backend.xml" \
        --fdsend-ktap="$venv/conformance-$backend.ktap"
done
echo "== their KTAP output parses (the parser of conformance/tests/test_ktap.py)"
python - "$venv"/conformance-{stdlib,multiprocessing}.ktap <<'PY'
import sys

sys.path.insert(0, "conformance/tests")
from test_ktap import parse

for path in sys.argv[1:]:
    clauses = parse(open(path, encoding="utf-8").read())
    print(f"{path}: {len(clauses)} clauses, {sum(len(c.subtests) for c in clauses)} tests")
PY

echo "== the optional backends (anyio on asyncio and on Trio, Twisted, scgi), with their expected files"
# Their hanging tests are expected failures: a shorter test timeout keeps this quick.
for backend in anyio-asyncio anyio-trio twisted scgi; do
    fdsend-conformance gate --backend "$backend" -n auto -q --test-timeout 5 \
        --conformance-report "$venv/conformance-$backend.json" --junit-xml "$venv/conformance-$backend.xml"
done

echo "== the drivers (conformance/drivers/): built, each build timed, gated against their expected files"
bash ci/drivers.sh "$venv"

echo "== the async reference (fdsend.aio) on asyncio and uvloop, and anyio natively"
for loop in asyncio uvloop; do
    fdsend-conformance gate --backend reference-aio --event-loop "$loop" -n auto -q \
        --conformance-report "$venv/conformance-reference-aio-$loop.json" \
        --junit-xml "$venv/conformance-reference-aio-$loop.xml"
done
for backend in anyio-asyncio-native anyio-trio-native; do
    fdsend-conformance gate --backend "$backend" -n auto -q --test-timeout 5 \
        --conformance-report "$venv/conformance-$backend.json" --junit-xml "$venv/conformance-$backend.xml"
done

echo "== the kernel checks on an older kernel (Debian's 6.1) in a VM (skipped only without QEMU's means)"
bash ci/kernel-vm.sh "$venv"

echo "== benchmark smoke run"
fdsend-conformance bench --quick

echo "== other Python versions: every test on the oldest and newest, the suite and fdsend's tests between"
source ci/tox.sh  # pyenv's interpreters on PATH
others=""
for version in 3.9 3.10 3.12 3.13; do
    if "python$version" -c "" >/dev/null 2>&1; then
        case "$version" in
            3.9 | 3.13) env="py${version/./}" ;;
            *) env="py${version/./}-suite" ;;
        esac
        others="${others:+$others,}$env"
    fi
done
if [ -n "$others" ]; then  # tox fails when every env it is given is missing
    tox -e "$others" -q
else
    echo "no other Python versions here; skipped"
fi
