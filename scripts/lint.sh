#!/usr/bin/env bash
# The linter (ruff) and the type checker (mypy), as configured in pyproject.toml. scripts/test.sh
# runs this first; run it alone with the venv's python as PYTHON.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
cd "$ROOT"
"$PY" -m ruff check .
# mypy's cache outside the clone: CI clones afresh, a developer's runs reuse it
"$PY" -m mypy --cache-dir "${CLARA_HYDRA_MYPY_CACHE:-$HOME/.cache/clara-hydra/mypy}"
