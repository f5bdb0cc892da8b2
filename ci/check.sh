#!/usr/bin/env bash
# The project's own CI: install into a fresh venv, lint, type-check, test.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${FDSEND_VENV:-.venv-ci}"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e '.[dev]'
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .
"$venv/bin/mypy"
"$venv/bin/python" -m pytest -n auto -p no:cacheprovider
