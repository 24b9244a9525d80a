"""MLflow tracking of a sweep (``hydra.sweeper.mlflow=true``): the sweep is a parent run, each
trial a child run with its params (the names a user reads), its value per epoch (the study's
intermediate values, under the metric's own name), its value (``best_<metric>``) and its state
(``complete``, ``pruned``, ``fail`` with the reason); the best trial's MONAI bundle is an
artifact of its run.

Where: ``MLFLOW_TRACKING_URI`` (a server, ``sqlite:///...``), else ``mlflow.db`` in the folder the
sweep runs from, its artifacts in ``mlruns/`` there (MLflow 3's own default: ``mlflow ui`` in that
folder shows it). The experiment is the study's name.
Only the sweep process talks to MLflow, after each trial ends (a trial on another machine, a
worker, a SLURM job need no MLflow of their own). A tracking server that fails is a warning,
once: the sweep's results stand, and the sweep goes on untracked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..errors import ClaraHydraError, first_line
from ..logs import notice, warn
from .protocol import ATTR_JOB_DIR
from .protocol import ATTR_REASON as REASON

#: MLflow's own tag that makes a run the child of another (what its UI nests by)
PARENT_TAG = "mlflow.parentRunId"
STATUS = {"complete": "FINISHED", "pruned": "KILLED", "fail": "FAILED"}


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else ``mlflow.db`` in the current folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path('mlflow.db').resolve()}"


class Tracker:
    """One sweep run in MLflow (a parent run), and its trials as they end (child runs)."""

    def __init__(self, study: Any, sweep_dir: Path, metric_names: list[str] | None, settings: dict[str, Any]) -> None:
        try:
            import mlflow  # noqa: F401
        except ImportError:
            raise ClaraHydraError("hydra.sweeper.mlflow=true, but MLflow is not installed",
                                  location="hydra.sweeper.mlflow",
                                  hint="pip install 'clara-hydra[mlflow]' (or: pip install mlflow)") from None
        self.study, self.sweep_dir = study, sweep_dir
        self.metrics = metric_names or [f"value_{i}" if i else "value" for i in range(len(study.directions))]
        self.uri = tracking_uri()
        import logging
        for name in ("mlflow", "alembic"):  # (their set-up lines, in another format, at every start)
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client: Any = None
        self.parent: str | None = None
        try:
            from mlflow import MlflowClient
            self.client = MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(study.study_name)
            self.experiment = found.experiment_id if found is not None else \
                self.client.create_experiment(study.study_name)
            run = self.client.create_run(self.experiment, run_name=f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}",
                                         tags={"clara_hydra.kind": "sweep", "clara_hydra.sweep_dir": str(sweep_dir),
                                               "clara_hydra.study": study.study_name})
            self.parent = run.info.run_id
            self._batch(self.parent, params={k: v for k, v in settings.items() if v is not None})
            notice(f"MLflow: the sweep is run {self.parent} of experiment '{study.study_name}' in {self._shown()}")
        except Exception as exc:  # noqa: BLE001 - tracking is a view of the sweep, not its result
            self._off(exc)

    def _shown(self) -> str:
        from .storage import masked
        return masked(self.uri)

    def _off(self, exc: BaseException) -> None:
        warn(f"MLflow tracking stops ({self._shown()}): {type(exc).__name__}: {first_line(exc)[:300]}; the sweep goes "
             f"on and its results stand (trials.csv, the study)")
        self.client = None

    def _batch(self, run_id: str, *, params: dict | None = None, metrics: list | None = None,
               tags: dict | None = None) -> None:
        from mlflow.entities import Metric, Param, RunTag
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(key, float(value), now, int(step)) for key, value, step in metrics or []],
            params=[Param(str(k), str(v)[:6000]) for k, v in (params or {}).items()],
            tags=[RunTag(str(k), str(v)[:5000]) for k, v in (tags or {}).items()])

    def trial_ended(self, trial: Any, state: str) -> None:
        """A child run for the trial (``trial``: its stored, finished record)."""
        if self.client is None:
            return
        try:
            name = f"trial #{trial.number}"
            start = int(trial.datetime_start.timestamp() * 1000) if trial.datetime_start else None
            run = self.client.create_run(self.experiment, run_name=name, start_time=start,
                                         tags={PARENT_TAG: self.parent, "clara_hydra.kind": "trial",
                                               "clara_hydra.trial": str(trial.number), "state": state})
            metric = self.metrics[0]
            history = [(metric, v, step) for step, v in sorted(trial.intermediate_values.items())]
            if trial.values and state == "complete":
                history += [(f"best_{m}", v, 0) for m, v in zip(self.metrics, trial.values)]
            tags = {"reason": trial.user_attrs.get(REASON, ""), "job_dir": trial.user_attrs.get(ATTR_JOB_DIR, "")}
            self._batch(run.info.run_id, params=trial.params, metrics=history,
                        tags={k: v for k, v in tags.items() if v})
            end = int(trial.datetime_complete.timestamp() * 1000) if trial.datetime_complete else None
            self.client.set_terminated(run.info.run_id, status=STATUS.get(state, "FAILED"), end_time=end)
        except Exception as exc:  # noqa: BLE001
            self._off(exc)

    def finish(self, best: Any, bundle: Path | None, *, interrupted: bool = False) -> None:
        """The sweep's run ends: the best trial named on it, the best bundle an artifact of the best
        trial's run."""
        if self.client is None or self.parent is None:
            return
        try:
            if best is not None:
                self._batch(self.parent, tags={"best_trial": best.number},
                            metrics=[(f"best_{m}", v, 0) for m, v in zip(self.metrics, best.values)])
                if bundle is not None and bundle.is_dir():
                    child = self._child_of(best.number)
                    self.client.log_artifacts(child or self.parent, str(bundle), artifact_path="bundle")
            self.client.set_terminated(self.parent, status="KILLED" if interrupted else "FINISHED")
        except Exception as exc:  # noqa: BLE001
            self._off(exc)

    def _child_of(self, number: int) -> str | None:
        runs = self.client.search_runs([self.experiment], filter_string=(
            f"tags.`{PARENT_TAG}` = '{self.parent}' and tags.`clara_hydra.trial` = '{number}'"), max_results=1)
        return runs[0].info.run_id if runs else None
