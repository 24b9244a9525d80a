"""Which RUNNING trials of a study are alive, on any host: liveness by heartbeat.

Every process that runs a trial beats for it while it runs: the sweep process for the trials it
asked or resumed (from ``ask`` until it tells them), and the job itself where it runs in another
process (a worker, a SLURM job, the parent of a DDP group). A beat is a trial system attribute
(``clara_heartbeat``: time, host, process id), written every ``heartbeat_interval`` seconds into
the study's storage, so every sweep process of the study sees it, whatever its host. Each sweep
process beats for itself too (a study system attribute per process), so that a trial it asked
but had no time to record anything on is known to be its.

A RUNNING trial is dead when:

- its last beat is older than ``grace_period`` seconds (the process, or its node, is gone); or
- its last beat (or, before its first beat, the process that asked it) is of this host and that
  process is no more (not running, or a zombie): known at once, without waiting; or
- it has no beat and no owner recorded (killed between ``ask`` and its first record), and no
  sweep process of the study is alive, or it was asked longer than ``grace_period`` ago.

Optuna's own heartbeat (RDBStorage only, and it fails stale trials where a resumable one must be
resumed) is not used: these beats work the same on RDB and journal storages. Hosts' clocks must
agree to well within the grace period (NTP). Pure of torch; Optuna only through the study given.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import timezone
from typing import Any

from . import protocol as P
from . import upstream

#: a trial system attribute: the last beat, {"t": unix time, "host": ..., "pid": ...}
ATTR_BEAT = "clara_heartbeat"
#: a study system attribute per sweep process: "clara_sweep:HOST:PID" -> {"t": ..., "ended": bool}
SWEEP_BEAT = "clara_sweep:"

DEFAULT_INTERVAL = 10.0  # seconds between beats
DEFAULT_GRACE = 120.0  # seconds without a beat after which a trial is dead


def host() -> str:
    return os.uname().nodename


def mark(pid: int | None = None) -> dict:
    """This process's beat, now."""
    return {"t": time.time(), "host": host(), "pid": os.getpid() if pid is None else pid}


def alive_here(pid: Any) -> bool:
    """Is ``pid`` a live process of this host (a zombie is dead: it only waits to be reaped)?"""
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True  # (no /proc: the signal said it is there)


def _beat_of(frozen) -> dict | None:
    beat = frozen.system_attrs.get(ATTR_BEAT)
    return beat if isinstance(beat, dict) and isinstance(beat.get("t"), (int, float)) else None


def _started(frozen) -> float:
    start = frozen.datetime_start
    if start is None:
        return 0.0
    if start.tzinfo is None:  # Optuna stores local naive datetimes
        return start.timestamp()
    return start.astimezone(timezone.utc).timestamp()


def sweeps_alive(study, grace: float, now: float | None = None) -> bool:
    """Is any sweep process of the study (other than this one) alive?"""
    now = time.time() if now is None else now
    me = f"{SWEEP_BEAT}{host()}:{os.getpid()}"
    for key, beat in upstream.study_system_attrs(study).items():
        if not key.startswith(SWEEP_BEAT) or key == me or not isinstance(beat, dict) or beat.get("ended"):
            continue
        _, h, pid = key.split(":", 2)
        if h == host() and not alive_here(int(pid) if pid.isdigit() else None):
            continue
        if now - float(beat.get("t", 0)) <= grace:
            return True
    return False


def dead(frozen, grace: float, *, others_alive: bool, now: float | None = None) -> str | None:
    """Why the RUNNING trial ``frozen`` is dead, or None while it may be alive."""
    now = time.time() if now is None else now
    beat = _beat_of(frozen)
    if beat is not None:
        if beat.get("host") == host() and not alive_here(beat.get("pid")):
            return f"its process {beat.get('pid')} on this host is gone"
        if now - float(beat["t"]) > grace:
            return f"no heartbeat for {now - float(beat['t']):.0f}s (grace_period={grace:g}s) from {beat.get('host')}"
        return None
    owner_host, pids = frozen.user_attrs.get(P.ATTR_HOST), [frozen.user_attrs.get(P.ATTR_PID),
                                                            frozen.user_attrs.get(P.ATTR_WORKER_PID)]
    if owner_host == host() and not any(alive_here(p) for p in pids):
        return "the process that asked it on this host is gone"
    if owner_host is None and not others_alive:
        return "asked by a sweep process that is gone, before it recorded anything"
    if now - _started(frozen) > grace:
        return f"no heartbeat in {now - _started(frozen):.0f}s since it started (grace_period={grace:g}s)"
    return None


def owner_gone(study, frozen, grace: float, now: float | None = None) -> bool:
    """Is the sweep process that holds the trial ``frozen`` (the one that asked it, or last took
    it over) gone: not running on this host, or on another its beat ended, or is older than
    ``grace``, or never came?"""
    owner_host, pid = frozen.user_attrs.get(P.ATTR_HOST), frozen.user_attrs.get(P.ATTR_PID)
    if owner_host == host():
        return not alive_here(pid)
    beat = upstream.study_system_attrs(study).get(f"{SWEEP_BEAT}{owner_host}:{pid}")
    if not isinstance(beat, dict) or beat.get("ended"):
        return True
    now = time.time() if now is None else now
    return now - float(beat.get("t", 0)) > grace


class Beater:
    """A daemon thread that beats every ``interval`` seconds for this sweep process (``sweep``:
    its study system attribute) and for each trial it holds. A failing write is retried at the
    next beat: a beat never stops a sweep or a training."""

    def __init__(self, study, interval: float, *, sweep: bool = False) -> None:
        self.study, self.interval, self.sweep = study, float(interval), sweep
        self.trials: dict[int, Any] = {}  # number -> live trial
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="clara-heartbeat", daemon=True)
        self.key = f"{SWEEP_BEAT}{host()}:{os.getpid()}"

    def start(self) -> Beater:
        self.beat()
        self.thread.start()
        return self

    def add(self, trial) -> None:
        with self.lock:
            self.trials[trial.number] = trial
        self._beat_trial(trial)  # at once: from now on it is known to be alive

    def discard(self, trial) -> None:
        with self.lock:
            self.trials.pop(trial.number, None)

    def beat(self) -> None:
        if self.sweep:
            try:
                upstream.set_study_system_attr(self.study, self.key, {"t": time.time()})
            except Exception:  # noqa: BLE001 - the next beat tries again
                pass
        with self.lock:
            trials = list(self.trials.values())
        for trial in trials:
            self._beat_trial(trial)

    def _beat_trial(self, trial) -> None:
        try:
            upstream.set_trial_system_attr(self.study, trial, ATTR_BEAT, mark())
        except Exception:  # noqa: BLE001 - finished meanwhile, or a storage hiccup: the next beat tries again
            pass

    def _run(self) -> None:
        while not self.stopped.wait(self.interval):
            self.beat()

    def stop(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.interval + 5)
        if self.sweep:
            try:
                upstream.set_study_system_attr(self.study, self.key, {"t": time.time(), "ended": True})
            except Exception:  # noqa: BLE001
                pass


def claim(job_dir: str, frozen, grace: float = DEFAULT_GRACE, token: str | None = None) -> bool:
    """Take over the dead trial ``frozen`` (to tell its outcome, or resume it): exactly one sweep
    process wins a given death (a file in its folder, created exclusively, named after the last
    beat it saw, or ``token``: what every claimant of that death sees alike). The winner beats for
    the trial at once, so a later death is another claim; a claim whose process died before that
    (gone on this host, or older than ``grace``) is broken."""
    beat = _beat_of(frozen)
    token = token or (f"{beat['t']:.6f}" if beat is not None else "start")
    path = os.path.join(job_dir, "models", f".claim-{token}")
    for _ in range(2):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _stale_claim(path, grace):
                return False
            try:  # (one process wins the rename of a stale claim; the others find it gone)
                os.rename(path, f"{path}.broken-{host()}-{os.getpid()}")
            except OSError:
                return False
            continue
        except OSError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{host()} {os.getpid()}\n")
        return True
    return False


def _stale_claim(path: str, grace: float) -> bool:
    try:
        with open(path) as fh:
            who = fh.read().split()
        age = time.time() - os.path.getmtime(path)
    except OSError:
        return False
    if len(who) == 2 and who[0] == host() and who[1].isdigit() and not alive_here(int(who[1])):
        return True
    return age > grace
