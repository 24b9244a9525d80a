"""What clara-hydra's plugins cost every Hydra app on the machine: Hydra's plugin scan (which
imports every module under ``hydra_plugins`` at start-up), timed with and without them.

    python bench/bench_plugins.py [--repeats 15]

Each measurement is a fresh interpreter (imports are cached within one); "without" hides the
``hydra_plugins.clara_hydra_*`` packages from the scan. Prints the medians and whether the scan
imported Optuna (it should not: the sweeper's work is imported only when a sweep starts)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = r"""
import json, pkgutil, sys, time
if {hide}:
    walk = pkgutil.walk_packages
    pkgutil.walk_packages = lambda *a, **k: (m for m in walk(*a, **k) if ".clara_hydra_" not in m[1])
import hydra  # not part of the scan
start = time.perf_counter()
from hydra.core.plugins import Plugins
Plugins.instance()
print(json.dumps({{"s": time.perf_counter() - start, "optuna": "optuna" in sys.modules}}))
"""


def measure(hide: bool, repeats: int) -> tuple[float, bool]:
    runs = [json.loads(subprocess.run([sys.executable, "-c", PROBE.format(hide=hide)], check=True,
                                      capture_output=True, text=True).stdout) for _ in range(repeats)]
    return statistics.median(r["s"] for r in runs), any(r["optuna"] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    repeats = ap.parse_args().repeats
    without, _ = measure(True, repeats)
    with_ours, optuna_loaded = measure(False, repeats)
    print(f"plugin scan, median of {repeats} fresh interpreters:")
    print(f"  without clara-hydra's plugins: {without * 1000:.0f} ms")
    print(f"  with them:                     {with_ours * 1000:.0f} ms (+{(with_ours - without) * 1000:.0f} ms)")
    print(f"  optuna imported by the scan:   {'yes' if optuna_loaded else 'no'}")


if __name__ == "__main__":
    main()
