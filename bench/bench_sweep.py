"""Sweep benchmarks (issue 4), each side by side in one run.

  overhead: per-trial cost of the clara_optuna sweeper (launcher, compose, build; no training)
            against a bare Optuna ask/tell loop calling the same compose + build.
  cache:    time to start (build, data included) trial 2 of a sweep, with and without the
            sweep's shared data cache.

    python bench/bench_sweep.py overhead [--trials 10]
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


def sweep_seconds(n: int, tmp: str, extra: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, os.path.join(ROOT, "bench", "build_task.py"), "-m", f"hydra.sweeper.n_trials={n}",
                    "hydra.sweeper.storage=null", f"hydra.sweep.dir={tmp}/s{n}", "hydra.sweeper.pruner=none"] + extra,
                   check=True, capture_output=True, cwd=tmp)
    return time.perf_counter() - start


def overhead(trials: int) -> None:
    import optuna
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from bench.build_task import build_only
    from clara_hydra.resolve import compose
    from clara_hydra.sweep.upstream import distribution as create_optuna_distribution_from_override
    from clara_hydra.synth import builtin

    builtin()
    tmp = tempfile.mkdtemp(prefix="clara-bench-sweep-")
    # ours: (T(1 + trials) - T(1)) / trials, so process start-up and imports cancel out
    t1 = sweep_seconds(1, tmp, [])
    tn = sweep_seconds(1 + trials, tmp, [])
    ours = (tn - t1) / trials
    # bare: optuna ask/tell in one process, same compose + build per trial
    import yaml
    doc = yaml.safe_load(open(os.path.join(ROOT, "examples", "conf", "demo_v41.yaml")))
    parser = OverridesParser.create()
    dists = {k: create_optuna_distribution_from_override(parser.parse_override(f"{k}={v}"))
             for k, v in doc["hydra"]["sweeper"]["params"].items()}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    conf_dir = os.path.join(ROOT, "examples", "conf")
    build_only(compose(conf_dir, "demo_v41", []), tmp)  # warm-up: imports, first data cache
    start = time.perf_counter()
    for _ in range(trials):
        trial = study.ask(dists)
        cfg = compose(conf_dir, "demo_v41", [f"{k}={v}" for k, v in trial.params.items()])
        study.tell(trial, build_only(cfg, tmp))
    bare = (time.perf_counter() - start) / trials
    print(f"| per-trial overhead, {trials} trials of examples/conf/demo_v41.yaml (compose + build, no training) | "
          f"{ours:.3f} s | {bare:.3f} s | {ours / bare:.2f}x |")


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
    ap.add_argument("--volumes", type=int, default=16)
    a = ap.parse_args()
    overhead(a.trials) if a.what == "overhead" else cache(a.volumes)
