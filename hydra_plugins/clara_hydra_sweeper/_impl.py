"""The clara_optuna sweeper's work, imported when a sweep starts: its options checked
(:mod:`clara_hydra.sweep.options`), hydra-optuna-sweeper's own sweeper for its params grammar,
sampler and storage (:mod:`clara_hydra.sweep.upstream`), and the sweep itself in
:mod:`clara_hydra.sweep.session`."""

from __future__ import annotations

from typing import Any

import optuna
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig

from clara_hydra.errors import SweepError
from clara_hydra.sweep import options, upstream
from clara_hydra.sweep.runners import hide_plumbing
from clara_hydra.sweep.session import Sweep


class ClaraOptunaSweeperImpl:
    def __init__(self, *, sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, custom_search_space: str | None, params: DictConfig | None,
                 **clara_options: Any) -> None:
        self.options, sampler = options.read(sampler=sampler, direction=direction, n_trials=n_trials, n_jobs=n_jobs,
                                             max_failure_rate=max_failure_rate, **clara_options)
        sampler = instantiate(sampler, _execution_whitelist_=("hydra_plugins.hydra_optuna_sweeper.*",
                                                               "optuna.samplers.*",
                                                               "clara_hydra.automl.controller.*"))
        self.impl = upstream.stock_sweeper(sampler, direction, storage, study_name, n_trials, n_jobs,
                                           max_failure_rate, custom_search_space, params)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.impl.setup(hydra_context=hydra_context, task_function=_NoExit(task_function), config=config)
        if self.impl.launcher is None:  # pragma: no cover - Hydra's setup always makes one
            raise RuntimeError("Hydra gave the sweeper no launcher")
        self.config = config
        optuna.logging.disable_default_handler()  # Optuna's lines in the run's one log format
        optuna.logging.enable_propagation()
        hide_plumbing()

    def sweep(self, arguments: list[str]) -> None:
        Sweep(self.impl, self.options, self.config).run(arguments)


class _NoExit:
    """The task function as the launcher runs it: a ``sys.exit()`` in it (the config's code, a
    task of your own) ends its trial, failed with that reason, never the sweep."""

    def __init__(self, task: TaskFunction) -> None:
        self.task = task
        self.__name__ = getattr(task, "__name__", "task")

    def __call__(self, cfg: DictConfig) -> Any:
        try:
            return self.task(cfg)
        except SystemExit as exc:
            raise SweepError(f"the task called sys.exit({exc.code!r}): the trial failed",
                             hint="end a run with an exception, not sys.exit()") from None
