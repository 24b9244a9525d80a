"""MLflow tracking of a sweep (``hydra.sweeper.mlflow=true``, or ``clara-hydra train --mlflow -m``):
the sweep is a parent run, each trial a child run with its params (the names a user reads), its
value per epoch (the study's intermediate values, under the metric's own name), its value
(``best_<metric>``) and its state (``complete``, ``pruned``, ``fail`` with the reason); the best
trial's MONAI bundle is an artifact of its run. The experiment is the study's name.

Where: :func:`..mlflow_client.tracking_uri`. Only the sweep process talks to MLflow, after each
trial ends (a trial on another machine, a worker, a SLURM job need no MLflow of their own). A
tracking server that fails is a warning, once: the sweep's results stand, and the sweep goes on
untracked.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import first_line
from ..logs import notice, warn
from ..mlflow_client import PARENT_TAG, connect, tracking_uri, where
from .protocol import ATTR_JOB_DIR
from .protocol import ATTR_REASON as REASON
from .storage import masked

STATUS = {"complete": "FINISHED", "pruned": "KILLED", "fail": "FAILED"}


def _ms(moment: Any) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


class Tracker:
    """One sweep run in MLflow (a parent run), and its trials as they end (child runs)."""

    def __init__(self, study: Any, sweep_dir: Path, metric_names: list[str] | None, settings: dict[str, Any]) -> None:
        self.study, self.sweep_dir = study, sweep_dir
        self.metrics = metric_names or [f"value_{i}" if i else "value" for i in range(len(study.directions))]
        self.uri = tracking_uri()
        self.client: Any = connect(self.uri)  # (no mlflow package for a local store: the sweep does not start)
        self.parent: str | None = None
        self.runs: dict[int, str] = {}  # trial number -> its child run
        try:
            self.experiment = self.client.experiment(study.study_name)
            self.parent = self.client.create_run(
                self.experiment, f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
                {"clara_hydra.kind": "sweep", "clara_hydra.sweep_dir": str(sweep_dir),
                 "clara_hydra.study": study.study_name})
            self.client.log(self.parent, params={k: v for k, v in settings.items() if v is not None})
            notice(f"MLflow: the sweep is run {self.parent} of experiment '{study.study_name}' in {masked(self.uri)}")
        except Exception as exc:  # noqa: BLE001 - tracking is a view of the sweep, not its result
            self._off(exc)

    def where(self) -> str:
        return where(self.uri, self.experiment, self.parent)

    def _off(self, exc: BaseException) -> None:
        warn(f"MLflow tracking stops ({masked(self.uri)}): {first_line(exc)[:300]}; the sweep goes on and its "
             f"results stand (trials.csv, the study)")
        self.client = None

    def trial_ended(self, trial: Any, state: str) -> None:
        """A child run for the trial (``trial``: its stored, finished record)."""
        if self.client is None:
            return
        try:
            run = self.client.create_run(self.experiment, f"trial #{trial.number}",
                                         {PARENT_TAG: self.parent, "clara_hydra.kind": "trial",
                                          "clara_hydra.trial": str(trial.number), "state": state},
                                         start_ms=_ms(trial.datetime_start))
            self.runs[trial.number] = run
            history = [(self.metrics[0], v, step) for step, v in sorted(trial.intermediate_values.items())]
            if trial.values and state == "complete":
                history += [(f"best_{m}", v, 0) for m, v in zip(self.metrics, trial.values)]
            tags = {"reason": trial.user_attrs.get(REASON, ""), "job_dir": trial.user_attrs.get(ATTR_JOB_DIR, "")}
            self.client.log(run, params=trial.params, metrics=history, tags={k: v for k, v in tags.items() if v})
            self.client.end(run, STATUS.get(state, "FAILED"), _ms(trial.datetime_complete))
        except Exception as exc:  # noqa: BLE001
            self._off(exc)

    def finish(self, best: Any, bundle: Path | None, *, interrupted: bool = False) -> None:
        """The sweep's run ends: the best trial named on it, the best bundle an artifact of the best
        trial's run."""
        if self.client is None or self.parent is None:
            return
        try:
            if best is not None:
                self.client.log(self.parent, tags={"best_trial": best.number},
                                metrics=[(f"best_{m}", v, 0) for m, v in zip(self.metrics, best.values)])
                if bundle is not None and bundle.is_dir():
                    self.client.upload(self.runs.get(best.number, self.parent), bundle, "bundle")
            self.client.end(self.parent, "KILLED" if interrupted else "FINISHED")
        except Exception as exc:  # noqa: BLE001
            self._off(exc)
