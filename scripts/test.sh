#!/usr/bin/env bash
# Set up (scripts/setup.sh), check (scripts/lint.sh: ruff and mypy) and run the whole test suite,
# slow end-to-end tests included, its files in CLARA_HYDRA_TEST_WORKERS (default 2) processes at
# once (pytest-xdist; a file's tests stay in one process, in order; 0: all in this process).
# Arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(bash "$ROOT/scripts/setup.sh")"
cd "$ROOT"
# the MLflow server's venv (tests/test_tracking.py), made while the linters run; the tests wait for it
"$VENV/bin/python" "$ROOT/tests/mlflow_venv.py" >/dev/null 2>&1 &
PYTHON="$VENV/bin/python" bash "$ROOT/scripts/lint.sh"
exec "$VENV/bin/python" -m pytest -n "${CLARA_HYDRA_TEST_WORKERS:-2}" --dist loadfile "$@"
