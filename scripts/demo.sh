#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job on conf/demo.yaml (extra args go to train.py).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(bash "$ROOT/scripts/setup.sh")"
cd "$ROOT"
exec "$VENV/bin/python" train.py "$@"
