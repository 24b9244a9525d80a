#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the main job: a demo sweep of examples/conf/demo.yaml on the built-in
# synthetic data (python train.py -m). Extra args go to train.py, e.g. hydra.sweeper.n_trials=8.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$(bash "$ROOT/scripts/setup.sh")"
cd "$ROOT"
exec "$VENV/bin/python" train.py -m hydra.sweeper.n_trials=4 "hydra.sweeper.study_name=demo-$(date +%Y%m%d-%H%M%S)" "$@"
