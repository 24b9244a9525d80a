"""Multi-GPU trials: one run trains in N processes with PyTorch DistributedDataParallel.

Clara trained with ``multi_gpu: true`` under ``torch.distributed.launch`` (v4) or ``mpirun``
(v3). Here PyTorch's own launcher starts the ranks: a run that needs several processes starts
them with ``torch.distributed.run``'s API (:func:`launch`: ``elastic_launch``, a c10d rendezvous
on a free loopback port, as ``torchrun --standalone``); and a run started by ``torchrun`` itself
(``torchrun --nproc_per_node N train.py ...``, ``srun torchrun --nnodes ...`` across nodes) is one
rank of its group (:func:`under_torchrun`, :func:`as_rank`). When one rank fails, the launcher
stops the others and the run fails with the error of the rank that failed first. NCCL on CUDA
(rank r on its node's r-th GPU), gloo on CPU processes. The ranks keep the job's environment.

- How many: ``CLARA_HYDRA_NPROC`` (the sweeper's ``workers`` sets it to a worker's GPU count,
  ``0,1:2,3`` -> 2), else all visible GPUs where the config says ``multi_gpu: true``, else one;
  under torchrun, what torchrun was told.
- Data: each rank reads its share of the training list (MONAI's DistributedSampler, the batch
  size is per process, as Clara's per-GPU batch) and of the validation list; MONAI's metrics
  gather every rank's values, so the key metric is over the whole validation list, as in one
  process.
- Rank 0 alone writes checkpoints, TensorBoard, the resume point and the epoch lines, and
  reports to the Optuna trial (through the job that holds it, :class:`Relay`, where the job
  started the ranks; itself, reopened from the storage, under torchrun); its pruning decision is
  broadcast, so every rank stops at the same epoch. Every rank writes its outcome into the run
  folder's ``.ddp/``; the other ranks log into ``rank<r>.log`` beside ``train.log``.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ClaraHydraError, TrainingError
from ..logs import notice
from ..sweep.protocol import ENV_NPROC
from ..values import from_json, to_json

JOB_FOLDER = ".ddp"  # in the run folder: the job's description and each rank's outcome
ENV_RELAY = "CLARA_HYDRA_DDP_RELAY"  # rank 0: the address of the job's trial relay
ENV_RELAY_KEY = "CLARA_HYDRA_DDP_RELAY_KEY"


# -- the job -------------------------------------------------------------------------------------
def processes(tree: dict) -> int:
    """How many processes the job trains in (see the module's text)."""
    import torch
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    given = os.environ.get(ENV_NPROC, "").strip()
    if given:
        if not given.isdigit() or int(given) < 1:
            raise TrainingError(f"{ENV_NPROC} must be a whole number of processes, at least 1; got '{given}'",
                                location=ENV_NPROC, hint=f"unset it, or set {ENV_NPROC}=2")
        n = int(given)
        if gpus and n > gpus:
            raise TrainingError(f"{ENV_NPROC}={n} processes, but this job sees {gpus} GPU(s)", location=ENV_NPROC,
                                hint="one process per GPU: give the job more GPUs (CUDA_VISIBLE_DEVICES, the "
                                     "sweeper's workers) or fewer processes")
        return n
    if tree.get("multi_gpu") is True:
        if gpus >= 2:
            return gpus
        notice(f"multi_gpu is true, but this job sees {gpus or 'no'} GPU{'' if gpus == 1 else 's'}: training in one "
               f"process ({ENV_NPROC}=N trains in N processes{'' if gpus else ', gloo on the CPU'})")
    return 1


def launch(tree: dict, *, config_file: str | None, run_dir: str, trial, objectives: list[str] | None,
           nproc: int, progress: bool = True) -> Any:
    """Train ``tree`` in ``nproc`` processes started by PyTorch's elastic launcher (what
    ``torchrun --standalone --nproc_per_node N`` runs); give rank 0's result (raise the error
    of the rank that failed first)."""

    import torch
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch
    folder = os.path.join(run_dir, JOB_FOLDER)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):  # never read an outcome of an earlier run
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            os.remove(path)
    job = {"tree": to_json(tree), "config_file": config_file, "run_dir": run_dir, "objectives": objectives,
           "progress": progress, "sweep": trial is not None,
           "directions": len(trial.study.directions) if trial is not None else 1}
    job_file = os.path.join(folder, "job.json")
    with open(job_file, "w") as fh:
        json.dump(job, fh)
    cuda = torch.cuda.is_available()
    backend = f"NCCL on {nproc} GPUs" if cuda else "gloo on the CPU"
    notice(f"training in {nproc} processes (DistributedDataParallel, {backend}; torch.distributed.run)")
    relay = Relay(trial) if trial is not None else None
    env = {"PYTHONPATH": os.pathsep.join([_package_root()] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
           ENV_NPROC: None}
    if relay is not None:  # (every rank gets it; rank 0 alone connects)
        env[ENV_RELAY], env[ENV_RELAY_KEY] = relay.address, relay.key.hex()
    if not cuda and "OMP_NUM_THREADS" not in os.environ:  # (CPU processes share the cores, as torchrun's)
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // nproc))
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"clara-hydra-{secrets.token_hex(6)}",
                          rdzv_backend="c10d", rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1,
                          logs_specs=DefaultLogsSpecs(log_dir=os.path.join(folder, "elastic")),
                          local_addr="127.0.0.1")
    failures: dict[int, Any] = {}
    with _environment(env), _signals_kept(), _quiet_launcher():
        try:
            elastic_launch(config, sys.executable)("-m", "clara_hydra.train.ddp", job_file)
        except ChildFailedError as exc:
            failures = dict(exc.failures)
        except SignalException as exc:  # (the launcher's handlers, while it ran: Ctrl-C, SIGTERM)
            raise KeyboardInterrupt(f"signal {exc.sigval}") from None
        finally:
            if relay is not None:
                relay.close()
    return outcome(folder, run_dir, nproc, {r: f.exitcode for r, f in failures.items()})


@contextmanager
def _environment(changes: dict[str, str | None]) -> Iterator[None]:
    """``os.environ`` with ``changes`` (None: unset) while the launcher starts the ranks (they
    take the launcher's environment), as it was after."""
    def put(values: dict[str, str | None]) -> None:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    before = {k: os.environ.get(k) for k in changes}
    try:
        put(changes)
        yield
    finally:
        put(before)


@contextmanager
def _signals_kept() -> Iterator[None]:
    """The launcher installs its own SIGTERM/SIGINT/SIGHUP/SIGQUIT handlers and leaves them: the
    sweep's (and Python's) are put back after it."""
    import signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    kept = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)}
    try:
        yield
    finally:
        for sig, handler in kept.items():
            if handler is not None:
                signal.signal(sig, handler)


@contextmanager
def _quiet_launcher() -> Iterator[None]:
    """The launcher's own lines and its failure table are left out (the run says each rank's
    outcome in one line): this process only waits for its ranks meanwhile, so its logging is off."""
    import logging
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)


def _outcomes(folder: str) -> dict[int, dict]:
    """The outcomes the ranks wrote into ``folder`` (``rank<r>.json``), by rank."""
    out: dict[int, dict] = {}
    try:
        names = [n for n in os.listdir(folder) if re.fullmatch(r"rank\d+\.json", n)]
    except OSError:
        return out
    for name in names:
        try:
            with open(os.path.join(folder, name)) as fh:
                got = json.load(fh)
        except (OSError, ValueError):
            continue
        if isinstance(got, dict):
            out[int(name[4:-5])] = got
    return out


def _first_failure(outcomes: dict[int, dict]) -> dict | None:
    """The outcome of the rank that failed first (the others' errors are what its end did to
    them: "Connection closed by peer"), or None."""
    errors = sorted((o.get("time", math.inf), r) for r, o in outcomes.items() if o.get("state") == "error")
    return outcomes[errors[0][1]] if errors else None


def first_error(run_dir: str) -> str | None:
    """The error of the rank that failed first, from the outcomes the ranks wrote into the run
    folder's ``.ddp/``, or None."""
    got = _first_failure(_outcomes(os.path.join(run_dir, JOB_FOLDER)))
    return str(got.get("message", "")) if got is not None else None


def outcome(folder: str, run_dir: str, world: int, exit_codes: dict[int, int]) -> Any:
    """Rank 0's value, from the outcomes the ranks wrote into ``folder``; else the error of the
    rank that failed first (the others' errors are what its end did to them: "Connection closed
    by peer"); else which rank ended without an outcome (``exit_codes``: the launcher's)."""
    outcomes = _outcomes(folder)
    main = outcomes.get(0, {})
    if all(outcomes.get(r, {}).get("state") == "complete" for r in range(world)):
        return main["value"]  # (whatever a process's teardown did after it wrote its outcome)
    if main.get("state") == "pruned":
        import optuna
        raise optuna.TrialPruned(main.get("reason", "pruned"))
    got = _first_failure(outcomes)
    if got is not None:
        from .. import errors as E
        cls = getattr(E, got.get("class", ""), None)
        cls = cls if isinstance(cls, type) and issubclass(cls, ClaraHydraError) else TrainingError
        raise cls(got["message"], location=got.get("location"), hint=got.get("hint"), file=got.get("file"))
    r = min(exit_codes) if exit_codes else next((r for r in range(world) if r not in outcomes), 0)
    log = "the job's log" if r == 0 else os.path.join(run_dir, f"rank{r}.log")
    code = f"with code {exit_codes[r]} " if r in exit_codes else ""
    raise TrainingError(f"training process {r} of {world} exited {code}without an outcome", location="train",
                        hint=f"see {log}")


def _package_root() -> str:
    """Where this clara_hydra is imported from: the ranks import the same one."""
    import clara_hydra
    return os.path.dirname(os.path.dirname(os.path.abspath(clara_hydra.__file__)))


class Relay:
    """The job holds the Optuna trial (live in the sweep's process, or reopened from the storage);
    rank 0 reports to it and asks whether to prune through this local socket. Each request is
    answered (the trial's error too, which rank 0 raises), so no report is lost when rank 0 ends."""

    def __init__(self, trial) -> None:
        from multiprocessing.connection import Listener
        self.trial = trial
        self.key = secrets.token_bytes(16)
        self.listener = Listener(family="AF_UNIX", authkey=self.key)
        self.address = str(self.listener.address)
        self.connected = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn = self.listener.accept()
        except OSError:  # closed before rank 0 connected
            return
        self.connected = True
        with conn:
            while True:
                try:
                    kind, *args = conn.recv()
                except (EOFError, OSError):
                    return
                try:
                    answer = self.trial.report(*args) if kind == "report" else bool(self.trial.should_prune())
                    conn.send(("ok", answer))
                except Exception as exc:  # noqa: BLE001 - the storage's error goes to rank 0, which fails with it
                    conn.send(("error", f"{type(exc).__name__}: {exc}".splitlines()[0]))

    def close(self) -> None:
        """After the ranks ended: wake an ``accept`` that rank 0 never reached, and wait for the
        last answer to be sent."""
        if not self.connected:
            try:
                from multiprocessing.connection import Client
                Client(self.address, family="AF_UNIX", authkey=self.key).close()
            except Exception:  # noqa: BLE001 - (it connected meanwhile: it is gone, so the thread ends)
                pass
        self.thread.join(timeout=10)
        try:
            self.listener.close()
        except OSError:
            pass


class RelayedTrial:
    """What rank 0 sees of the job's trial: report and should_prune (all that training asks of it)."""

    def __init__(self, address: str, key: bytes, directions: int) -> None:
        from multiprocessing.connection import Client
        from types import SimpleNamespace
        self._conn = Client(address, family="AF_UNIX", authkey=key)
        self.study = SimpleNamespace(directions=[None] * directions)

    def _ask(self, *message: Any) -> Any:
        self._conn.send(message)
        status, answer = self._conn.recv()
        if status != "ok":
            raise TrainingError(f"cannot report to the trial: {answer}", location="hydra.sweeper.storage",
                                hint="check that the sweep's storage is reachable from this machine")
        return answer

    def report(self, value: float, step: int) -> None:
        self._ask("report", float(value), int(step))

    def should_prune(self) -> bool:
        return bool(self._ask("should_prune"))


# -- a rank --------------------------------------------------------------------------------------
def _write(folder: str, r: int, outcome: dict) -> None:
    path = os.path.join(folder, f"rank{r}.json")
    with open(path + ".tmp", "w") as fh:
        json.dump(dict(outcome, time=time.time()), fh)  # (the first error is the cause, the others its effects)
    os.replace(path + ".tmp", path)


def under_torchrun() -> bool:
    """Is this process one rank of a group that torchrun (or ``srun``, ``mpirun`` with its
    variables) started, of more than one process?"""
    env = os.environ
    return all(k in env for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")) and \
        env["WORLD_SIZE"].isdigit() and int(env["WORLD_SIZE"]) > 1


def to_rank_log(run_dir: str, r: int) -> None:
    """A rank other than 0: its output and log lines into ``rank<r>.log`` in the run folder (rank 0
    alone prints to the console and ``train.log``)."""
    from ..logs import log_as_job
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(os.path.join(run_dir, f"rank{r}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    log_as_job(None)


def as_rank(tree: dict, *, config_file: str | None, run_dir: str, trial, objectives: list[str] | None,
            progress: bool, sweep: bool, directions: int) -> Any:
    """Train ``tree`` as this process's rank of the group its launcher made (``RANK``,
    ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT``: torchrun's variables); every rank writes its
    outcome into the run folder's ``.ddp/`` (the first error is the run's). Gives the value
    (rank 0's is the run's), or raises as a one-process run does."""
    from datetime import timedelta

    import torch
    import torch.distributed as dist
    r = int(os.environ["RANK"])
    folder = os.path.join(run_dir, JOB_FOLDER)
    os.makedirs(folder, exist_ok=True)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(minutes=30))
    import ignite.distributed as idist
    idist.sync()  # ignite's view of the group is made with a collective: on every rank now, not in rank 0's savers
    shared = [run_dir]  # rank 0's run folder is the run's: ranks that started apart (torchrun on several
    dist.broadcast_object_list(shared, src=0)  # nodes, each Hydra's own ${now:...}) resume and log there too
    if shared[0] != run_dir:
        run_dir = shared[0]
        folder = os.path.join(run_dir, JOB_FOLDER)
        os.makedirs(folder, exist_ok=True)
        to_rank_log(run_dir, r)
    from .run import _training_error, train
    try:
        value = train(tree, config_file=config_file, run_dir=run_dir, progress=progress and r == 0, trial=trial,
                      objectives=objectives, sweep=sweep, directions=directions)
        _write(folder, r, {"state": "complete", "value": value})
        dist.barrier()  # no rank leaves the group while another still uses it
        dist.destroy_process_group()
        return value
    except Exception as exc:
        if type(exc).__name__ == "TrialPruned":  # (every rank, at the same validation)
            _write(folder, r, {"state": "pruned", "reason": str(exc)})
            dist.destroy_process_group()
            raise
        error = exc if isinstance(exc, ClaraHydraError) else _training_error(exc)
        _write(folder, r, {"state": "error", "class": type(error).__name__, "message": error.message,
                           "location": error.location, "hint": error.hint, "file": error.file})
        raise error from (None if error is exc else exc)
    # (a failed rank leaves without tearing the group down: the others may still be in a collective
    # with it, and the launcher stops them)


def main(job_file: str) -> int:
    """One rank of a job (``python -m clara_hydra.train.ddp JOB``, started by :func:`launch`)."""
    from ..procs import die_with_parent
    die_with_parent()  # (the launcher starts each rank in a session of its own: it ends with its job)
    with open(job_file) as fh:
        job = json.load(fh)
    r = int(os.environ["RANK"])
    from ..logs import log_as_job, quiet
    if r == 0:
        log_as_job(os.path.join(job["run_dir"], "train.log"))
    else:
        to_rank_log(job["run_dir"], r)
    quiet()
    trial = None
    if r == 0 and os.environ.get(ENV_RELAY):
        trial = RelayedTrial(os.environ[ENV_RELAY], bytes.fromhex(os.environ[ENV_RELAY_KEY]), job["directions"])
    try:
        as_rank(from_json(job["tree"]), config_file=job["config_file"], run_dir=job["run_dir"], trial=trial,
                objectives=job["objectives"], progress=job["progress"], sweep=job["sweep"],
                directions=job["directions"])
        return 0
    except Exception as exc:
        if type(exc).__name__ == "TrialPruned":
            return 0
        if os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
            raise
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
