"""The ways a sweep runs its trials (:class:`.loop.Runner`): Hydra's launcher (in-process by
default; a SLURM array with hydra-submitit-launcher) and Clara's workers (subprocesses, each with
its own GPUs, that report through the storage). Each takes a :class:`.loop.Job` and gives back an
:class:`.loop.Ended`; the sweep loop does the rest."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from hydra.core.utils import JobStatus
from omegaconf import DictConfig

from .. import procs, progress
from ..errors import ClaraHydraError, first_line
from ..logs import notice
from ..paths import config_dirs
from ..private import hydra as private_hydra
from . import trial as trial_ctx
from .loop import Ended, Job
from .options import parse_workers
from .outcomes import exit_cause
from .protocol import ATTR_WORKER_PID, ENV_NPROC, ENV_RESULT, RESULT_FILE, outcome_file, read_outcome

LAUNCHER_LOGGERS = ("hydra._internal.core_plugins.basic_launcher",
                    "hydra_plugins.hydra_submitit_launcher.submitit_launcher")


class _HidePlumbing(logging.Filter):
    """Drop the sweeper's internal overrides (job environment, job folder) from launch lines, and
    show a sampled number as the trial's line does (4 significant digits; the job gets it whole)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "hydra." in record.msg:
            record.msg = re.sub(r" ?\+\+hydra\.job\.env_set\.CLARA_HYDRA_\w+=(?:'(?:[^'\\]|\\.)*'|\S+)|"
                                r" ?hydra\.sweep\.subdir=\S+", "", record.msg)
            record.msg = re.sub(r"(?<==)-?\d+\.\d{5,}(?:[eE][-+]?\d+)?(?=\s|$)",
                                lambda m: f"{float(m.group(0)):.4g}", record.msg)
        return True


def hide_plumbing() -> None:
    """The launchers' "#N : ..." lines show the user's overrides, not the sweep's plumbing."""
    for name in LAUNCHER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HidePlumbing) for f in logger.filters):
            logger.addFilter(_HidePlumbing())


def quote(value: str) -> str:
    return value if all(c.isalnum() or c in "/._-:" for c in value) else "'" + value.replace("'", "\\'") + "'"


def launch_overrides(job: Job) -> list[str]:
    """A job's overrides as a launcher gets them: the trial's, its environment, its folder."""
    overrides = job.overrides + [f"++hydra.job.env_set.{k}={quote(v)}" for k, v in job.env.items()]
    return overrides + [f"hydra.sweep.dir={quote(str(job.job_dir.parent))}", f"hydra.sweep.subdir={job.job_dir.name}"]


def from_return(job: Job, start: float, ret: Any) -> Ended:
    """A Hydra job's return (its value, or what it raised) as the job's outcome."""
    if ret.status == JobStatus.COMPLETED:
        return Ended(job, start, "complete", value=ret.return_value)
    exc = private_hydra.job_exception(ret)
    if isinstance(exc, optuna.TrialPruned):
        return Ended(job, start, "pruned", reason=str(exc))
    return Ended(job, start, "fail", reason=first_line(exc), error=f"{type(exc).__name__}: {first_line(exc)}")


class LauncherRunner:
    """Batches of n_jobs trials through Hydra's launcher; each job's folder is its trial number and
    its outcome the task's return (or exception)."""

    def __init__(self, launcher: Any, n_jobs: int, study_name: str) -> None:
        self.launcher, self.n_jobs, self.study_name = launcher, max(1, int(n_jobs)), study_name
        self.batch: list[tuple[Job, list[str]]] = []

    def free(self) -> int:
        return self.n_jobs - len(self.batch)

    def busy(self) -> bool:
        return bool(self.batch)

    def start(self, job: Job) -> None:
        overrides = launch_overrides(job)
        Path(outcome_file(str(job.job_dir))).unlink(missing_ok=True)  # never an earlier run's outcome
        trial_ctx.register(self.study_name, job.trial)
        self.batch.append((job, overrides))

    def wait(self) -> list[Ended]:
        if not self.batch:
            return []
        start = time.time()
        try:
            returns = self.launcher.launch([ov for _, ov in self.batch], initial_job_idx=self.batch[0][0].trial.number)
        finally:
            for job, _ in self.batch:
                trial_ctx.unregister(self.study_name, job.trial.number)
        batch, self.batch = self.batch, []
        return [from_return(job, start, ret) for (job, _), ret in zip(batch, returns)]

    def stop(self) -> list[Any]:
        trials = [job.trial for job, _ in self.batch]
        self.batch = []
        return trials


class WorkerRunner:
    """Clara's workers: one subprocess per trial (the same Hydra app, ``hydra.run.dir`` its trial's
    folder) on each worker's GPUs, watched until it ends or passes ``trial_timeout``; it writes its
    outcome to a file beside its log (``worker.log``). Each epoch line of a log is said in the
    sweep's console too, with its trial (``trial #3: epoch 2/10, loss ...``)."""

    def __init__(self, workers: Any, storage_spec: Any, config: DictConfig, trial_timeout: float | None) -> None:
        self.slots = parse_workers(workers)
        if not storage_spec:
            raise ClaraHydraError("workers need a persistent storage, so that worker processes can report to "
                                  "their trials; storage is null", location="hydra.sweeper.storage",
                                  hint="set hydra.sweeper.storage=sqlite:///clara_hydra_sweeps.db (or "
                                       "postgresql://..., journal:PATH)")
        self.cuda = cuda_count() > 0
        if not self.cuda:
            size = max(len(s) for s in self.slots)
            notice(f"no CUDA: running {len(self.slots)} CPU worker(s)" + (", a trial of several GPUs in as many CPU "
                                                                          "processes (DDP, gloo)" if size > 1 else ""))
        self.base = base_command(config)
        self.trial_timeout = trial_timeout
        self.running: dict[int, tuple[Job, subprocess.Popen, float, Any]] = {}
        self.read: dict[int, int] = {}  # trial number -> how far its log is read

    def free(self) -> int:
        return len(self.slots) - len(self.running)

    def busy(self) -> bool:
        return bool(self.running)

    def start(self, job: Job) -> None:
        slot = next(s for s in range(len(self.slots)) if s not in self.running)
        gpus = self.slots[slot]
        job.job_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, **job.env)
        result_file = job.job_dir / RESULT_FILE
        result_file.unlink(missing_ok=True)  # never read an outcome of an earlier sweep
        env[ENV_RESULT] = str(result_file)
        if not self.cuda:
            env["CUDA_VISIBLE_DEVICES"] = ""
        elif gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        # (a worker given as a count keeps the GPUs this process sees)
        env.pop(ENV_NPROC, None)  # the worker's GPUs say how many processes a trial trains in
        if len(gpus) > 1:  # a trial of several GPUs trains with DDP (without CUDA: CPU processes)
            env[ENV_NPROC] = str(len(gpus))
        cmd = self.base + job.overrides + [f"hydra.run.dir={quote(str(job.job_dir))}"]
        logf = open(job.job_dir / "worker.log", "w")
        self.read[job.trial.number] = 0  # (a trial resumed after its worker died: its log starts again)
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, cwd=os.getcwd(),
                                preexec_fn=procs.die_with_parent)
        job.trial.set_user_attr(ATTR_WORKER_PID, proc.pid)
        where = ("GPU " + ",".join(gpus) if gpus else "all GPUs") if self.cuda else "CPU"
        notice(f"trial #{job.trial.number} on worker {slot} ({where}): {' '.join(job.overrides)}")
        self.running[slot] = (job, proc, time.time(), logf)

    def wait(self) -> list[Ended]:
        time.sleep(0.2)
        ended = []
        for slot, (job, proc, start, logf) in list(self.running.items()):
            self._epoch_lines(job)
            if proc.poll() is None:
                if self.trial_timeout is None or time.time() - start < self.trial_timeout:
                    continue
                procs.stop(proc)  # past its time limit (the job also stops itself, where it trains)
                logf.close()
                del self.running[slot]
                ended.append(Ended(job, start, "fail", reason=f"stopped at the trial time limit "
                                                              f"(trial_timeout={self.trial_timeout:g}s)"))
                continue
            logf.close()
            del self.running[slot]
            self._epoch_lines(job)  # (what it wrote before it ended)
            outcome = read_outcome(job.job_dir / RESULT_FILE)
            if outcome is not None:
                ended.append(from_outcome(job, start, outcome))
            else:
                ended.append(Ended(job, start, None, cause=exit_cause(proc.returncode),
                                   log_line=_last_error_line(job.job_dir / "worker.log")))
        return ended

    def _epoch_lines(self, job: Job) -> None:
        """The epoch lines the job's log got since the last look, said with the trial's number."""
        number = job.trial.number
        try:
            with open(job.job_dir / "worker.log", "rb") as fh:
                fh.seek(self.read.get(number, 0))
                text = fh.read()
        except OSError:
            return
        done = text.rfind(b"\n") + 1  # (a line still being written waits for its end)
        self.read[number] = self.read.get(number, 0) + done
        for line in text[:done].decode("utf-8", "replace").splitlines():
            m = EPOCH_LINE.search(line)
            if m:
                notice(f"trial #{number}: {m.group(1)}")
                progress.running(f"#{number} {m.group(1).split(',', 1)[0]}")

    def stop(self) -> list[Any]:
        procs.stop_all([proc for _, proc, _, _ in self.running.values()])
        trials = []
        for job, _, _, logf in self.running.values():
            logf.close()
            trials.append(job.trial)
        self.running.clear()
        return trials


#: an epoch line of a trial's log (training's "epoch 2/10, loss 0.61, val_mean_dice 0.4 (best ...), 1.0s")
EPOCH_LINE = re.compile(r"(?:clara-hydra: )?(epoch \d+/\d+\b.*)$")


def _last_error_line(log: Path) -> str:
    """The last line of a worker's log that names an error (``ValueError: ...``, ``error: ...``)."""
    return error_line(log.read_text(errors="replace")) if log.exists() else ""


def error_line(text: str) -> str:
    """The last line of ``text`` that names an error (``ValueError: ...``, ``error: ...``), or ""."""
    names = r"^(error:|[\w.]*(Error|Exception)\b|Cannot |Could not )"
    telling = [ln for ln in text.strip().splitlines() if re.match(names, ln)]
    return telling[-1].strip() if telling else ""


def from_outcome(job: Job, start: float, outcome: dict) -> Ended:
    """The outcome a job wrote into its folder (``sweep.protocol``) as the job's outcome."""
    return Ended(job, start, outcome["state"], value=outcome.get("value"), reason=outcome.get("reason"))


def base_command(config: DictConfig) -> list[str]:
    """The same Hydra app in a worker process, on the same config folder: ``--config-dir`` when the
    sweep was given one, else the app's own config folder (``python -m clara_hydra.app`` for
    ``clara-hydra train``, which has no script file)."""
    hc = config.hydra
    script = sys.argv[0]  # python train.py (or any Hydra script): the same script; else clara-hydra's app
    cmd = [sys.executable, os.path.abspath(script)] if script.endswith(".py") and os.path.isfile(script) \
        else [sys.executable, "-m", "clara_hydra.app"]
    cmd += [arg for d in config_dirs(hc.runtime.config_sources)[:1] for arg in ("--config-dir", os.path.abspath(d))]
    cmd += ["--config-name", hc.job.config_name]
    return cmd


def cuda_count() -> int:
    try:
        import torch
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # pragma: no cover
        return 0
