"""Every use clara-hydra makes of private (underscored) API of Optuna and hydra-optuna-sweeper,
in one place.

The public APIs cannot do these things: build hydra-optuna-sweeper's distributions and trial
overrides from a ``params`` block, set an attribute on (or fail) a trial another process started,
move a seeded sampler's random state on. Each function below names what it relies on;
``tests/test_upstream.py`` calls every one against the installed versions, so an upgrade that
changes one fails there, by name, instead of somewhere in a sweep.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import numpy as np
import optuna
from hydra_plugins.hydra_optuna_sweeper import _impl as stock
from omegaconf import DictConfig
from optuna.distributions import BaseDistribution, IntDistribution
from optuna.trial import FrozenTrial, Trial, TrialState

#: What this module reaches into, by owner: the upgrade test checks each is still there.
PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "hydra_plugins.hydra_optuna_sweeper._impl": (
        "OptunaSweeperImpl", "create_params_from_overrides", "create_optuna_distribution_from_override"),
    "hydra_plugins.hydra_optuna_sweeper._impl.OptunaSweeperImpl": (
        "_process_searchspace_config", "_parse_sweeper_params_config", "_get_directions", "_configure_trials",
        "_to_grid_sampler_choices"),
    "optuna.study.Study": ("_storage", "_study_id"),
    "optuna.trial.Trial": ("_trial_id", "_suggest"),
    "optuna.trial.FrozenTrial": ("_trial_id",),
    "optuna.samplers.TPESampler": ("_rng", "_random_sampler"),
    "optuna.samplers.RandomSampler": ("_rng",),
}


def stock_sweeper(sampler: Any, direction: Any, storage: Any, study_name: str | None, n_trials: int, n_jobs: int,
                  max_failure_rate: float, custom_search_space: str | None,
                  params: DictConfig | None) -> stock.OptunaSweeperImpl:
    """hydra-optuna-sweeper's own sweeper: its params grammar, directions, search-space function and
    trial overrides are used as they are (its ``sweep`` loop is not)."""
    return stock.OptunaSweeperImpl(sampler, direction, storage, study_name, n_trials, n_jobs, max_failure_rate,
                                   custom_search_space, params)


def search_space(impl: stock.OptunaSweeperImpl,
                 arguments: list[str]) -> tuple[dict[str, BaseDistribution], dict[str, Any], list[str]]:
    """(distributions, fixed params, fixed overrides) of ``hydra.sweeper.params`` plus the command
    line's sweep overrides, after the user's ``custom_search_space`` check. Raises what the stock
    code raises for an expression it cannot build."""
    impl._process_searchspace_config()
    params_conf = impl._parse_sweeper_params_config() + list(arguments)
    dists, fixed_params, fixed_overrides = stock.create_params_from_overrides(params_conf)
    for name in fixed_params:
        dists.pop(name, None)
    return dists, fixed_params, list(fixed_overrides)


def distribution(override: Any) -> BaseDistribution:
    """The Optuna distribution hydra-optuna-sweeper makes of one parsed sweep override."""
    return stock.create_optuna_distribution_from_override(override)


#: An int range with more values than this is sampled, never enumerated
MAX_GRID = 100_000


def grid(dists: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every value of each param, listed as the stock sweeper lists them for its grid sampler.
    Raises ValueError for a continuous range (it has no grid), and for an int range of more than
    :data:`MAX_GRID` values (as good as continuous; listing it would fill the memory)."""
    for name, d in dists.items():
        if isinstance(d, IntDistribution) and (d.high - d.low) // (d.step or 1) >= MAX_GRID:
            raise ValueError(f"'{name}' has more than {MAX_GRID} values")
    return {name: list(stock.OptunaSweeperImpl._to_grid_sampler_choices(d)) for name, d in dists.items()}


def is_deferred_grid(sampler: Any) -> bool:
    """``hydra/sweeper/sampler=grid`` leaves a deferred GridSampler: its grid is the search space,
    known only when the sweep starts (call it with :func:`grid`)."""
    return isinstance(sampler, functools.partial) and sampler.func is optuna.samplers.GridSampler


def directions(impl: stock.OptunaSweeperImpl) -> list[Any]:
    """The sweep's direction(s) as names (``maximize``), one per objective, as Optuna takes them
    (written in any case: ``MAXIMIZE`` is ``maximize``)."""
    from .. import better
    out = []
    for d in impl._get_directions():
        try:
            out.append(better.parse(d).direction)
        except ValueError:
            out.append(d)  # (Optuna says what it takes)
    return out


def suggest(trial: Trial, name: str, dist: BaseDistribution) -> Any:
    """Sample one param of an asked trial from its distribution (the stock trial overrides do the
    same; a second call gives the same value): how a condition reads its controlling param first."""
    return trial._suggest(name, dist)


def trial_overrides(impl: stock.OptunaSweeperImpl, trial: Trial, dists: dict[str, BaseDistribution],
                    fixed_params: dict[str, Any], fixed_overrides: list[str]) -> list[str]:
    """The overrides of one asked trial: its sampled values (suggested on the trial) and the fixed
    ones, formatted as the stock sweeper formats them."""
    return list(impl._configure_trials([trial], dists, fixed_params, fixed_overrides)[0])


def stored_trial(study: optuna.Study, trial: Trial) -> FrozenTrial:
    """The trial as its storage holds it now (state, user attributes), without copying the study."""
    return study._storage.get_trial(trial._trial_id)


def fail_orphan(study: optuna.Study, frozen: FrozenTrial, key: str, reason: str) -> None:
    """Fail a RUNNING trial that no live process owns (it was started by a process that died),
    recording ``reason`` under ``key``. Study.tell would do it only for a trial asked here."""
    study._storage.set_trial_user_attr(frozen._trial_id, key, reason)
    study._storage.set_trial_state_values(frozen._trial_id, TrialState.FAIL)


def live_trial(study: optuna.Study, frozen: FrozenTrial) -> Trial:
    """A Trial to report to (``report``/``should_prune``) for a trial asked by another process."""
    return Trial(study, frozen._trial_id)


def sampler_rngs(sampler: optuna.samplers.BaseSampler) -> Iterator[tuple[Any, np.random.RandomState | None]]:
    """(holder, its NumPy RandomState or None) for the sampler and the random sampler it falls back
    to (TPE, GP ...), so a restarted seeded sampler can be moved on instead of replaying."""
    for holder in (sampler, getattr(sampler, "_random_sampler", None)):
        if holder is None:
            continue
        rng = getattr(holder, "_rng", None)
        target = getattr(rng, "rng", rng)  # optuna's LazyRandomState wraps the RandomState
        yield holder, target if isinstance(target, np.random.RandomState) else None


def set_trial_system_attr(study: optuna.Study, trial: Trial | FrozenTrial, key: str, value: Any) -> None:
    """A trial's system attribute (bookkeeping the user's tools need not show: a heartbeat)."""
    study._storage.set_trial_system_attr(trial._trial_id, key, value)


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    study._storage.set_study_system_attr(study._study_id, key, value)


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    return study._storage.get_study_system_attrs(study._study_id)
