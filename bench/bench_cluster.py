"""Cluster utilisation (issue 26): a sweep whose trials are SLURM jobs of unequal length, run in
batches of n_jobs (the stock way, ``hydra.sweeper.asynchronous=false``: each batch one job array
that waits for its slowest job) against asynchronous submission (a trial submitted as soon as a
slot frees up), on the tests' single-node SLURM cluster (tests/slurm_cluster.py: started here,
stopped after; root and Debian's packages).

    python bench/bench_cluster.py [--trials 6] [--epochs 4 1 1] [--epoch-seconds 3] [--n-jobs 2] [--repeats 2]

The trials are the tests' stand-in task (tests/standin/sweep_task.py) with TRIAL_EPOCHS: trial n
trains ``epochs[n % len(epochs)]`` epochs of ``--epoch-seconds`` each (a sleep: the cluster's
scheduling, not the CPU, is measured; the node has as many slots as n_jobs). Reported per mode
(runs interleaved): the sweep's wall time; the share of slot time (n_jobs x wall) that trained
(the epochs' seconds) and that jobs held (SLURM's start to end, Python start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

LOCAL = ["hydra/launcher=slurm_example", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=null",
         "hydra.launcher.mem_gb=null", "hydra.launcher.cpus_per_task=1", "hydra.launcher.setup=null",
         "hydra.launcher.timeout_min=10"]
CONFIG = {"x": 0.5, "search": [{"domain": "net", "type": "float", "args": ["x"], "targets": [0.0, 1.0]}],
          "train": {"model": {"name": "UNet", "args": {}}}}


def _conf(folder: str) -> str:
    """The stand-in's converted config, with the README's SLURM launcher config beside it."""
    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    src = os.path.join(folder, "cfg.json")
    with open(src, "w") as fh:
        json.dump(CONFIG, fh)
    path = write(convert(analyse(CONFIG, file=src)), os.path.join(folder, "conf"))
    shutil.copytree(os.path.join(ROOT, "examples", "conf", "hydra"), os.path.join(folder, "conf", "hydra"))
    return path


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def sweep(cluster, conf: str, folder: str, *, asynchronous: bool, a) -> dict:
    before = {line.split("|")[0] for line in cluster.sacct("-o", "JobID").splitlines()}
    env = dict(cluster.env, TRIAL_EPOCHS=",".join(str(e) for e in a.epochs), EPOCH_SECONDS=str(a.epoch_seconds))
    cmd = [sys.executable, os.path.join(ROOT, "tests", "standin", "sweep_task.py"), "-m",
           "--config-dir", os.path.dirname(conf), "--config-name", os.path.splitext(os.path.basename(conf))[0],
           f"hydra.sweep.dir={folder}/sweep", "hydra.sweeper.export_best=false", *LOCAL,
           f"hydra.sweeper.storage=journal:{folder}/study.journal", f"hydra.sweeper.n_trials={a.trials}",
           f"hydra.sweeper.n_jobs={a.n_jobs}", "hydra.sweeper.pruner=none",
           f"hydra.sweeper.asynchronous={str(asynchronous).lower()}"]
    start = time.time()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.time() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the sweep failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    for _ in range(60):  # (slurmdbd records a job's end a moment after it ends)
        jobs = [line.split("|") for line in cluster.sacct("-o", "JobID,Start,End,State").splitlines()]
        ours = [j for j in jobs if j[0] not in before and j[0].split("_")[0] not in before]
        if len(ours) == a.trials and all(j[2] not in ("Unknown", "") for j in ours):
            break
        time.sleep(1)
    held = sum(_seconds(j[2]) - _seconds(j[1]) for j in ours)
    trained = sum(a.epochs[n % len(a.epochs)] for n in range(a.trials)) * a.epoch_seconds
    slots = a.n_jobs * wall
    return {"wall": wall, "trained": trained / slots, "held": held / slots, "jobs": len(ours)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=6)
    ap.add_argument("--epochs", type=int, nargs="+", default=[4, 1, 1])
    ap.add_argument("--epoch-seconds", type=float, default=3.0)
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    from slurm_cluster import SlurmCluster, install, installed
    if not installed():
        install()
    cluster = SlurmCluster().start()
    runs: dict[str, list[dict]] = {"batches (asynchronous=false)": [], "asynchronous": []}
    try:
        tmp = tempfile.mkdtemp(prefix="clara-bench-cluster-")
        conf = _conf(tmp)
        for i in range(a.repeats):  # interleaved: the modes meet the same machine
            for mode, asynchronous in (("batches (asynchronous=false)", False), ("asynchronous", True)):
                folder = os.path.join(tmp, f"{i}-{asynchronous}")
                os.makedirs(folder)
                runs[mode].append(sweep(cluster, conf, folder, asynchronous=asynchronous, a=a))
                print(mode, runs[mode][-1], flush=True)
    finally:
        cluster.stop()
    lengths = [a.epochs[n % len(a.epochs)] for n in range(a.trials)]
    print(f"\n{a.trials} trials of {', '.join(map(str, lengths))} epochs x {a.epoch_seconds:g}s, n_jobs={a.n_jobs}, "
          f"{a.repeats} run(s) per mode, interleaved (median, min-max)")
    print("| mode | sweep wall time (s) | slot time that trained | slot time jobs held |")
    print("|---|---|---|---|")
    def cell(got: list[dict], key: str, fmt: str) -> str:
        values = [r[key] for r in got]
        return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"
    for mode, got in runs.items():
        print(f"| {mode} | {cell(got, 'wall', '.1f')} | {cell(got, 'trained', '.0%')} | {cell(got, 'held', '.0%')} |")


if __name__ == "__main__":
    main()
