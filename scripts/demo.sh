#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the demo sweep: python train.py -m over conf/demo.yaml.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(bash "$ROOT/scripts/setup.sh")"
cd "$ROOT"
exec "$VENV/bin/python" train.py -m "$@"
