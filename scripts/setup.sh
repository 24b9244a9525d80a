#!/usr/bin/env bash
# Set up clara-hydra in a virtual environment OUTSIDE the clone, so that a fresh clone (CI)
# reuses the heavy packages (torch, MONAI) instead of reinstalling them.
#   CLARA_HYDRA_VENV  where the venv lives (default: ~/.cache/clara-hydra/venv)
#   PYTHON            the interpreter to build it from (default: python3, 3.10+)
# It is created with --system-site-packages: a torch already installed for your machine
# (a CUDA build on a GPU box) is used as is. Without one, the CPU build torch==2.13.0 is installed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CLARA_HYDRA_VENV:-$HOME/.cache/clara-hydra/venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  echo "clara-hydra: creating $VENV" >&2
  "$PY" -m venv --system-site-packages "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "clara-hydra: installing torch==2.13.0 (CPU build)" >&2
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
fi
# the venv runs one clone's code: say so when this clone takes it over from another one
BEFORE="$(cd / && "$VENV/bin/python" -c 'import os, clara_hydra; print(os.path.dirname(os.path.dirname(os.path.realpath(clara_hydra.__file__))))' 2>/dev/null || true)"
if [ -n "$BEFORE" ] && [ "$BEFORE" != "$(cd "$ROOT" && pwd -P)" ]; then
  echo "clara-hydra: $VENV ran the clone in $BEFORE; it runs this one ($ROOT) from now on" \
       "(give each clone its own: CLARA_HYDRA_VENV=DIR bash scripts/setup.sh)" >&2
fi
# compat mode keeps hydra_plugins/ discoverable by Hydra's plugin scanner
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  --config-settings editable_mode=compat -e "$ROOT[test,dashboard]"
echo "$VENV"
