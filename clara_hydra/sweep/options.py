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
        if name == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
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
