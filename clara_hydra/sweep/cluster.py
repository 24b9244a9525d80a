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
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SweepError, first_line
from ..logs import notice, warn
from ..private import hydra as private_hydra
from . import liveness, upstream
from .loop import Ended, Job
from .protocol import ATTR_CLUSTER_JOB, ATTR_HOST, ATTR_JOB_DIR, ATTR_PID, ENV_NPROC, outcome_file, read_outcome

log = logging.getLogger("hydra_plugins.hydra_submitit_launcher.submitit_launcher")  # (the launcher's own lines)

POLL = 1.0  # seconds between two looks at the jobs (a result file each; the cluster's state at most every minute)


def submitit_launcher(launcher: Any) -> bool:
    """Is ``launcher`` one of hydra-submitit-launcher's (SLURM, or local processes)?"""
    return private_hydra.submitit_cluster(launcher) is not None


def executor(launcher: Any):
    """submitit's executor with the launcher's settings, as its ``launch`` builds one (its folder,
    ``max_num_timeout``, ``python``; the queue parameters, the cluster's own ones prefixed)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf
    cluster, params = private_hydra.submitit_cluster(launcher), dict(launcher.params)
    specific = {"max_num_timeout", "python"}
    init = {"folder": params["submitit_folder"], **{f"{cluster}_{k}": v for k, v in params.items() if k in specific}}
    ex = submitit.AutoExecutor(cluster=cluster, **init)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    ex.update_parameters(**{k if k in base else f"{cluster}_{k}": v for k, v in params.items()
                            if k not in specific | {"submitit_folder"}})
    return ex


@dataclass
class Running:
    """A submitted job: its trial's job, submitit's handle, when it started, the record kept on
    the trial (``clara_cluster_job``)."""

    job: Job
    handle: Any
    start: float
    record: dict


class ClusterRunner:
    """Each job submitted on its own, as soon as there is room (``n_jobs`` in flight); see the
    module's text. ``launcher``: Hydra's submitit launcher, set up (it is the callable each job
    runs, as in the launcher's own array jobs); ``study``: for re-attaching (:meth:`adopt`);
    ``nodes_per_trial`` > 1: each job spans so many nodes and runs :class:`TrialOnNodes` on each,
    the app's ``command`` its processes."""

    def __init__(self, launcher: Any, n_jobs: int, study: Any, beater: Any, grace: float,
                 launch_overrides: Any, nodes_per_trial: int = 1, command: list[str] | None = None) -> None:
        self.launcher, self.n_jobs, self.study = launcher, max(1, int(n_jobs)), study
        self.beater, self.grace, self.launch_overrides = beater, grace, launch_overrides
        self.nodes, self.command = int(nodes_per_trial), command
        self.cluster = private_hydra.submitit_cluster(launcher) or "slurm"
        self.folder = str(launcher.params["submitit_folder"])
        self.executor: Any = None  # made at the first submission
        self.running: dict[int, Running] = {}  # trial number -> its job
        self.refused: list = []  # trials whose job the cluster refused (the stop records them)

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
            if self.nodes > 1:
                self.executor.update_parameters(**({"nodes": self.nodes, "tasks_per_node": 1}
                                                   if self.cluster == "slurm" else {"tasks_per_node": self.nodes}))
            Path(str(self.launcher.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        number = job.trial.number
        log.info(f"\t#{number} : {' '.join(filter_overrides(overrides))}")
        try:
            if self.nodes > 1:  # one job of several nodes: an elastic agent on each, the app its ranks
                from .runners import quote
                ranks = job.job_dir / ".ddp"
                for old in ranks.glob("rank*.json") if ranks.is_dir() else []:
                    old.unlink()  # (a resumed trial: the ranks' outcomes of its earlier job)
                job.job_dir.mkdir(parents=True, exist_ok=True)
                command = [*(self.command or []), *job.overrides, f"hydra.run.dir={quote(str(job.job_dir))}"]
                handle = self.executor.submit(TrialOnNodes(command, job.env, str(job.job_dir),
                                                           local=self.cluster != "slurm"))
            else:
                handle = self.executor.submit(self.launcher, overrides, "hydra.sweep.dir", number,
                                              f"job_id_for_{number}", Singleton.get_state())
        except Exception as exc:  # sbatch refused it (a limit of the partition, the account, the QOS)
            self.refused.append(job.trial)
            raise SweepError(f"the cluster refused trial #{number}'s job: {first_line(exc)}", location="hydra.launcher",
                             hint="check the launcher's partition, account and limits (sbatch's message)") from None
        record = {"id": str(handle.job_id), "folder": self.folder, "cluster": self.cluster, "nodes": self.nodes}
        self.running[number] = Running(job, handle, time.time(), record)
        try:
            job.trial.set_user_attr(ATTR_CLUSTER_JOB, record)
        except Exception as exc:  # noqa: BLE001 - a storage hiccup: the job runs all the same (no re-attaching)
            warn(f"trial #{number}: its job id was not recorded ({first_line(exc)}): a sweep run again cannot "
                 f"re-attach to it")
        notice(f"trial #{number}: {self._name()} job {handle.job_id}")

    def _name(self) -> str:
        return "SLURM" if self.cluster == "slurm" else "local"

    def wait(self) -> list[Ended]:
        time.sleep(POLL)
        ended = []
        for number, run in list(self.running.items()):
            if run.handle.done():
                del self.running[number]
                ended.append(self._ended(run))
        return ended

    def _ended(self, run: Running) -> Ended:
        """The job's outcome: what the trial's job wrote into its folder (train.py writes it; on
        several nodes, rank 0), or what it returned; none: it ended without one (it may resume)."""
        from submitit.core.utils import FailedJobError, UncompletedJobError

        from ..train.ddp import first_error
        from .runners import _last_error_line, error_line, from_outcome, from_return
        job, handle, start = run.job, run.handle, run.start
        written = read_outcome(outcome_file(str(job.job_dir)))
        name = f"({self._name()} job {handle.job_id})"
        if int(run.record.get("nodes") or 1) > 1:
            error = first_error(str(job.job_dir))  # the rank that failed first: the cause, not its effects
            if written is not None and (written["state"] != "fail" or error is None):
                return from_outcome(job, start, written)
            if error is not None:
                return Ended(job, start, "fail", reason=error, error=error)
            return Ended(job, start, None, cause=f"{name} ended without an outcome",
                         log_line=_last_error_line(job.job_dir / "train.log"))
        try:
            return from_return(job, start, handle.results()[0])
        except FailedJobError as exc:  # the job's Python failed outside the task (its config, its pickle)
            line = error_line(str(exc)) or "the job failed outside its task (see its submitit log)"
            return Ended(job, start, "fail", reason=line, error=line)
        except UncompletedJobError:  # no result: cancelled, killed, out of time or memory, its node lost
            if written is not None:  # (its outcome was written before it went)
                return from_outcome(job, start, written)
            return Ended(job, start, None, cause=f"{name} ended without a result ({handle.state})",
                         log_line=_last_error_line(Path(handle.paths.stderr)))
        except Exception as exc:  # noqa: BLE001 - a result that cannot be read: the trial fails, the sweep goes on
            return Ended(job, start, "fail", reason=f"{name}: its result cannot be read: {first_line(exc)}",
                         error=f"{type(exc).__name__}: {first_line(exc)}")

    def stop(self) -> list[Any]:
        """A stop on purpose (Ctrl-C, SIGTERM, too many failures): every job is cancelled (and so
        marked on its trial: the next run resumes the trial, it does not re-attach to the job)."""
        trials = list(self.refused)
        for run in self.running.values():
            try:
                run.handle.cancel(check=False)
            except OSError:  # (scancel is gone: the cluster ends the job at its time limit)
                pass
            try:
                run.job.trial.set_user_attr(ATTR_CLUSTER_JOB, dict(run.record, cancelled=True))
            except Exception:  # noqa: BLE001 - the storage is gone: the next run finds the job ended
                pass
            trials.append(run.job.trial)
        self.running.clear()
        self.refused = []
        return trials

    # -- re-attaching ------------------------------------------------------------------------
    def adopt(self, frozen: Any) -> bool:
        """Take over the RUNNING trial ``frozen`` where it is a cluster job of a sweep process that
        is gone (the job queued, running, or ended meanwhile): this sweep watches the job and tells
        its outcome. One sweep process wins (:func:`.liveness.claim`, on the gone owner: every
        claimant sees the same one). False: not such a trial."""
        record = frozen.user_attrs.get(ATTR_CLUSTER_JOB)
        job_dir = frozen.user_attrs.get(ATTR_JOB_DIR)
        if not isinstance(record, dict) or record.get("cluster") != "slurm" or self.cluster != "slurm" \
                or record.get("cancelled") or not job_dir or frozen.number in self.running:
            return False
        owner = f"{frozen.user_attrs.get(ATTR_HOST)}-{frozen.user_attrs.get(ATTR_PID)}"
        if not liveness.owner_gone(self.study, frozen, self.grace) or \
                not liveness.claim(job_dir, frozen, self.grace, token=f"adopt-{owner}"):
            return False
        import submitit
        trial = upstream.live_trial(self.study, frozen)
        trial.set_user_attr(ATTR_PID, os.getpid())  # this sweep process holds it now
        trial.set_user_attr(ATTR_HOST, liveness.host())
        if self.beater is not None:
            self.beater.add(trial)
        nodes = int(record.get("nodes") or 1)
        handle: Any = submitit.SlurmJob(folder=record["folder"], job_id=str(record["id"]),
                                        tasks=tuple(range(nodes)))
        self.running[frozen.number] = Running(Job(trial, [], Path(job_dir), {}), handle, time.time(), record)
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
        port = 10000 + int(digits[-9:]) % 20000  # (the same on every node; below the ephemeral ports)
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
        except Exception as exc:  # noqa: BLE001 - the rendezvous lost at the end (the node that hosted it
            print(f"the elastic agent ended with: {first_line(exc)}", file=sys.stderr)  # left first): the
        return read_outcome(outcome_file(self.job_dir)) if here.global_rank == 0 else None  # outcome decides

