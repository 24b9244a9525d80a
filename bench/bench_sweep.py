"""Sweep benchmarks (issue 4), each side by side in one run.

  overhead: per-trial cost of the clara_optuna sweeper (launcher, compose, build; no training)
            against a bare Optuna ask/tell loop calling the same compose + build, both on a new
            SQLite study each time with TPE seeded the same, in interleaved pairs (median ratio,
            with its min and max).
  cache:    time to start (build, data included) trial 2 of a sweep, with and without the
            sweep's shared data cache.

    python bench/bench_sweep.py overhead [--trials 10] [--pairs 5]
    python bench/bench_sweep.py cache [--volumes 16]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def sweep_seconds(n: int, tmp: str, name: str, startup: int) -> float:
    """A clara_optuna sweep of ``n`` build-only trials, its study in a new SQLite file (what a
    converted config uses), TPE seeded with ``startup`` start-up trials."""
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "build_task.py"), "-m", f"hydra.sweeper.n_trials={n}",
                    f"hydra.sweeper.storage=sqlite:///{tmp}/{name}.db", f"hydra.sweeper.study_name={name}",
                    f"hydra.sweeper.startup_trials={startup}", f"hydra.sweep.dir={tmp}/{name}",
                    "hydra.sweeper.pruner=none"], check=True, capture_output=True, cwd=tmp)
    return time.perf_counter() - start


def overhead(trials: int, pairs: int, startup: int = 2) -> None:
    """Per-trial cost, ours against a bare Optuna ask/tell loop in one process calling the same
    compose + build: the same storage (a new SQLite file each), the same sampler (TPE, seed 0,
    ``startup`` start-up trials), in ``pairs`` interleaved pairs."""
    import statistics

    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from bench.build_task import build_only
    from bench.pairs import interleaved, spread
    from clara_hydra.resolve import compose
    from clara_hydra.sweep.upstream import distribution as create_optuna_distribution_from_override
    from clara_hydra.synth import builtin

    builtin()
    tmp = tempfile.mkdtemp(prefix="clara-bench-sweep-")
    import yaml
    doc = yaml.safe_load(open(os.path.join(ROOT, "examples", "conf", "demo_v41.yaml")))
    parser = OverridesParser.create()
    dists = {k: create_optuna_distribution_from_override(parser.parse_override(f"{k}={v}"))
             for k, v in doc["hydra"]["sweeper"]["params"].items()}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    conf_dir = os.path.join(ROOT, "examples", "conf")
    build_only(compose(conf_dir, "demo_v41", []), tmp)  # warm-up: imports, first data cache

    def ours(i: int) -> float:  # (T(1 + trials) - T(1)) / trials: process start-up and imports cancel out
        return (sweep_seconds(1 + trials, tmp, f"n{i}", startup) - sweep_seconds(1, tmp, f"one{i}", startup)) / trials

    def bare(i: int) -> float:
        study = optuna.create_study(direction="maximize", storage=f"sqlite:///{tmp}/bare{i}.db",
                                    sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=startup))
        start = time.perf_counter()
        for _ in range(trials):
            trial = study.ask(dists)
            cfg = compose(conf_dir, "demo_v41", [f"{k}={v}" for k, v in trial.params.items()])
            study.tell(trial, build_only(cfg, tmp))
        return (time.perf_counter() - start) / trials

    a, b = interleaved(ours, bare, pairs)
    low, mid, high = spread(a, b)
    ours_s, bare_s = statistics.median(a), statistics.median(b)
    print(f"| per-trial overhead, {trials} trials of examples/conf/demo_v41.yaml (compose + build, no training), "
          f"SQLite, TPE seed 0 with {startup} start-up trials, {pairs} interleaved pairs | {ours_s:.3f} s | "
          f"{bare_s:.3f} s | {low:.2f} / {mid:.2f} / {high:.2f}x |")


def cache(volumes: int, repeats: int = 3) -> None:
    import statistics

    from clara_hydra.synth import write
    tmp = tempfile.mkdtemp(prefix="clara-bench-cache-")
    env = write(os.path.join(tmp, "data"), n_train=volumes, n_val=2, shape=(96, 96, 96))
    out: dict[str, list[float]] = {"with": [], "without": []}
    for r in range(repeats):
        for label, shared in (("with", "1"), ("without", "0")):
            proc = subprocess.run(
                [sys.executable, os.path.join(ROOT, "train.py"), "-m", "--config-name", "demo_v41",
                 "hydra.sweeper.n_trials=2", "hydra.sweeper.storage=null", "hydra.sweeper.pruner=none", "epochs=1",
                 f"DATASET_JSON={env['DATASET_JSON']}", f"DATA_ROOT={env['DATA_ROOT']}",
                 f"hydra.sweep.dir={tmp}/{label}{r}"],
                capture_output=True, text=True, cwd=tmp, env=dict(os.environ, CLARA_HYDRA_SHARED_CACHE=shared))
            builds = [float(x) for x in re.findall(r"built in ([\d.]+)s", proc.stderr)]
            if proc.returncode or len(builds) < 2:
                raise SystemExit(proc.stderr[-2000:])
            out[label].append(builds[1])
    w, wo = statistics.median(out["with"]), statistics.median(out["without"])
    print(f"| time to start trial 2 ({volumes}+2 volumes of 96^3, demo_v41; median of {repeats}) | {w:.2f} s "
          f"| {wo:.2f} s | {wo / max(w, 1e-9):.0f}x faster |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["overhead", "cache"])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--volumes", type=int, default=16)
    a = ap.parse_args()
    overhead(a.trials, a.pairs) if a.what == "overhead" else cache(a.volumes)
