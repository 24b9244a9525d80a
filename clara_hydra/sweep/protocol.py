"""The protocol between a sweep and its trials, in one place.

The ``clara_optuna`` sweeper hands a job its trial through environment variables (in-process
launchers, SLURM jobs and worker processes alike); a worker process answers with an outcome file;
trial user attributes record what people read in ``trials.csv``. ``train.py`` (through
``clara_hydra.train.entry``), the sweeper, ``sweep.results`` and the tests' stand-in task all use
these names. Pure: no Optuna, no torch.
"""

from __future__ import annotations

import json
import os
from typing import Any, Literal

# -- environment of a job ------------------------------------------------------------------
ENV_TRIAL = "CLARA_HYDRA_TRIAL"  # the trial number
ENV_STUDY = "CLARA_HYDRA_STUDY"  # the study name
ENV_STORAGE = "CLARA_HYDRA_STORAGE"  # the storage URL, for jobs in other processes
ENV_PRUNER = "CLARA_HYDRA_PRUNER"  # the sweep's pruner (JSON), so other processes prune alike
ENV_RESULT = "CLARA_HYDRA_RESULT"  # a worker process: where it writes its outcome
ENV_CACHE_DIR = "CLARA_HYDRA_CACHE_DIR"  # the sweep's data cache folder (shared across workers)
ENV_SHARED_CACHE = "CLARA_HYDRA_SHARED_CACHE"  # "0": trials do not share cached data
ENV_TRIAL_TIMEOUT = "CLARA_HYDRA_TRIAL_TIMEOUT"  # seconds a trial may run (Clara's max_job_run_time)
ENV_OBJECTIVES = "CLARA_HYDRA_OBJECTIVES"  # a multi-objective sweep: the values a job returns (JSON list)
ENV_HEARTBEAT = "CLARA_HYDRA_HEARTBEAT"  # seconds between a trial's heartbeats (a job in another process beats)
ENV_NPROC = "CLARA_HYDRA_NPROC"  # the processes a job trains in (DDP): a worker's GPUs, or N CPU processes

# -- what a job can return, by name (hydra.sweeper.objectives) -------------------------------
KEY_METRIC = "key_metric"  # the key validation metric (its best value): Clara's score
TRAIN_TIME = "train_time"  # seconds of training (validation included)

# -- the outcome a worker process writes -----------------------------------------------------
RESULT_FILE = "clara_trial_result.json"
State = Literal["complete", "pruned", "fail"]
COMPLETE: State = "complete"
PRUNED: State = "pruned"
FAIL: State = "fail"

# -- trial user attributes -------------------------------------------------------------------
ATTR_REASON = "clara_reason"  # why a trial failed or was pruned
ATTR_DURATION = "duration_s"  # how long its job ran (the job times itself where it can)
ATTR_JOB_DIR = "job_dir"  # its run folder
ATTR_PID = "clara_pid"  # the sweep process that asked for it
ATTR_HOST = "clara_host"  # the machine of that process
ATTR_WORKER_PID = "clara_worker_pid"  # the worker process that runs it
ATTR_CLUSTER_JOB = "clara_cluster_job"  # its cluster job: {"id", "folder" (submitit's), "cluster": "slurm"}
ATTR_RECOMMENDATION = "clara_recommendation"  # the id of the recommendation a Clara controller made for it
ATTR_OBJECTIVES = "clara_objectives"  # a study attribute: the names of a multi-objective sweep's values
INTERRUPTED = "interrupted: the sweep stopped while this trial ran"
#: a trial interrupted after an epoch that saved its resume point: it stays RUNNING, and the next
#: run of the sweep continues it (same number, same params, from that epoch)
RESUMABLE = "interrupted: resumes from its last epoch when the sweep runs again"
ATTR_RESUMABLE = "clara_resumable"  # set (to the epoch it resumes after) on such a trial

# -- a trial's resume point ------------------------------------------------------------------
RESUME_FILE = "resume.ckpt"  # in the trial's models/ folder: the state after its last whole epoch


def resume_file(job_dir: str) -> str:
    return os.path.join(job_dir, "models", RESUME_FILE)


def resume_epoch(job_dir: str) -> int | None:
    """The epoch a trial's resume point was written after (its ``.json`` beside; None: unknown)."""
    try:
        with open(resume_file(job_dir) + ".json") as fh:
            return int(json.load(fh)["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def in_worker() -> bool:
    """Is this job a worker process of the clara_optuna sweeper (it answers with a file)?"""
    return bool(os.environ.get(ENV_RESULT))


def remove_resume_point(job_dir: str) -> None:
    """The trial's resume point goes (it ended: completed, pruned or failed)."""
    import glob
    path = resume_file(job_dir)
    claims = glob.glob(os.path.join(glob.escape(os.path.dirname(path)), ".claim-*"))  # (liveness.claim's files)
    for name in (path, path + ".tmp", path + ".json", *claims):
        if os.path.exists(name):
            os.remove(name)


def outcome_file(job_dir: str) -> str:
    return os.path.join(job_dir, RESULT_FILE)


def write_outcome(state: State, *, value: float | list[float] | None = None, reason: str | None = None,
                  path: str | None = None) -> None:
    """A sweep job's outcome, written atomically into its folder (``path``; a worker's: the file
    its sweep reads), with the study and trial it is of: the sweep tells it, and a sweep that
    recovers the trial after a crash finds it there. No-op outside a sweep's job."""
    path = path or os.environ.get(ENV_RESULT)
    if not path:
        return
    outcome: dict[str, Any] = {"state": state, "study": os.environ.get(ENV_STUDY), "trial": os.environ.get(ENV_TRIAL)}
    if value is not None:
        outcome["value"] = value
    if reason is not None:
        outcome["reason"] = reason
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(outcome, fh)
    os.replace(tmp, path)


def read_outcome(path: str | os.PathLike, *, study: str | None = None, trial: int | None = None) -> dict | None:
    """The outcome a job wrote, or None when it wrote none (it crashed first), or (``study``,
    ``trial`` given) when it is another trial's (an earlier sweep's in the same folder)."""
    try:
        with open(path) as fh:
            outcome = json.load(fh)
    except (OSError, ValueError):
        return None
    if not isinstance(outcome, dict) or outcome.get("state") not in (COMPLETE, PRUNED, FAIL):
        return None
    if study is not None and (outcome.get("study") != study or str(outcome.get("trial")) != str(trial)):
        return None
    return outcome
