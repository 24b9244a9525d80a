"""A sweep whose trials are SLURM jobs, on a real single-node SLURM cluster started here
(tests/slurm_cluster.py: slurmctld, slurmd, slurmdbd with MariaDB, munge; Debian's packages,
installed when missing). The launcher is the README's SLURM example
(examples/conf/hydra/launcher/slurm_example.yaml, hydra-submitit-launcher), changed only where
this cluster differs from a site's (partition, no GPUs, memory); the trials share a journal-file
study, as on a shared file system."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, clara_cli
from slurm_cluster import SlurmCluster, install, installed
from test_mmar import make_mmar, synth_data
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


def _requeue(slurm, job: str) -> None:
    """``scontrol requeue`` (what a preemption does to a requeueable job), then let it start again
    at once: SLURM holds a requeued job for two minutes first."""
    subprocess.run(["scontrol", "requeue", job], env=slurm.env, check=True, capture_output=True)
    for _ in range(300):
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], env=slurm.env, capture_output=True,
                               text=True).stdout.strip()
        if state == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=slurm.env, check=True,
                           capture_output=True)
            return
        time.sleep(0.2)
    raise AssertionError(f"the requeued job {job} never went back to PENDING")


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


def test_a_requeued_training_job_continues_its_trial_from_its_last_epoch(tmp_path, slurm):
    """A preemption of real training: requeued after its first epoch, the job runs again in the
    trial's folder and continues from the trial's resume point (the epoch after it), to the end."""
    mmar = make_mmar(tmp_path / "mmar", synth_data(tmp_path / "data", train=2, val=1))
    _with_example(mmar / "conf" / "config_train.yaml")
    sweep_dir = tmp_path / "sweep"
    run = subprocess.Popen(
        clara_cli() + ["train", "--mmar", str(mmar), "-m", *LOCAL, _storage(tmp_path), "hydra.sweeper.params=null",
                       "epochs=100", "hydra.sweeper.n_trials=1", "hydra.sweeper.pruner=none",
                       "hydra.sweeper.export_best=false", f"hydra.sweep.dir={sweep_dir}"],
        cwd=tmp_path, env=slurm.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    point = sweep_dir / "0" / "models" / "resume.ckpt.json"
    deadline = time.time() + 180
    while not point.exists() and time.time() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert point.exists(), "the trial never finished an epoch"
    job = subprocess.run(["squeue", "-h", "-o", "%i"], env=slurm.env, capture_output=True, text=True).stdout.split()[0]
    _requeue(slurm, job)
    out, _ = run.communicate(timeout=300)
    assert run.returncode == 0, out[-3000:]
    (trial,) = rows(sweep_dir / "trials.csv")
    assert trial["state"] == "complete", trial
    log = (sweep_dir / "0" / "train.log").read_text()
    resumed = re.search(r"resuming after epoch (\d+)/100", log)
    assert resumed, log[-2000:]
    after = re.search(r"epoch (\d+)/100, loss", log[resumed.end():])
    assert after and int(after.group(1)) == int(resumed.group(1)) + 1  # on from the epoch after its point
    assert sorted({int(e) for e in re.findall(r"epoch (\d+)/100, loss", log)}) == list(range(1, 101))
    (best,) = (sweep_dir / "0" / "models").glob("*_key_metric=*.pt")  # the first run's later bests are gone
    assert float(best.stem.split("=")[1]) == pytest.approx(float(trial["value"]), abs=1e-4)
    _accounted(slurm, lambda jobs: [j[2] for j in jobs] == ["REQUEUED", "COMPLETED"], "-D", "-j", job.split("_")[0],
               "-o", "JobID,JobName,State", name="app")  # (clara-hydra train: the app module)
