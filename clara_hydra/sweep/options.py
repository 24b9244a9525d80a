"""The sweeper's options, each checked before anything runs (a mistyped one is one line naming
its key): pruners by name, Clara's ``workers`` string, TPE's start-up trials, time limits,
objectives and handlers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from .. import better
from ..errors import ClaraHydraError, first_line
from . import liveness

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


@dataclass
class Options:
    """The sweeper's own options (``hydra.sweeper.*`` beyond the stock keys), checked."""

    pruner: Any  # the optuna pruner
    pruner_spec: Any  # as written (a worker process makes its pruner from it)
    workers: int | str | None
    study_trials: int | None
    finite_space: str
    trial_timeout: float | None
    timeout: float | None
    heartbeat_interval: float
    grace: float
    objectives: list[str] | None
    stop_threshold: float | None
    keep_best: int | None
    tensorboard: bool | None  # TensorBoard HParams (None: for a Clara config)
    handler_specs: list[dict]
    remove_search_augs: bool
    export_best: bool
    mlflow: bool  # track the sweep in MLflow (tracking.py)
    asynchronous: bool  # a submitit launcher's jobs submitted one by one as slots free up (cluster.py)
    nodes_per_trial: int  # a trial's job spans so many nodes (torch.distributed.run on each)
    startup: int | None  # TPE's start-up trials, where startup_trials set them
    seed: int | None  # the sampler's


def read(*, sampler: Any, direction: Any, n_trials: Any, n_jobs: Any, max_failure_rate: Any, pruner: Any = "median",
         workers: int | str | None = None, study_trials: int | None = None, finite_space: str = "enumerate",
         trial_timeout: float | None = None, timeout: float | None = None, objectives: Any = None,
         stop_threshold: float | None = None, keep_best: int | None = None, tensorboard: bool | None = None,
         handlers: Any = None, remove_search_augs: bool = False, startup_trials: Any = "auto",
         export_best: bool = True, mlflow: bool = False, asynchronous: bool = True, nodes_per_trial: Any = 1,
         heartbeat_interval: float = liveness.DEFAULT_INTERVAL,
         grace_period: float = liveness.DEFAULT_GRACE) -> tuple[Options, Any]:
    """The checked options, and the sampler's config with ``startup_trials`` applied."""
    pruner_spec = OmegaConf.to_container(pruner) if isinstance(pruner, DictConfig) else pruner
    if finite_space not in ("enumerate", "sample"):
        raise ClaraHydraError(f"finite_space must be enumerate or sample, got {finite_space!r}",
                              location="hydra.sweeper.finite_space",
                              hint="set hydra.sweeper.finite_space=enumerate (each combination once) or sample")
    for key, limit in (("trial_timeout", trial_timeout), ("timeout", timeout)):
        if limit is not None and not limit > 0:
            raise ClaraHydraError(f"{key} must be a number of seconds > 0, or null; got {limit!r}",
                                  location=f"hydra.sweeper.{key}", hint=f"set hydra.sweeper.{key}=3600 (or null)")
    for key, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ClaraHydraError(f"{key} must be a number of seconds > 0, got {value!r}",
                                  location=f"hydra.sweeper.{key}", hint=f"set hydra.sweeper.{key}=<seconds>")
    if grace_period <= 2 * heartbeat_interval:
        raise ClaraHydraError(f"grace_period ({grace_period:g}s) must be more than twice heartbeat_interval "
                              f"({heartbeat_interval:g}s): a live trial could pass for dead between two beats",
                              location="hydra.sweeper.grace_period",
                              hint=f"set hydra.sweeper.grace_period={max(3 * heartbeat_interval, 120):g}")
    names = _objectives(objectives, direction)
    if isinstance(nodes_per_trial, bool) or not isinstance(nodes_per_trial, int) or nodes_per_trial < 1:
        raise ClaraHydraError(f"nodes_per_trial must be a whole number >= 1, got {nodes_per_trial!r}",
                              location="hydra.sweeper.nodes_per_trial", hint="set hydra.sweeper.nodes_per_trial=2")
    if keep_best is not None and (isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 1):
        raise ClaraHydraError(f"keep_best must be a whole number >= 1, or null; got {keep_best!r}",
                              location="hydra.sweeper.keep_best", hint="set hydra.sweeper.keep_best=30 (or null)")
    if stop_threshold is not None and not math.isfinite(stop_threshold):
        raise ClaraHydraError(f"stop_threshold must be a finite number, or null; got {stop_threshold!r}",
                              location="hydra.sweeper.stop_threshold",
                              hint="set hydra.sweeper.stop_threshold=0.9 (the key metric to stop at), or null")
    specs = _handler_specs(handlers)
    made = _check_stock(n_trials, n_jobs, max_failure_rate, study_trials, workers, pruner_spec, direction)
    sampler, startup = with_startup(sampler, startup_trials, study_trials if study_trials is not None else n_trials)
    seed = sampler.get("seed") if hasattr(sampler, "get") else None
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32):
        raise ClaraHydraError(f"the sampler's seed must be a whole number from 0 to 2**32 - 1, got {seed!r}",
                              location="hydra.sweeper.sampler.seed",
                              hint="set hydra.sweeper.sampler.seed=123 (or null: a new seed each run)")
    return Options(pruner=made, pruner_spec=pruner_spec, workers=workers, study_trials=study_trials,
                   finite_space=finite_space, trial_timeout=trial_timeout, timeout=timeout,
                   heartbeat_interval=float(heartbeat_interval), grace=float(grace_period), objectives=names,
                   stop_threshold=stop_threshold, keep_best=keep_best,
                   tensorboard=None if tensorboard is None else bool(tensorboard),
                   handler_specs=specs, remove_search_augs=bool(remove_search_augs), export_best=bool(export_best),
                   mlflow=bool(mlflow), asynchronous=bool(asynchronous), nodes_per_trial=nodes_per_trial,
                   startup=startup, seed=seed), sampler


def _check_stock(n_trials, n_jobs, max_failure_rate, study_trials, workers, pruner_spec, direction):
    """Every sweeper option a user can mistype is one line before anything runs; gives the pruner."""

    def bad(key: str, got: Any, want: str) -> ClaraHydraError:
        return ClaraHydraError(f"{key} must be {want}, got {got!r}", location=f"hydra.sweeper.{key}",
                               hint=f"set hydra.sweeper.{key}=<{want}>")

    def whole(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool)
    if not whole(n_trials) or n_trials < 0:
        raise bad("n_trials", n_trials, "a whole number >= 0")
    if not whole(n_jobs) or n_jobs < 1:
        raise bad("n_jobs", n_jobs, "a whole number >= 1")
    rate = max_failure_rate
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= float(rate) <= 1.0:
        raise bad("max_failure_rate", rate, "a number from 0 to 1")
    if study_trials is not None and (not whole(study_trials) or study_trials < 0):
        raise bad("study_trials", study_trials, "a whole number >= 0, or null")
    parse_workers(workers)
    directions = list(direction) if isinstance(direction, (list, tuple, ListConfig)) else [direction]
    for value in directions:
        try:
            better.parse(value)
        except ValueError:
            raise ClaraHydraError(f"direction must be minimize or maximize, got {value!r}",
                                  location="hydra.sweeper.direction", hint="set hydra.sweeper.direction=maximize "
                                                                           "(or minimize, or a list of them)") from None
    try:
        return make_pruner(pruner_spec)
    except ClaraHydraError:
        raise
    except Exception as exc:
        raise ClaraHydraError(f"cannot make the pruner: {first_line(exc)}", location="hydra.sweeper.pruner",
                              hint="use median, hyperband, successive_halving, percentile, none, or "
                                   "{_target_: optuna.pruners.X, ...} with that class's arguments") from None


def _handler_specs(handlers: Any) -> list[dict]:
    """hydra.sweeper.handlers: [{path: module.Class, args: {...}}, ...]."""
    specs = OmegaConf.to_container(handlers) if isinstance(handlers, (DictConfig, ListConfig)) else handlers
    if specs is None:
        return []
    hint = "write hydra.sweeper.handlers=[{path: module.MyHandler, args: {}}]"
    if not isinstance(specs, list):
        raise ClaraHydraError(f"handlers must be a list, got {specs!r}", location="hydra.sweeper.handlers", hint=hint)
    for i, spec in enumerate(specs):
        path = spec.get("path") if isinstance(spec, dict) else None
        if not isinstance(path, str) or "." not in path or not isinstance(spec.get("args") or {}, dict):
            raise ClaraHydraError(f"a handler is {{path: module.Class, args: {{...}}}}, got {spec!r}",
                                  location=f"hydra.sweeper.handlers[{i}]", hint=hint)
    return specs


def _objectives(objectives: Any, direction: Any) -> list[str] | None:
    """hydra.sweeper.objectives: one name per direction (key_metric, train_time, a metric's name)."""
    if objectives is None:
        return None
    names = list(objectives) if isinstance(objectives, (list, tuple, ListConfig)) else [objectives]
    n = len(direction) if isinstance(direction, (list, tuple, ListConfig)) else 1
    hint = "one per direction, e.g. hydra.sweeper.direction=[maximize,minimize] " \
           "hydra.sweeper.objectives=[key_metric,train_time]"
    if not names or any(not isinstance(x, str) or not x.strip() for x in names):
        raise ClaraHydraError(f"objectives must be a list of names (key_metric, train_time or a validation "
                              f"metric's name), got {names!r}", location="hydra.sweeper.objectives", hint=hint)
    if len(names) != n:
        raise ClaraHydraError(f"{len(names)} objective(s) for {n} direction(s)", location="hydra.sweeper.objectives",
                              hint=hint)
    return [str(x) for x in names]
