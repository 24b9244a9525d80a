#!/usr/bin/env bash
# Regenerate conf/ from examples/ (the shipped conversions; a test fails when they are stale).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if command -v clara-hydra >/dev/null; then CH=(clara-hydra); else CH=("${PYTHON:-python3}" -m clara_hydra); fi
for f in examples/*.json; do
  [ "$(basename "$f")" = environment.json ] && continue
  "${CH[@]}" convert "$f" -o conf
done
