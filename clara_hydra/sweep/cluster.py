"""Trials as cluster jobs that never wait for each other (:class:`ClusterRunner`, a
:class:`.loop.Runner`): with Hydra's submitit launcher (``hydra/launcher=submitit_slurm``) each
trial is submitted on its own, through submitit's executor with the launcher's own settings, and
up to ``n_jobs`` are in flight at all times: when one ends, the sweep loop tells it, asks the next
trial and submits it at once. (``hydra.sweeper.asynchronous=false``: the launcher's batches of
``n_jobs``, each waiting for its slowest job, as the stock sweeper runs them.)

Each job's id is recorded on its trial (``clara_cluster_job``). A sweep run again after its process
died (kill -9, a lost login node) re-attaches to the jobs of the study's running trials whose
sweep process is gone, queued, running or ended meanwhile, and tells their outcomes: no trial is
lost, none trains twice. Ctrl-C or SIGTERM stops a sweep on purpose: it cancels its jobs (their
trials resume from their last epoch on the next run, as a worker's do)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from ..logs import notice
from . import liveness, upstream
from .loop import Ended, Job
from .protocol import ATTR_CLUSTER_JOB, ATTR_HOST, ATTR_JOB_DIR, ATTR_PID, ENV_NPROC, outcome_file, read_outcome

log = logging.getLogger("hydra_plugins.hydra_submitit_launcher.submitit_launcher")  # (the launcher's own lines)

POLL = 1.0  # seconds between two looks at the jobs (a result file each; the cluster's state at most every minute)


def submitit_launcher(launcher: Any) -> bool:
    """Is ``launcher`` one of hydra-submitit-launcher's (SLURM, or local processes)?"""
    return type(launcher).__module__.startswith("hydra_plugins.hydra_submitit_launcher") and \
        hasattr(launcher, "params") and getattr(launcher, "_EXECUTOR", None) in ("slurm", "local")


def executor(launcher: Any):
    """submitit's executor with the launcher's settings, as its ``launch`` builds one (its folder,
    ``max_num_timeout``, ``python``; the queue parameters, the cluster's own ones prefixed)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf
    cluster, params = launcher._EXECUTOR, dict(launcher.params)
    specific = {"max_num_timeout", "python"}
    init = {"folder": params["submitit_folder"], **{f"{cluster}_{k}": v for k, v in params.items() if k in specific}}
    ex = submitit.AutoExecutor(cluster=cluster, **init)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    ex.update_parameters(**{k if k in base else f"{cluster}_{k}": v for k, v in params.items()
                            if k not in specific | {"submitit_folder"}})
    return ex


class ClusterRunner:
    """Each job submitted on its own, as soon as there is room (``n_jobs`` in flight); see the
    module's text. ``launcher``: Hydra's submitit launcher, set up (it is the callable each job
    runs, as in the launcher's own array jobs); ``study``: for re-attaching (:meth:`adopt`)."""

    def __init__(self, launcher: Any, n_jobs: int, study: Any, beater: Any, grace: float,
                 launch_overrides: Any, nodes_per_trial: int = 1, command: list[str] | None = None) -> None:
        self.launcher, self.n_jobs, self.study = launcher, max(1, int(n_jobs)), study
        self.beater, self.grace, self.launch_overrides = beater, grace, launch_overrides
        self.nodes, self.command = int(nodes_per_trial), command  # (several nodes: the app's command line)
        self.cluster = launcher._EXECUTOR
        self.folder = str(launcher.params["submitit_folder"])
        self.executor: Any = None  # made at the first submission
        self.running: dict[int, tuple[Job, Any, float]] = {}  # trial number -> (job, submitit job, start)

    def free(self) -> int:
        return self.n_jobs - len(self.running)

    def busy(self) -> bool:
        return bool(self.running)

    def start(self, job: Job) -> None:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import filter_overrides
        overrides = self.launch_overrides(job)
        Path(outcome_file(str(job.job_dir))).unlink(missing_ok=True)  # never an earlier run's outcome
        if self.executor is None:
            self.executor = executor(self.launcher)
            Path(str(self.launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        number = job.trial.number
        log.info(f"\t#{number} : {' '.join(filter_overrides(overrides))}")
        if self.nodes > 1:  # one job of several nodes: an elastic agent on each, the app its ranks
            from .runners import quote
            job.job_dir.mkdir(parents=True, exist_ok=True)
            self.executor.update_parameters(**({"nodes": self.nodes, "tasks_per_node": 1} if self.cluster == "slurm"
                                               else {"tasks_per_node": self.nodes}))
            command = [*(self.command or []), *job.overrides, f"hydra.run.dir={quote(str(job.job_dir))}"]
            handle = self.executor.submit(TrialOnNodes(command, job.env, str(job.job_dir),
                                                       local=self.cluster != "slurm"))
        else:
            handle = self.executor.submit(self.launcher, overrides, "hydra.sweep.dir", number, f"job_id_for_{number}",
                                          Singleton.get_state())
        job.trial.set_user_attr(ATTR_CLUSTER_JOB, {"id": str(handle.job_id), "folder": self.folder,
                                                   "cluster": self.cluster})
        notice(f"trial #{number}: {self._name()} job {handle.job_id}")
        self.running[number] = (job, handle, time.time())

    def _name(self) -> str:
        return "SLURM" if self.cluster == "slurm" else "local"

    def wait(self) -> list[Ended]:
        time.sleep(POLL)
        ended = []
        for number, (job, handle, start) in list(self.running.items()):
            if handle.done():
                del self.running[number]
                ended.append(self._ended(job, handle, start))
        return ended

    def _ended(self, job: Job, handle: Any, start: float) -> Ended:
        from submitit.core.utils import FailedJobError, UncompletedJobError

        from .runners import from_return
        if self.nodes > 1:  # the trial's rank 0 wrote its outcome into the trial's folder
            got = read_outcome(outcome_file(str(job.job_dir)))
            if got is not None:
                return Ended(job, start, got["state"], value=got.get("value"), reason=got.get("reason"))
            from .runners import _last_error_line
            return Ended(job, start, None, cause=f"({self._name()} job {handle.job_id}) ended without an outcome",
                         log_line=_last_error_line(job.job_dir / "train.log"))
        try:
            ret = handle.result()
        except FailedJobError as exc:  # the job's Python failed outside the task (its config, its pickle)
            line = _error_line(str(exc))
            return Ended(job, start, "fail", reason=line, error=line)
        except UncompletedJobError:  # no result: cancelled, killed, out of time or memory, its node lost
            from .runners import _last_error_line
            state = handle.state
            return Ended(job, start, None, cause=f"(SLURM job {handle.job_id}) ended without a result ({state})"
                         if self.cluster == "slurm" else "ended without a result",
                         log_line=_last_error_line(Path(handle.paths.stderr)))
        return from_return(job, start, ret)

    def stop(self) -> list[Any]:
        """A stop on purpose (Ctrl-C, SIGTERM, too many failures): every job is cancelled."""
        trials = []
        for job, handle, _ in self.running.values():
            try:
                handle.cancel(check=False)
            except OSError:  # (scancel is gone: the cluster ends the job at its time limit)
                pass
            trials.append(job.trial)
        self.running.clear()
        return trials

    # -- re-attaching ------------------------------------------------------------------------
    def adopt(self, frozen: Any) -> bool:
        """Take over the RUNNING trial ``frozen`` where it is a cluster job of a sweep process that
        is gone (the job queued, running, or ended meanwhile): this sweep watches the job and tells
        its outcome. One sweep process wins (:func:`.liveness.claim`). False: not such a trial."""
        record = frozen.user_attrs.get(ATTR_CLUSTER_JOB)
        job_dir = frozen.user_attrs.get(ATTR_JOB_DIR)
        if not isinstance(record, dict) or record.get("cluster") != "slurm" or self.cluster != "slurm" \
                or not job_dir or frozen.number in self.running:
            return False
        if not liveness.owner_gone(self.study, frozen, self.grace) or not liveness.claim(job_dir, frozen, self.grace):
            return False
        import submitit
        trial = upstream.live_trial(self.study, frozen)
        trial.set_user_attr(ATTR_PID, os.getpid())  # this sweep process holds it now
        trial.set_user_attr(ATTR_HOST, liveness.host())
        if self.beater is not None:
            self.beater.add(trial)
        handle: Any = submitit.SlurmJob(folder=record["folder"], job_id=str(record["id"]))
        self.running[frozen.number] = (Job(trial, [], Path(job_dir), {}), handle, time.time())
        notice(f"trial #{frozen.number}: re-attached to its SLURM job {record['id']} (its sweep process is gone)")
        return True


class TrialOnNodes:
    """What each node of a trial's job runs (``hydra.sweeper.nodes_per_trial``): PyTorch's elastic
    agent (what ``srun torchrun --nnodes N`` runs), whose processes are the app on the trial's
    overrides and folder, ranks of one run: a c10d rendezvous on the job's first node, at a port
    of the job id; one process per GPU of the node (``CLARA_HYDRA_NPROC`` where set; one on the
    CPU). With submitit's local executor the job's tasks stand for its nodes, on loopback. The
    trial's rank 0 reports to the trial and writes its outcome into the trial's folder."""

    def __init__(self, command: list[str], env: dict[str, str], job_dir: str, *, local: bool) -> None:
        self.command, self.env, self.job_dir, self.local = command, env, job_dir, local

    def __call__(self) -> dict | None:
        import submitit
        import torch
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.launcher.api import LaunchConfig, elastic_launch
        here = submitit.JobEnvironment()
        nodes = here.num_tasks
        host = "127.0.0.1" if self.local else here.hostnames[0]
        digits = "".join(c for c in str(here.job_id) if c.isdigit()) or "0"
        port = 20000 + int(digits[-9:]) % 20000  # (the same on every node of the job)
        given = os.environ.get(ENV_NPROC, "")
        nproc = int(given) if given.isdigit() and int(given) > 0 else (torch.cuda.device_count() or 1)
        os.environ.update(self.env)
        os.environ.pop(ENV_NPROC, None)
        config = LaunchConfig(min_nodes=nodes, max_nodes=nodes, nproc_per_node=nproc, run_id=f"clara-hydra-{digits}",
                              rdzv_backend="c10d", rdzv_endpoint=f"{host}:{port}", max_restarts=0,
                              monitor_interval=0.5)
        try:
            elastic_launch(config, self.command[0])(*self.command[1:])
        except ChildFailedError:
            pass  # (the outcome says why; a rank that failed before it has its log in the trial's folder)
        return read_outcome(outcome_file(self.job_dir)) if here.global_rank == 0 else None


def _error_line(text: str) -> str:
    """The last line of a job's trace that names an error."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not set(ln.strip()) <= {"-"}]
    telling = [ln for ln in lines if "Error" in ln.split(":", 1)[0] or "Exception" in ln.split(":", 1)[0]]
    return (telling or lines or ["the job failed"])[-1]
