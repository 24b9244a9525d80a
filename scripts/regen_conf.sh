#!/usr/bin/env bash
# Regenerate conf/ from examples/ (the shipped conversions; a test fails when they are stale).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for f in examples/*.json; do
  [ "$(basename "$f")" = environment.json ] && continue
  clara-hydra convert "$f" -o conf
done
