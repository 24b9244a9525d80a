"""A sweep whose trials are SLURM jobs, on a real single-node SLURM cluster started here
(tests/slurm_cluster.py: slurmctld, slurmd, slurmdbd with MariaDB, munge; Debian's packages,
installed when missing). The launcher is the README's SLURM example
(examples/conf/hydra/launcher/slurm_example.yaml, hydra-submitit-launcher), changed only where
this cluster differs from a site's (partition, no GPUs, memory); the trials share a journal-file
study, as on a shared file system."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import ROOT, clara_cli
from slurm_cluster import SlurmCluster, install, installed
from test_mmar import make_mmar, synth_data
from test_sweeper import TASK, conf, rows, sweep  # noqa: F401  (conf is a fixture)

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


@pytest.fixture(autouse=True)
def _no_job_left(slurm):
    """Each test ends its SLURM jobs, passed or failed (its sweep process ended first: nothing
    submits any more): none runs on, its slurmstepd and training included, into the next test."""
    assert not slurm.jobs(), "a SLURM job is left from before this test"
    yield
    slurm.cancel_jobs()


def _with_example(config: Path) -> Path:
    """The user's conf/ folder with the README's SLURM launcher config copied in."""
    shutil.copytree(ROOT / "examples" / "conf" / "hydra", config.parent / "hydra", dirs_exist_ok=True)
    return config


def _storage(tmp_path: Path) -> str:
    return f"hydra.sweeper.storage=journal:{tmp_path / 'study.journal'}"


def test_a_sweep_runs_its_trials_as_slurm_jobs(tmp_path, conf, slurm):  # noqa: F811
    proc = sweep(_with_example(conf), tmp_path, *LOCAL, _storage(tmp_path), "hydra.sweeper.n_trials=4",
                 "hydra.sweeper.asynchronous=false",
                 "hydra.sweeper.n_jobs=2", "hydra.sweeper.pruner=median", env=slurm.env)  # (batches: stock)
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


def test_trials_never_wait_for_each_other_and_a_killed_sweep_re_attaches_to_its_jobs(tmp_path, conf, slurm):  # noqa: F811
    """n_jobs=2, trials of unequal length, by construction: each trial's job, its result known,
    waits for its own file before it ends (CLARA_HYDRA_FAULT, {trial}); trial 1's is there from
    the start. Trial 1 ends, and trial 2 is submitted at once while trial 0 still runs: in
    batches of n_jobs it would wait for trial 0, which never ends on its own. Then the sweep
    process is killed (kill -9) with trials 0 and 2 in flight, trial 2 ends while no sweep runs,
    and the same command is run again: it re-attaches to both jobs (no trial lost, none run
    twice: 4 SLURM jobs for 4 trials), tells their outcomes and runs the last trial."""
    before = {j.split("|")[0] for j in slurm.sacct("-o", "JobID").splitlines()}  # (earlier tests' jobs)
    waits = tmp_path / "waits"
    waits.mkdir()
    (waits / "go-1").touch()
    (waits / "go-3").touch()
    env = dict(slurm.env, CLARA_HYDRA_FAULT=f"before_outcome:touch={waits}/reached-{{trial}},wait={waits}/go-{{trial}}")
    args = [*LOCAL, _storage(tmp_path), "hydra.sweeper.n_trials=4", "hydra.sweeper.study_trials=4",
            "hydra.sweeper.n_jobs=2", "hydra.sweeper.pruner=none"]
    config = _with_example(conf)
    out = tmp_path / "first.out"
    with open(out, "w") as fh, _ended(subprocess.Popen(
            [sys.executable, str(TASK), "-m", "--config-dir", str(config.parent), "--config-name", config.stem,
             f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweeper.export_best=false", *args],
            cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)) as first:
        _wait((waits / "reached-2").exists, 120, "trial 2 running while trial 0 runs", first, out)
        assert not (waits / "reached-3").exists()  # (two slots: trial 3 waits for one)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert len(slurm.jobs()) == 2, _tail(out)  # the jobs of trials 0 and 2 run on without their sweep
    (waits / "go-2").touch()  # trial 2 ends while no sweep runs
    _wait(lambda: len(slurm.jobs()) == 1, 120, "trial 2's job ending")
    out = tmp_path / "again.out"
    with open(out, "w") as fh, _ended(subprocess.Popen(
            [sys.executable, str(TASK), "-m", "--config-dir", str(config.parent), "--config-name", config.stem,
             f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweeper.export_best=false", *args],
            cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)) as again:
        _wait(lambda: "trial #0: re-attached to its SLURM job" in _tail(out, 100_000), 120, "re-attaching", again,
              out)
        (waits / "go-0").touch()
        again.wait(timeout=300)
        assert again.returncode == 0, _tail(out)
    said = out.read_text()
    assert "2 running one(s) re-attached to their cluster jobs; this run: 1 trial(s)" in said, said[-3000:]
    assert "trial #2: re-attached to its SLURM job" in said
    trials = rows(tmp_path / "sweep" / "trials.csv")
    assert sorted(int(r["number"]) for r in trials) == [0, 1, 2, 3] and {r["state"] for r in trials} == {"complete"}
    ours = _accounted(slurm, lambda jobs: len([j for j in jobs if j[0] not in before]) == 4 and all(
        j[2] == "COMPLETED" for j in jobs if j[0] not in before), "-o", "JobID,JobName,State")
    assert len({j[0] for j in ours if j[0] not in before}) == 4  # one job per trial: none submitted twice


def test_ctrl_c_cancels_the_jobs_and_the_next_run_resumes_instead_of_re_attaching(tmp_path, conf, slurm):  # noqa: F811
    """Ctrl-C is a stop on purpose: the sweep cancels its job, and its trial (a resume point on
    disk, as after an epoch) stays resumable. The same command run again resumes the trial in a
    new job: it does not re-attach to the cancelled one (its record says so)."""
    before = {j.split("|")[0] for j in slurm.sacct("-o", "JobID").splitlines()}
    waits = tmp_path / "waits"
    waits.mkdir()
    env = dict(slurm.env, CLARA_HYDRA_FAULT=f"before_outcome:touch={waits}/reached-{{trial}},wait={waits}/go-{{trial}}")
    config = _with_example(conf)
    cmd = [sys.executable, str(TASK), "-m", "--config-dir", str(config.parent), "--config-name", config.stem,
           f"hydra.sweep.dir={tmp_path / 'sweep'}", "hydra.sweeper.export_best=false", *LOCAL, _storage(tmp_path),
           "hydra.sweeper.n_trials=1", "hydra.sweeper.study_trials=1", "hydra.sweeper.pruner=none"]
    out = tmp_path / "first.out"
    with open(out, "w") as fh, _ended(subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                                       start_new_session=True)) as first:
        _wait((waits / "reached-0").exists, 120, "trial 0 running", first, out)
        models = tmp_path / "sweep" / "0" / "models"  # (the resume point an epoch of training leaves)
        models.mkdir(parents=True, exist_ok=True)
        (models / "resume.ckpt").write_bytes(b"")
        (models / "resume.ckpt.json").write_text('{"epoch": 1}')
        os.killpg(first.pid, signal.SIGINT)
        first.wait(timeout=60)
    said = out.read_text()
    assert "trial #0: interrupted after epoch 1; run the sweep again to resume it" in said, said[-3000:]
    _wait(lambda: not slurm.jobs(), 60, "the cancelled job gone")
    (waits / "go-0").touch()
    again = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "re-attached" not in again.stdout and "1 interrupted one(s) to resume" in again.stdout, again.stdout[-3000:]
    (trial,) = rows(tmp_path / "sweep" / "trials.csv")
    assert trial["state"] == "complete", trial
    ours = _accounted(slurm, lambda jobs: [j[2].split()[0] for j in jobs if j[0] not in before] == [
        "CANCELLED", "COMPLETED"], "-o", "JobID,JobName,State")
    assert len([j for j in ours if j[0] not in before]) == 2


def _requeue(slurm, job: str) -> None:
    """``scontrol requeue`` (what a preemption does to a requeueable job), then let it start again
    at once: SLURM holds a requeued job for two minutes first. On return the job's first run has
    ended: squeue says COMPLETING until its processes are gone, PENDING only after."""
    subprocess.run(["scontrol", "requeue", job], env=slurm.env, check=True, capture_output=True, timeout=30)
    _wait(lambda: _state(slurm, job) == "PENDING", 120, f"the requeued job {job} back to PENDING")
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=slurm.env, check=True,
                   capture_output=True, timeout=30)


def _state(slurm, job: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], env=slurm.env, capture_output=True, text=True,
                          timeout=30).stdout.strip()


def _wait(done: Callable[[], bool], seconds: float, what: str, run: subprocess.Popen | None = None,
          out: Path | None = None) -> None:
    """Until ``done()``, at most ``seconds`` (a bound for a broken run, not a timing: the tests
    wait for events); the sweep ``run``, where given, must not end meanwhile (its output ``out``)."""
    deadline = time.monotonic() + seconds
    while not done():
        if run is not None and run.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {run.returncode}) before {what}:\n{_tail(out)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} in {seconds:.0f}s\n{_tail(out)}")
        time.sleep(0.2)


def _tail(path: Path | None, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path is not None and path.exists() else ""


@contextlib.contextmanager
def _ended(run: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """The process (started with ``start_new_session=True``) and its process group are ended on
    the way out, however the test ends."""
    try:
        yield run
    finally:
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 30)):
            try:
                os.killpg(run.pid, sig)
            except ProcessLookupError:
                break  # the group is gone
            with contextlib.suppress(subprocess.TimeoutExpired):
                run.wait(timeout=grace)


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
    trial's folder and continues from the trial's resume point (the epoch after it), to the end.
    The job's first run waits after epoch 1 (its resume point written) until the requeue ends it
    (CLARA_HYDRA_FAULT, clara_hydra/faults.py): the same on an idle machine as on a loaded one."""
    mmar = make_mmar(tmp_path / "mmar", synth_data(tmp_path / "data", train=2, val=1))
    _with_example(mmar / "conf" / "config_train.yaml")
    sweep_dir = tmp_path / "sweep"
    reached, go = tmp_path / "epoch1.reached", tmp_path / "epoch1.go"
    # to the job through sbatch (submitit leaves --export at its default, ALL); SLURM keeps a job's
    # environment, so the requeued run has it too: it resumes after epoch 1 and never meets the rule
    env = dict(slurm.env, CLARA_HYDRA_FAULT=f"epoch_end@1:touch={reached},wait={go}")
    out = tmp_path / "sweep.out"
    with open(out, "w") as out_fh, _ended(subprocess.Popen(
            clara_cli() + ["train", "--mmar", str(mmar), "-m", *LOCAL, _storage(tmp_path),
                           "hydra.sweeper.params=null", "epochs=3", "hydra.sweeper.n_trials=1",
                           "hydra.sweeper.pruner=none", "hydra.sweeper.export_best=false",
                           f"hydra.sweep.dir={sweep_dir}"],
            cwd=tmp_path, env=env, stdout=out_fh, stderr=subprocess.STDOUT, start_new_session=True)) as run:
        _wait(reached.exists, 300, "trial finishing its first epoch", run, out)
        point = sweep_dir / "0" / "models" / "resume.ckpt.json"
        assert json.loads(point.read_text())["epoch"] == 1
        (job,) = [j for j in slurm.jobs() if _state(slurm, j) == "RUNNING"]
        _requeue(slurm, job)
        # the first run is gone (_requeue): `go` can only let through a requeued run that trains
        # epoch 1 again, instead of resuming after it (the log below would show it)
        go.touch()
        bound = 300
        try:
            run.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the sweep did not end in {bound}s after the requeue\n{_tail(out)}") from None
        assert run.returncode == 0, _tail(out)
    (trial,) = rows(sweep_dir / "trials.csv")
    assert trial["state"] == "complete", trial
    log = (sweep_dir / "0" / "train.log").read_text()
    assert re.findall(r"resuming after epoch (\d+)/3", log) == ["1"], log[-3000:]  # once, from the first run's point
    first, resumed = log.split("resuming after epoch", 1)

    def trained(text: str) -> list[int]:
        return [int(e) for e in re.findall(r"epoch (\d+)/3, loss", text)]
    # epoch 1: trained and logged by the first run, which the requeue ended while it waited at the
    # fault point (after the epoch's resume point and line)
    assert trained(first) == [1], first[-3000:]
    assert trained(resumed) == [2, 3], resumed[-3000:]  # on from the epoch after its point, each epoch once
    (best,) = (sweep_dir / "0" / "models").glob("*_key_metric=*.pt")  # the first run's later bests are gone
    assert float(best.stem.split("=")[1]) == pytest.approx(float(trial["value"]), abs=1e-4)
    _accounted(slurm, lambda jobs: [j[2] for j in jobs] == ["REQUEUED", "COMPLETED"], "-D", "-j", job.split("_")[0],
               "-o", "JobID,JobName,State", name="app")  # (clara-hydra train: the app module)
