"""A sweep whose trials are SLURM jobs, on a real single-node SLURM cluster started here
(tests/slurm_cluster.py: slurmctld, slurmd, slurmdbd with MariaDB, munge; Debian's packages,
installed when missing). The launcher is the README's SLURM example
(examples/conf/hydra/launcher/slurm_example.yaml, hydra-submitit-launcher), changed only where
this cluster differs from a site's (partition, no GPUs, memory); the trials share a journal-file
study, as on a shared file system."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT
from slurm_cluster import SlurmCluster, install, installed
from test_sweeper import conf, rows, sweep  # noqa: F401  (conf is a fixture)

pytestmark = pytest.mark.slow

#: where this test cluster differs from the example's site
LOCAL = ["hydra/launcher=slurm_example", "hydra.launcher.partition=debug", "hydra.launcher.gpus_per_node=null",
         "hydra.launcher.mem_gb=null", "hydra.launcher.cpus_per_task=1", "hydra.launcher.setup=null",
         "hydra.launcher.timeout_min=10"]


@pytest.fixture(scope="module")
def slurm():
    if not installed():
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("SLURM is not installed and cannot be installed here (needs root and apt-get)")
        install()
    cluster = SlurmCluster().start()
    yield cluster
    cluster.stop()


def _with_example(config: Path) -> Path:
    """The user's conf/ folder with the README's SLURM launcher config copied in."""
    shutil.copytree(ROOT / "examples" / "conf" / "hydra", config.parent / "hydra", dirs_exist_ok=True)
    return config


def _storage(tmp_path: Path) -> str:
    return f"hydra.sweeper.storage=journal:{tmp_path / 'study.journal'}"


def test_a_sweep_runs_its_trials_as_slurm_jobs(tmp_path, conf, slurm):  # noqa: F811
    proc = sweep(_with_example(conf), tmp_path, *LOCAL, _storage(tmp_path), "hydra.sweeper.n_trials=4",
                 "hydra.sweeper.n_jobs=2", "hydra.sweeper.pruner=median", env=slurm.env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    trials = rows(tmp_path / "sweep" / "trials.csv")
    assert sorted(int(r["number"]) for r in trials) == [0, 1, 2, 3]  # none lost, none twice
    assert {r["state"] for r in trials} <= {"complete", "pruned"} and trials[0]["state"] == "complete"
    import optuna
    study = optuna.load_study(study_name="cfg", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "study.journal"))))
    assert all(t.state.is_finished() for t in study.trials) and len(study.trials) == 4
    ours = _accounted(slurm, lambda jobs: len(jobs) == 4 and {j[2] for j in jobs} == {"COMPLETED"},
                      "-o", "JobID,JobName,State")
    assert len({j[0].split("_")[0] for j in ours}) == 2  # two arrays of n_jobs=2


def _accounted(slurm, done, *args: str, name: str = "sweep_task") -> list[list[str]]:
    """The test's jobs as sacct lists them, once ``done(jobs)`` (slurmdbd records a job's end a
    moment after it ends)."""
    deadline = time.time() + 30
    while True:
        jobs = [line.split("|") for line in slurm.sacct(*args).splitlines()]
        ours = [j for j in jobs if j[1] == name]
        if done(ours) or time.time() > deadline:
            assert done(ours), jobs
            return ours
        time.sleep(0.5)


def test_a_requeued_job_runs_its_trial_again_and_the_trial_completes(tmp_path, conf, slurm):  # noqa: F811
    """SLURM requeues a running job (a preemption does the same): the job starts again for the
    same trial, which then completes; nothing is lost or counted twice."""
    run = sweep(_with_example(conf), tmp_path, *LOCAL, _storage(tmp_path), "hydra.sweeper.n_trials=1",
                "hydra.sweeper.pruner=none", env=dict(slurm.env, SLOW_TRIAL="0", SLOW_SECONDS="4"), wait=False)
    job = None
    deadline = time.time() + 120
    while job is None and time.time() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "RUNNING", "-o", "%i"], env=slurm.env, capture_output=True,
                             text=True).stdout.split()
        job = out[0] if out else None
        time.sleep(0.5)
    assert job, "the trial's job never ran"
    time.sleep(1)
    subprocess.run(["scontrol", "requeue", job], env=slurm.env, check=True, capture_output=True)
    for _ in range(100):  # SLURM holds a requeued job two minutes before it may start again: not here
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], env=slurm.env, capture_output=True,
                               text=True).stdout.strip()
        if state == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=slurm.env, check=True,
                           capture_output=True)
            break
        time.sleep(0.2)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out[-3000:]
    (trial,) = rows(tmp_path / "sweep" / "trials.csv")
    assert trial["state"] == "complete", trial
    _accounted(slurm, lambda jobs: [j[2] for j in jobs] == ["REQUEUED", "COMPLETED"], "-D", "-j", job.split("_")[0],
               "-o", "JobID,JobName,State")
