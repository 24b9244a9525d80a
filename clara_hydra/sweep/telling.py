"""Telling Optuna a trial's outcome, and all that follows one: the count the stop rules read,
Clara's ``job_ended`` event, TensorBoard HParams, keep_best, the stop threshold, the trial's line
and the result files."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from .. import better, faults, progress
from ..errors import first_line
from ..logs import notice
from . import results, upstream
from .liveness import Beater
from .options import Options
from .outcomes import tell, values
from .protocol import ATTR_DURATION, ATTR_JOB_DIR
from .protocol import ATTR_REASON as REASON
from .stopping import Stops


class Teller:
    def __init__(self, study: Any, *, beater: Beater | None, stops: Stops, events: Any, sweep_dir: Path,
                 params: list[str], options: Options, metric_names: list[str] | None, hparams: bool,
                 tracker: Any = None) -> None:
        self.study, self.beater, self.stops, self.events = study, beater, stops, events
        self.sweep_dir, self.params, self.o = sweep_dir, params, options
        self.objectives, self.metric_names, self.hparams = options.objectives, metric_names, hparams
        self.tracker = tracker  # MLflow (tracking.Tracker), where the sweep is tracked

    def tell(self, trial, state: str, value: Any = None, reason: str | None = None, started: float = 0.0) -> None:
        """``state``: complete (with the job's ``value``), pruned or fail (with the ``reason``); a
        value Optuna cannot take fails the trial with the reason it cannot."""
        faults.point("before_tell", trial.number)
        if self.beater is not None:
            self.beater.discard(trial)
        if state == "complete":
            value, problem = values(value, len(self.study.directions), self.objectives)
            if problem:
                state, reason = "fail", problem
        if reason:
            trial.set_user_attr(REASON, reason[:500])
        if ATTR_DURATION not in trial.user_attrs:
            trial.set_user_attr(ATTR_DURATION, round(time.time() - started, 3))  # else the job timed itself
        if state == "complete":
            tell(self.study, trial, values=value)
        elif state == "pruned":
            tell(self.study, trial, state=TrialState.PRUNED)
        else:
            tell(self.study, trial, state=TrialState.FAIL)
        self.stops.count(state if state in ("complete", "pruned") else "fail", reason)
        self._after(trial, {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED}.get(state, TrialState.FAIL))
        if self.tracker is not None:
            self.tracker.trial_ended(upstream.stored_trial(self.study, trial), state)
        best = results.best(self.study)
        shown = (results.format_values(value, self.objectives) if isinstance(value, list) else f"{value:.4f}") \
            if state == "complete" else state.upper()
        shown += f" ({reason})" if reason else ""
        if len(self.study.directions) > 1:
            best_text = bar_text = f"Pareto front: {len(results.front(self.study))} trial(s)"
        elif best is not None:
            best_text = f"best so far {best.value:.4f} (trial #{best.number})"
            bar_text = f"best {best.value:.4f} (#{best.number})"
        else:
            best_text = bar_text = "no best yet"
        notice(f"trial #{trial.number}: {shown} | {results.format_params(trial.params)} | {best_text}")
        progress.trial_ended(bar_text)
        self.write()

    def _after(self, trial, state: TrialState) -> None:
        from ..automl.controller import score_of, status_of
        o = self.o
        stored = upstream.stored_trial(self.study, trial)
        self.events.job_ended(trial.number, stored.params, score_of(stored, state, stored.values,
                                                                    better.of_study(self.study)), status_of(state))
        if self.hparams and state == TrialState.COMPLETE and stored.values:
            from . import hparams
            try:
                hparams.write(stored.user_attrs.get(ATTR_JOB_DIR, str(self.sweep_dir / str(trial.number))),
                              stored.params, list(stored.values), self.metric_names or ["value"])
            except Exception as exc:  # TensorBoard is a view, not the sweep's result
                notice(f"warning: trial #{trial.number}: no TensorBoard HParams written: {first_line(exc)}")
        if o.keep_best is not None:
            from . import keep
            for number in keep.trim(self.study, o.keep_best):
                notice(f"trial #{number}: checkpoints removed (not among the {o.keep_best} best; keep_best)")
        if state == TrialState.COMPLETE:
            self.stops.check_threshold(better.of_study(self.study), [stored])

    def write(self) -> None:
        """trials.csv and optimization_results.yaml as the study is now."""
        results.write_all(self.study, self.sweep_dir, self.params, self.objectives,
                          remove_search_augs=self.o.remove_search_augs)
