#!/usr/bin/env bash
# Set up (scripts/setup.sh), check (scripts/lint.sh: ruff and mypy) and run the whole test suite,
# slow end-to-end tests included. Arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(bash "$ROOT/scripts/setup.sh")"
cd "$ROOT"
PYTHON="$VENV/bin/python" bash "$ROOT/scripts/lint.sh"
exec "$VENV/bin/python" -m pytest "$@"
