"""What a sweep checks before it opens its study, so that a mistake is one line before any trial
trains (and before the study records a search space that cannot run): every value it may give
fits its param, every job's config composes, every objective is a metric the config gives.
Also the conditions the converter recorded for the sweep's params, and overrides of a param by its place."""

from __future__ import annotations

import math
from typing import Any

import optuna
from omegaconf import DictConfig, OmegaConf

from .. import better
from ..errors import ClaraHydraError, did_you_mean
from ..space import Condition
from ..tree import validation_metric_names
from .protocol import KEY_METRIC, TRAIN_TIME


def check_values(config: DictConfig, hydra_context: Any, dists: dict, fixed_params: dict,
                 fixed_overrides: list) -> None:
    """Every value the sweep may give (a choice, a range's ends, a fixed value) fits its param,
    and every fixed override its component arg: one line before any trial starts."""
    from ..typed import check_overrides, check_sweep
    values: dict[str, list] = {name: [value] for name, value in fixed_params.items()}
    for name, dist in dists.items():
        if isinstance(dist, optuna.distributions.CategoricalDistribution):
            values[name] = list(dist.choices)
        elif isinstance(dist, (optuna.distributions.FloatDistribution, optuna.distributions.IntDistribution)):
            values[name] = [dist.low, dist.high]
    for name, dist in dists.items():
        ends = (dist.low, dist.high) if hasattr(dist, "low") else (0, 0)
        if not all(math.isfinite(v) for v in (*ends, ends[1] - ends[0])):
            raise ClaraHydraError(f"the range of '{name}' must have finite ends (and a finite width), got "
                                  f"[{ends[0]}, {ends[1]}]", location=name,
                                  hint="write interval(low, high) with finite numbers")
    check_sweep(config, values)
    swept = {name.lstrip("+") for name in values}  # (their values are checked above)
    plain = [o for o in list(config.hydra.overrides.task) + list(fixed_overrides)
             if str(o).split("=", 1)[0].lstrip("+") not in swept]
    check_overrides(config, plain)
    check_composes(config, hydra_context, dists, fixed_params, fixed_overrides)


def check_composes(config: DictConfig, hydra_context: Any, dists: dict, fixed_params: dict,
                   fixed_overrides: list) -> None:
    """A job's config composes (every key the sweep sets is the config's, or added with ``+``):
    refused here, before the study is opened, not as a failed trial that would record this
    search space in the study."""
    from ..resolve import override_error
    absent = object()
    if all(name.startswith("+") or OmegaConf.select(config, name, default=absent) is not absent
           for name in (*dists, *fixed_params)) and not fixed_overrides:
        return  # every key is the config's: it composes (composing costs a second on a large config)
    first = {name: dist.choices[0] if isinstance(dist, optuna.distributions.CategoricalDistribution)
             else dist.low for name, dist in dists.items()}
    overrides = [f"{name}={value}" for name, value in {**first, **fixed_params}.items()] + list(fixed_overrides)
    if hydra_context is None:  # pragma: no cover - Hydra's setup always gives one
        return
    try:
        hydra_context.config_loader.load_sweep_config(config, overrides)
    except ClaraHydraError:
        raise
    except Exception as exc:
        raise override_error(exc, overrides, None) from None


def check_objective_names(config: DictConfig, objectives: list[str] | None) -> None:
    """An objective a Clara config's validation cannot give is one line before any trial trains
    (not a failure of every trial after it trained)."""
    if objectives is None or "clara_hydra" not in config or "validate" not in config:
        return
    known = sorted(validation_metric_names(OmegaConf.to_container(config.validate, resolve=False)))
    names = [KEY_METRIC, TRAIN_TIME, *known]
    for name in objectives:
        if name not in names:
            raise ClaraHydraError(f"no objective '{name}': the config's validation has no such metric",
                                  location="hydra.sweeper.objectives",
                                  hint=did_you_mean(name, names) + "known: " + ", ".join(names))


def key_names(config: DictConfig) -> tuple[str, ...]:
    """The names an objective may give the key metric: key_metric, and the metric's own label."""
    label = None
    if "clara_hydra" in config and "validate" in config:
        label = better.key_label({"validate": OmegaConf.to_container(config.validate, resolve=False)})
    return (KEY_METRIC,) + ((label,) if label else ())


def metric_names(config: DictConfig, objectives: list[str] | None) -> list[str] | None:
    """What each value a trial gives is called, for the study (Optuna's ``metric_names``: its
    dashboard and plots say ``val_mean_dice``, not "Objective Value") and for TensorBoard HParams:
    the objectives, else a Clara config's key metric by its label; None for another app's value."""
    if objectives is not None:
        return list(objectives)
    return [key_names(config)[-1]] if "clara_hydra" in config else None


def conditions(param_meta: dict, dists: dict, fixed_params: dict) -> dict:
    """The conditions the converter recorded (``clara_hydra.params.X.when``) for this sweep's params."""
    out = {}
    for name, m in param_meta.items():
        when = (m or {}).get("when")
        if name in dists and isinstance(when, dict) and when.get("param") in set(dists) | set(fixed_params):
            out[name] = Condition(str(when["param"]), tuple(str(x) for x in when.get("in") or ()))
    return out


def by_param_name(arguments: list[str], param_meta: dict) -> list[str]:
    """The command line's overrides, where one names a param by its place (``at``:
    ``train.model.args.init_filters=8`` or ``=choice(4, 8, 16)``) written as that param
    (``SegResnet_init_filters=...``): it fixes or re-ranges the param, never leaves it sampled with
    no effect beside a fixed place."""
    at = {m["at"]: name for name, m in param_meta.items() if isinstance(m, dict) and isinstance(m.get("at"), str)}
    out = []
    for argument in arguments:
        key, eq, value = argument.partition("=")
        out.append(f"{at[key]}={value}" if eq and key in at else argument)
    return out
