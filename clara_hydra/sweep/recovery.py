"""A sweep's trials that were cut short: found dead (no heartbeat, :mod:`.liveness`) and told,
resumed from their last epoch, or failed; interrupted by a stop of this sweep; or left without an
outcome by a worker that died."""

from __future__ import annotations

import os
import time
from typing import Any

from optuna.trial import TrialState

from ..logs import notice
from . import liveness, upstream
from .outcomes import tell, values
from .protocol import (
    ATTR_HOST,
    ATTR_JOB_DIR,
    ATTR_PID,
    ATTR_RESUMABLE,
    INTERRUPTED,
    RESUMABLE,
    outcome_file,
    read_outcome,
    resume_epoch,
    resume_file,
)
from .protocol import ATTR_REASON as REASON

#: how often a sweep resumes a trial whose worker died without an outcome (a worker killed each
#: time, by the out-of-memory killer say, fails its trial after that)
RESUME_LIMIT = 2


class Recovery:
    """The trials this sweep resumes (``to_resume``, first, before new trials: same number, same
    params) and the dead ones it fails. ``beater`` is None for an in-memory study: no other process,
    nothing left by one."""

    def __init__(self, study: Any, beater: liveness.Beater | None, *, grace: float, interval: float,
                 objectives: list[str] | None) -> None:
        self.study, self.beater, self.grace, self.interval, self.objectives = study, beater, grace, interval, objectives
        self.to_resume: list = []
        self.resumed_after_death: dict[int, int] = {}  # trial number -> resumes after its worker died
        self.checked = 0.0
        #: the runner's take-over of a trial whose job outlives its sweep process (a cluster job:
        #: :meth:`.cluster.ClusterRunner.adopt`): True where it took it
        self.adopt: Any = None

    def recover(self, *, periodic: bool = False) -> int:
        """RUNNING trials whose process is dead (no heartbeat for grace_period, wherever they ran; at
        once where their process on this host is gone), left by a crash, kill -9, a stop or a dead
        node: one whose job wrote its outcome is told it; one that saved a resume point after an
        epoch is resumed by this run; any other is failed, reason ``interrupted``. A trial that
        beats is never touched. Gives the number failed."""
        marked = 0
        self.checked = time.time()
        if self.beater is None:
            return 0
        study = self.study
        held = {t.number for t in self.to_resume} | set(self.beater.trials)
        others = liveness.sweeps_alive(study, self.grace)
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number in held:
                continue
            try:
                if self.adopt is not None and self.adopt(t):
                    continue  # its job runs on (or has ended): this sweep watches it and tells its outcome
                why = liveness.dead(t, self.grace, others_alive=others)
                if why is None:
                    continue  # it beats: another process (of this host or another) runs it
                job_dir = t.user_attrs.get(ATTR_JOB_DIR)
                outcome = read_outcome(outcome_file(job_dir), study=study.study_name, trial=t.number) \
                    if job_dir else None
                if outcome is not None:
                    if liveness.claim(job_dir, t, self.grace):
                        self._tell_recovered(t, outcome)
                    continue
                if job_dir and os.path.isfile(resume_file(job_dir)):
                    if not liveness.claim(job_dir, t, self.grace):
                        continue  # another sweep process took it over
                    trial = upstream.live_trial(study, t)
                    trial.set_user_attr(ATTR_PID, os.getpid())  # this run owns it now
                    trial.set_user_attr(ATTR_HOST, liveness.host())
                    self.beater.add(trial)
                    self.to_resume.append(trial)
                    if periodic:  # (at the start, the sweep's first line counts them)
                        notice(f"trial #{t.number}: {why}: resuming it from its last epoch")
                    continue
                upstream.fail_orphan(study, t, REASON, f"{INTERRUPTED} ({why})")
                marked += 1
            except Exception:  # another process recovered it first: it is not RUNNING any more
                if upstream.stored_trial(study, t).state == TrialState.RUNNING:
                    raise
        return marked

    def _tell_recovered(self, frozen, outcome: dict) -> None:
        """Tell a dead trial the outcome its job wrote before the sweep could tell it."""
        study = self.study
        trial = upstream.live_trial(study, frozen)
        reason = outcome.get("reason")
        if reason:
            trial.set_user_attr(REASON, str(reason)[:500])
        if outcome["state"] == "complete":
            value, problem = values(outcome.get("value"), len(study.directions), self.objectives)
            if problem is None:
                tell(study, trial, values=value)
                notice(f"trial #{frozen.number}: told the outcome its job wrote before the sweep stopped")
                return
            trial.set_user_attr(REASON, problem[:500])
        tell(study, trial, state=TrialState.PRUNED if outcome["state"] == "pruned" else TrialState.FAIL)

    def recheck(self) -> int:
        """Every heartbeat interval of a running sweep: trials of the study that died since (on any
        host) are recovered, their resumable ones resumed by this sweep. Gives the number failed."""
        if self.beater is None or time.time() - self.checked < self.interval:
            return 0
        marked = self.recover(periodic=True)
        if marked:
            notice(f"{marked} trial(s) of the study found dead (no heartbeat): marked failed")
        return marked

    def after_death(self, trial, job_dir: str, cause: str) -> tuple[bool, int]:
        """A job that died without an outcome (killed, out of memory) after an epoch that saved the
        trial's resume point has its trial resumed from there (True; at most RESUME_LIMIT times in
        a sweep), as a trial of a killed sweep is. Gives (resumed, times resumed before)."""
        epoch = resume_epoch(job_dir) if os.path.isfile(resume_file(job_dir)) else None
        tries = self.resumed_after_death.get(trial.number, 0)
        if epoch is None or tries >= RESUME_LIMIT:
            return False, tries
        self.resumed_after_death[trial.number] = tries + 1
        notice(f"trial #{trial.number}: its worker {cause} after epoch {epoch}: resuming it from there")
        self.to_resume.insert(0, trial)
        return True, tries

    def interrupted(self, trial) -> None:
        """Record a trial the stop cut short, at once: one that saved a resume point after an epoch
        stays RUNNING, marked resumable (the next run of the sweep continues it); any other is
        failed, reason ``interrupted``."""
        try:
            stored = upstream.stored_trial(self.study, trial)
            if stored.state != TrialState.RUNNING:
                return
            job_dir = stored.user_attrs.get(ATTR_JOB_DIR)
            if job_dir and os.path.isfile(resume_file(job_dir)):
                epoch = resume_epoch(job_dir)
                trial.set_user_attr(REASON, RESUMABLE)
                trial.set_user_attr(ATTR_RESUMABLE, epoch)
                notice(f"trial #{stored.number}: interrupted after epoch {epoch}; run the sweep again to resume it")
                return
            trial.set_user_attr(REASON, INTERRUPTED)
            if self.beater is not None:
                self.beater.discard(trial)
            self.study.tell(trial, state=TrialState.FAIL)  # tells the sampler too (a live trial of this run)
        except Exception:  # the storage itself is gone: the next run marks it (see recover)
            pass
