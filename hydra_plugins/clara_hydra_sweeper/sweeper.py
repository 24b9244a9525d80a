"""The class Hydra finds when it scans plugins: thin, so that the scan imports neither Optuna nor
the stock sweeper's implementation; the work is in ``_impl``, imported when a sweep starts."""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from .config import ClaraOptunaSweeperConf as ClaraOptunaSweeperConf  # registers clara_optuna


class ClaraOptunaSweeper(Sweeper):
    """hydra-optuna-sweeper's config keys and params grammar, with pruning, resume, recorded
    failures, Clara's GPU workers and result files (see ``config.ClaraOptunaSweeperConf``)."""

    def __init__(self, sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int,
                 n_jobs: int, max_failure_rate: float, custom_search_space: str | None, params: DictConfig | None,
                 **clara_options: Any) -> None:
        """The stock sweeper's keys, then ours (pruner, workers, ...: the fields of the config)."""
        from ._impl import ClaraOptunaSweeperImpl

        self.sweeper = ClaraOptunaSweeperImpl(
            sampler=sampler, direction=direction, storage=storage, study_name=study_name, n_trials=n_trials,
            n_jobs=n_jobs, max_failure_rate=max_failure_rate, custom_search_space=custom_search_space,
            params=params, **clara_options)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
