"""Which sampler a sweep runs and how many trials its space holds: a grid or a finite space run
each combination once (Optuna's BruteForceSampler, as Clara's enum-only search did), and a seeded
sampler restarted on a study with trials moves its random state on."""

from __future__ import annotations

import math
import warnings
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from ..errors import ClaraHydraError, first_line
from ..logs import notice
from ..space import count_combinations
from . import upstream

#: command-line keys that name the sweep's sampler (its config group, or the sampler node or its class)
SAMPLER_KEYS = frozenset({"hydra/sweeper/sampler", "hydra.sweeper.sampler", "hydra.sweeper.sampler._target_"})


def choose(impl: Any, dists: dict, fixed_params: dict, conditions: dict, *, finite_space: str, seed: Any,
           config: DictConfig) -> int | None:
    """Set ``impl.sampler`` to the sampler this sweep runs; give the number of combinations when each
    runs once (n_trials is capped at what is left), else None. No search space is one combination:
    every trial after the first would be it again (reused)."""
    try:
        grid: dict[str, list] | None = upstream.grid(dists)
    except ValueError as exc:  # a continuous range
        grid, continuous = None, exc
    if upstream.is_deferred_grid(impl.sampler):
        if grid is None:
            raise ClaraHydraError(f"the grid sampler needs a finite search space: {first_line(continuous)}",
                                  location="hydra.sweeper.params",
                                  hint="give each range a step (int(interval(a, b)), choice(...)), or use "
                                       "another sampler (hydra/sweeper/sampler=tpe)") from None
        # the grid walks every point of the product, also those that differ only in a param a
        # condition leaves out (reused, not trained): its cap is the whole product
        impl.sampler = impl.sampler(grid)
        size: int | None = math.prod(len(v) for v in grid.values())
    elif grid is not None and dists and finite_space == "enumerate" and not log_range(dists) \
            and not getattr(impl.sampler, "clara_controller", False) \
            and enumerates(config):  # (a controller of your own decides; a sampler you name samples)
        size = count_combinations(grid, conditions, fixed_params)
        impl.sampler = brute_force(seed)
        notice(f"the search space is finite ({size} combination(s)): each runs once, then the sweep "
               f"stops (hydra.sweeper.finite_space=sample keeps the configured sampler)")
    else:
        size = None
    if not dists:
        notice("no search space (hydra.sweeper.params and the command line sweep nothing): the sweep runs the "
               "config once")
        return 1
    return size


def log_range(dists: dict) -> bool:
    """An int range on a log scale (``tag(log, int(interval(...)))``) asks to be sampled, not enumerated."""
    return any(getattr(d, "log", False) for d in dists.values())


def enumerates(config: DictConfig) -> bool:
    """Whether finite_space=enumerate enumerates this sweep's finite space: a converted Clara
    config's (its ``clara_hydra`` node), as Clara's enum-only search did, unless the command line
    names the sampler (``hydra/sweeper/sampler=tpe``, ``hydra.sweeper.sampler._target_=...``);
    any config's whose command line sets ``hydra.sweeper.finite_space=enumerate``. Any other
    config gets the sampler it names (in its defaults: ``override hydra/sweeper/sampler: tpe``),
    as on the stock sweeper."""
    keys = {override_key(str(o)) for o in OmegaConf.select(config, "hydra.overrides.hydra", default=None) or ()}
    if "hydra.sweeper.finite_space" in keys:
        return True
    return "clara_hydra" in config and not keys & SAMPLER_KEYS


def override_key(override: str) -> str:
    """``+hydra/sweeper/sampler@x=random`` -> ``hydra/sweeper/sampler``."""
    return override.split("=", 1)[0].strip().lstrip("~+").split("@", 1)[0]


def brute_force(seed: Any) -> optuna.samplers.BruteForceSampler:
    """Optuna's BruteForceSampler, without the ExperimentalWarning it gives when made (the user did
    not ask for it, and under ``python -W error`` the warning would stop the sweep); other warnings
    are untouched."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning,
                                message=r"BruteForceSampler is experimental")
        return optuna.samplers.BruteForceSampler(seed=seed)


def reseed(sampler, offset: int, seed: Any) -> None:
    """A seeded sampler restarted on a study with trials would replay its first samples: move its
    random state on, deterministically (from the seed and the number of trials) where the sampler
    allows it; an unseeded sampler gets fresh randomness."""
    if seed is None:
        if hasattr(sampler, "reseed_rng"):
            sampler.reseed_rng()
        return
    for holder, state in upstream.sampler_rngs(sampler):
        if state is not None:
            state.seed((int(seed) * 1_000_003 + offset + (holder is not sampler)) % 2**32)
        elif hasattr(holder, "reseed_rng"):
            holder.reseed_rng()
