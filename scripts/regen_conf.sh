#!/usr/bin/env bash
# Regenerate examples/conf/ from examples/*.json (the shipped demo conversions; a test fails when they
# are stale). Your own conversions go to conf/ (clara-hydra convert ... -o conf), which git ignores.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if command -v clara-hydra >/dev/null; then CH=(clara-hydra); else CH=("${PYTHON:-python3}" -m clara_hydra); fi
for f in examples/*.json; do
  [ "$(basename "$f")" = environment.json ] && continue
  "${CH[@]}" convert "$f" -o examples/conf
done
