"""A plain run as one MLflow run (``clara-hydra train --mlflow``, or ``CLARA_HYDRA_MLFLOW=1`` for
``python train.py``): the config's first-level values as params, per epoch the mean training loss
(``train_loss``) and the epoch's learning rate (``lr``), each validation's metrics at its epoch, the best key
metric (``best_<name>``), the run's state (``FINISHED``, ``FAILED`` with the reason), and its
``config_train.json`` and best checkpoint as artifacts. A sweep's trials are its own child runs
(:mod:`..sweep.tracking`), not runs of their own.

The job's process makes the run and ends it (:class:`RunTracking`); rank 0 of the training logs
into it (:func:`attach`), found by ``CLARA_HYDRA_MLFLOW_RUN`` (a DDP rank is another process). A
server that fails is a warning, once: the run goes on, untracked."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import first_line
from ..logs import notice, warn
from ..mlflow_client import connect, tracking_uri, where
from ..sweep.storage import masked

#: the run a plain run's training logs into
ENV_RUN = "CLARA_HYDRA_MLFLOW_RUN"


def _stopped(uri: str, exc: BaseException) -> None:
    warn(f"MLflow tracking stops ({masked(uri)}): {first_line(exc)[:300]}; the run goes on, untracked")


class RunTracking:
    """The run in MLflow, from its start (params) to its end (state, artifacts)."""

    def __init__(self, experiment: str, run_dir: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        self.uri, self.run_dir = tracking_uri(), run_dir
        self.client: Any = connect(self.uri)  # (no mlflow package for a local store: the run does not start)
        self.run: str | None = None
        try:
            self.experiment = self.client.experiment(os.environ.get("MLFLOW_EXPERIMENT_NAME") or experiment)
            self.run = self.client.create_run(self.experiment, os.path.basename(os.path.normpath(run_dir)),
                                              dict(tags, **{"clara_hydra.kind": "run", "clara_hydra.run_dir": run_dir}))
            self.client.log(self.run, params=params)
            os.environ[ENV_RUN] = self.run
            notice(f"MLflow: this run is {where(self.uri, self.experiment, self.run)}")
        except Exception as exc:  # noqa: BLE001 - tracking is a view of the run, not its result
            _stopped(self.uri, exc)
            self.client = None

    def end(self, failure: str | None, files: list[str]) -> None:
        """The run's state (a ``failure``: FAILED, with it as the reason) and its ``files``."""
        os.environ.pop(ENV_RUN, None)
        if self.client is None or self.run is None:
            return
        try:
            if failure:
                self.client.log(self.run, tags={"reason": failure})
            for file in files:  # (where each is in the run folder: models/model.pt)
                if os.path.isfile(file):
                    folder = os.path.relpath(os.path.dirname(file), self.run_dir)
                    self.client.upload(self.run, Path(file), "" if folder == "." else folder)
            self.client.end(self.run, "FAILED" if failure else "FINISHED")
        except Exception as exc:  # noqa: BLE001
            _stopped(self.uri, exc)


def attach(trainer: Any, evaluator: Any | None, watch: Any) -> Callable[..., None]:
    """Rank 0's curves into the run of ``CLARA_HYDRA_MLFLOW_RUN``: once per epoch, and after
    each validation (one call each). Gives the logger, for the run's best value at its end."""
    from ignite.engine import Events

    from .curves import learning_rate, numbers
    run, uri = os.environ[ENV_RUN], tracking_uri()
    state: dict[str, Any] = {"client": connect(uri), "losses": []}

    def log(**what: Any) -> None:
        if state["client"] is None:
            return
        try:
            state["client"].log(run, **what)
        except Exception as exc:  # noqa: BLE001
            _stopped(uri, exc)
            state["client"] = None

    def losses(pairs: list[tuple[int, float]]) -> None:  # (read off the device by the run's LossWatch)
        state["losses"] += [value for _, value in pairs]

    def lr(engine: Any) -> None:  # (the epoch's: the scheduler steps at its end)
        state["lr"] = learning_rate(engine)

    def epoch(engine: Any) -> None:
        losses, state["losses"] = state["losses"], []
        rows = [("train_loss", sum(losses) / len(losses), engine.state.epoch)] if losses else []
        if state.get("lr") is not None:
            rows.append(("lr", state["lr"], engine.state.epoch))
        log(metrics=rows)

    def validated(engine: Any) -> None:
        log(metrics=[(name, value, trainer.state.epoch) for name, value in numbers(engine.state.metrics).items()])

    watch.listeners.append(losses)
    trainer.add_event_handler(Events.EPOCH_STARTED, lr)
    trainer.add_event_handler(Events.EPOCH_COMPLETED, epoch)
    if evaluator is not None:
        evaluator.add_event_handler(Events.COMPLETED, validated)
    return log
