"""Multi-GPU trials: one job trains in N processes with PyTorch DistributedDataParallel.

Clara trained with ``multi_gpu: true`` under ``torch.distributed.launch`` (v4) or ``mpirun``
(v3). Here the job itself starts its ranks, torchrun-style (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``; the rendezvous is a file in the run folder, so parallel trials never race for
a port), and watches them: when one fails, the others are stopped and the job fails with the
error of the rank that failed first. NCCL on CUDA (rank r on the r-th GPU the job sees), gloo
on CPU processes. The ranks keep the job's environment (a sweep worker's shared data cache).

- How many: ``CLARA_HYDRA_NPROC`` (the sweeper's ``workers`` sets it to a worker's GPU count,
  ``0,1:2,3`` -> 2), else all visible GPUs where the config says ``multi_gpu: true``, else one.
- Data: each rank reads its share of the training list (MONAI's DistributedSampler, the batch
  size is per process, as Clara's per-GPU batch) and of the validation list; MONAI's metrics
  gather every rank's values, so the key metric is over the whole validation list, as in one
  process.
- Rank 0 alone writes checkpoints, TensorBoard, the resume point and the epoch lines, and
  reports to the Optuna trial (through the job, which holds it: :class:`Relay`); its pruning
  decision is broadcast, so every rank stops at the same epoch.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
import threading
import time
from typing import Any

from ..errors import ClaraHydraError, TrainingError
from ..logs import notice
from ..sweep.protocol import ENV_NPROC
from ..values import from_json, to_json

GRACE_AFTER_END = 30.0  # seconds the other ranks get to end after one ended cleanly
GRACE_AFTER_FAILURE = 2.0  # ... after one failed
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
    """Train ``tree`` in ``nproc`` processes; give rank 0's result (raise the error of the rank
    that failed first)."""
    import torch
    folder = os.path.join(run_dir, JOB_FOLDER)
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))  # never read an outcome (or a rendezvous file) of an earlier run
    job = {"tree": to_json(tree), "config_file": config_file, "run_dir": run_dir, "objectives": objectives,
           "progress": progress, "sweep": trial is not None,
           "directions": len(trial.study.directions) if trial is not None else 1}
    job_file = os.path.join(folder, "job.json")
    with open(job_file, "w") as fh:
        json.dump(job, fh)
    cuda = torch.cuda.is_available()
    backend = f"NCCL on {nproc} GPUs" if cuda else "gloo on the CPU"
    notice(f"training in {nproc} processes (DistributedDataParallel, {backend})")
    relay = Relay(trial) if trial is not None else None
    procs: list[subprocess.Popen] = []
    logs = []
    from ..procs import die_with_parent, stop_all
    try:
        base = dict(os.environ, WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc),
                    PYTHONPATH=os.pathsep.join([_package_root()] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        base.pop(ENV_NPROC, None)
        if not cuda:  # (as torchrun: CPU processes share the cores instead of each taking all of them)
            base.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
        for r in range(nproc):
            env = dict(base, RANK=str(r), LOCAL_RANK=str(r))
            if relay is not None and r == 0:
                env[ENV_RELAY], env[ENV_RELAY_KEY] = relay.address, relay.key.hex()
            out = None
            if r > 0:  # rank 0 prints to the job's console and train.log; the others to their own log
                out = open(os.path.join(run_dir, f"rank{r}.log"), "w")
                logs.append(out)
            procs.append(subprocess.Popen([sys.executable, "-m", "clara_hydra.train.ddp", job_file], env=env,
                                          stdout=out, stderr=subprocess.STDOUT if out else None,
                                          preexec_fn=die_with_parent))
        _watch(procs, folder)
    except BaseException:
        stop_all(procs)
        raise
    finally:
        for fh in logs:
            fh.close()
        if relay is not None:
            relay.close()
    return _outcome(folder, run_dir, procs)


def _outcomes(folder: str, n: int) -> dict[int, dict]:
    out = {}
    for r in range(n):
        try:
            with open(os.path.join(folder, f"rank{r}.json")) as fh:
                out[r] = json.load(fh)
        except (OSError, ValueError):
            pass
    return out


def _watch(procs: list[subprocess.Popen], folder: str) -> None:
    """Wait for every rank. Once one has ended or written an error, the others get a little time
    to end too (a clean end, a pruned trial, ends every rank within moments); after it they are
    stopped: a rank that failed leaves the others waiting for it in their next collective."""
    from ..procs import stop_all
    deadline: float | None = None
    while any(p.poll() is None for p in procs):
        failed = any(o.get("state") == "error" for o in _outcomes(folder, len(procs)).values())
        for p in procs:
            code = p.poll()
            if code is not None or failed:
                grace = GRACE_AFTER_FAILURE if failed or code != 0 else GRACE_AFTER_END
                deadline = min(deadline or math.inf, time.time() + grace)
        if deadline is not None and time.time() > deadline:
            stop_all(procs)
        time.sleep(0.1)


def _outcome(folder: str, run_dir: str, procs: list[subprocess.Popen]) -> Any:
    outcomes = _outcomes(folder, len(procs))
    main = outcomes.get(0, {})
    if all(outcomes.get(r, {}).get("state") == "complete" for r in range(len(procs))):
        return main["value"]  # (whatever a process's teardown did after it wrote its outcome)
    if main.get("state") == "pruned":
        import optuna
        raise optuna.TrialPruned(main.get("reason", "pruned"))
    errors = sorted((o.get("time", math.inf), r) for r, o in outcomes.items() if o.get("state") == "error")
    if errors:  # the first: the others are what its end did to them ("Connection closed by peer")
        got = outcomes[errors[0][1]]
        from .. import errors as E
        cls = getattr(E, got.get("class", ""), None)
        cls = cls if isinstance(cls, type) and issubclass(cls, ClaraHydraError) else TrainingError
        raise cls(got["message"], location=got.get("location"), hint=got.get("hint"), file=got.get("file"))
    r = next((r for r, p in enumerate(procs) if p.returncode != 0), 0)
    log = "the job's log" if r == 0 else os.path.join(run_dir, f"rank{r}.log")
    raise TrainingError(f"training process {r} of {len(procs)} exited with code {procs[r].returncode} and no "
                        f"outcome", location="train", hint=f"see {log}")


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


def main(job_file: str) -> int:
    """One rank of a job (``python -m clara_hydra.train.ddp JOB``, started by :func:`launch`)."""
    from datetime import timedelta

    with open(job_file) as fh:
        job = json.load(fh)
    r, folder = int(os.environ["RANK"]), os.path.dirname(job_file)
    from ..logs import log_as_job, quiet
    log_as_job(os.path.join(job["run_dir"], "train.log") if r == 0 else None)
    quiet()
    import torch
    import torch.distributed as dist
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    # the rendezvous is a file of the run (no port to race for with other trials' ranks)
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"file://{os.path.join(folder, 'rendezvous')}",
                            rank=r, world_size=int(os.environ["WORLD_SIZE"]), timeout=timedelta(minutes=30))
    import ignite.distributed as idist
    idist.sync()  # ignite's view of the group is made with a collective: on every rank now, not in rank 0's savers
    trial = None
    if r == 0 and os.environ.get(ENV_RELAY):
        trial = RelayedTrial(os.environ[ENV_RELAY], bytes.fromhex(os.environ[ENV_RELAY_KEY]), job["directions"])
    from .run import _training_error, train
    try:
        value = train(from_json(job["tree"]), config_file=job["config_file"], run_dir=job["run_dir"],
                      progress=job["progress"] and r == 0, trial=trial, objectives=job["objectives"],
                      sweep=job["sweep"], directions=job["directions"])
        _write(folder, r, {"state": "complete", "value": value})
        dist.barrier()  # no rank leaves the group while another still uses it
        dist.destroy_process_group()
        return 0
    except Exception as exc:
        if type(exc).__name__ == "TrialPruned":  # (every rank, at the same validation)
            _write(folder, r, {"state": "pruned", "reason": str(exc)})
            dist.destroy_process_group()
            return 0
        error = exc if isinstance(exc, ClaraHydraError) else _training_error(exc)
        _write(folder, r, {"state": "error", "class": type(error).__name__, "message": error.message,
                           "location": error.location, "hint": error.hint, "file": error.file})
        if error is not exc and os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
            raise
        return 1
    # (a failed rank leaves without tearing the group down: the others may still be in a collective
    # with it, and the job stops them)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
