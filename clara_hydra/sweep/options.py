"""Pruners by name, and Clara's ``workers`` string."""

from __future__ import annotations

from typing import Any

from ..errors import ClaraHydraError

PRUNERS = ("median", "hyperband", "successive_halving", "percentile", "none")


def make_pruner(spec: Any):
    """``median`` (default), ``hyperband``, ``successive_halving``, ``none``, or a mapping with
    ``_target_`` (an optuna.pruners class) and its arguments."""
    import optuna
    if spec is None or spec == "none" or spec is False:
        return optuna.pruners.NopPruner()
    if isinstance(spec, str) and spec.lower() == "none":
        return optuna.pruners.NopPruner()
    if isinstance(spec, str):
        name = spec.lower()
        if name == "median":  # from the second trial on (BENCHMARKS.md, issue 9)
            return optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0)
        if name == "hyperband":
            return optuna.pruners.HyperbandPruner()
        if name in ("successive_halving", "sha", "asha"):
            return optuna.pruners.SuccessiveHalvingPruner()
        if name == "percentile":
            return optuna.pruners.PercentilePruner(25.0, n_startup_trials=2)
        raise ClaraHydraError(f"unknown pruner '{spec}'", location="hydra.sweeper.pruner",
                              hint="use " + ", ".join(PRUNERS) + ", or {_target_: optuna.pruners.X, ...}")
    if hasattr(spec, "items"):
        from hydra.utils import instantiate
        return instantiate(dict(spec), _convert_="all", _execution_whitelist_=("optuna.pruners.*",))
    raise ClaraHydraError(f"cannot make a pruner of {spec!r}", location="hydra.sweeper.pruner")


#: hydra-optuna-sweeper's TPESamplerConfig default of n_startup_trials (Optuna's too)
STOCK_TPE_STARTUP = 10


def startup_trials(n_trials: int) -> int:
    """``startup_trials: auto``: TPE's random start-up trials for a sweep of ``n_trials``, a fifth
    of them, 2 to 10 (Optuna's 10 make a 20-trial sweep half random search; BENCHMARKS.md, issue 9)."""
    return max(2, min(STOCK_TPE_STARTUP, int(n_trials) // 5))


def with_startup(sampler: Any, startup: Any, n_trials: int) -> tuple[Any, int | None]:
    """The sampler config with ``hydra.sweeper.startup_trials`` applied, and the start-up it got
    (None: unchanged). ``auto``: a TPE sampler that keeps hydra-optuna-sweeper's default of 10
    gets :func:`startup_trials`; a number: a TPE sampler gets it; null: the sampler's own."""
    if startup is not None and startup != "auto" and (
            isinstance(startup, bool) or not isinstance(startup, int) or startup < 0):
        raise ClaraHydraError(f"startup_trials must be auto, a whole number >= 0, or null; got {startup!r}",
                              location="hydra.sweeper.startup_trials",
                              hint="set hydra.sweeper.startup_trials=auto (n_trials / 5, 2 to 10), a number, or null")
    if startup is None or not hasattr(sampler, "get") or not str(sampler.get("_target_", "")).endswith("TPESampler"):
        return sampler, None
    if startup == "auto":
        if sampler.get("n_startup_trials") != STOCK_TPE_STARTUP:
            return sampler, None  # the user's own setting
        startup = startup_trials(n_trials)
    from omegaconf import OmegaConf
    copy: Any = OmegaConf.to_container(sampler) if OmegaConf.is_config(sampler) else dict(sampler)
    return OmegaConf.create(dict(copy, n_startup_trials=startup)), startup


def parse_workers(spec: Any) -> list[list[str]]:
    """Clara's workers: ``0:0:1:1`` is two workers on each of GPUs 0 and 1; ``0,1:2,3`` is two
    workers with two GPUs each; an integer N is N workers (CPU, or all visible GPUs)."""
    if spec is None:
        return []
    if isinstance(spec, int) and not isinstance(spec, bool):
        if spec < 1:
            raise ClaraHydraError(f"workers must be at least 1, got {spec}", location="hydra.sweeper.workers")
        return [[] for _ in range(spec)]
    text = str(spec).strip()
    out = []
    for part in text.split(":"):
        gpus = [g.strip() for g in part.split(",") if g.strip()]
        if not gpus or not all(g.isdigit() for g in gpus):
            raise ClaraHydraError(f"malformed workers '{spec}'", location="hydra.sweeper.workers",
                                  hint="write GPU ids per worker, separated by ':' (0:0:1:1), several GPUs of one "
                                       "worker by ',' (0,1:2,3)")
        out.append(gpus)
    return out
