"""What ``train.py`` does inside Hydra: fill the paths a run needs, resolve, save, train."""

from __future__ import annotations

import json
import math
import os
import sys
import time

from omegaconf import DictConfig, open_dict

from ..errors import ClaraHydraError
from ..resolve import effective_from_cfg

SYNTHETIC = "synthetic"


def _undefined(cfg: DictConfig, key: str) -> bool:
    value = cfg.get(key) if key in cfg else None
    return key in cfg and isinstance(value, str) and value in ("{" + key + "}", SYNTHETIC)


def prepare(cfg: DictConfig, run_dir: str) -> None:
    """Built-in synthetic data where the datalist is ``synthetic`` (or nothing defines it), and
    checkpoints in the run folder where MMAR_CKPT_DIR is not set."""
    with open_dict(cfg):
        if any(_undefined(cfg, k) for k in ("DATASET_JSON", "DATA_ROOT")):
            from ..synth import builtin
            env = builtin()
            for key in ("DATASET_JSON", "DATA_ROOT"):
                if key in cfg:
                    cfg[key] = env[key]
        models = os.path.join(run_dir, "models")
        if _undefined(cfg, "MMAR_CKPT_DIR") or cfg.get("MMAR_CKPT_DIR") == "models":
            cfg["MMAR_CKPT_DIR"] = models
        if _undefined(cfg, "MMAR_CKPT") or cfg.get("MMAR_CKPT") == "models/model.pt":
            cfg["MMAR_CKPT"] = os.path.join(models, "model.pt")


def run(cfg: DictConfig) -> float | None:
    from hydra.core.hydra_config import HydraConfig

    from ..effective import enabled_only
    from ..sweep.trial import ENV_RESULT, current
    from .run import TrainingError, train

    run_dir = HydraConfig.get().runtime.output_dir
    source = ((cfg.get("clara_hydra") or {}).get("source")) if "clara_hydra" in cfg else None
    multirun = HydraConfig.get().mode.name == "MULTIRUN"
    worker = os.environ.get(ENV_RESULT)  # a worker process of the clara_optuna sweeper
    try:
        prepare(cfg, run_dir)
        full = effective_from_cfg(cfg, enabled_only=False)
        with open(os.path.join(run_dir, "config_train.json"), "w") as fh:
            json.dump(full, fh, indent=2)  # a normal Clara config: searched values in, no search blocks
        trial = current()
        started = time.time()
        try:
            value = train(enabled_only(full), config_file=_config_file(source), run_dir=run_dir, trial=trial)
        finally:
            if trial is not None:
                trial.set_user_attr("duration_s", round(time.time() - started, 3))
        if not math.isfinite(value):
            raise TrainingError(f"the key metric is {value}", location="validate",
                                hint="check the metric's inputs (post transforms, labels)")
        _outcome(worker, {"state": "complete", "value": value})
        return value
    except ClaraHydraError as exc:
        if os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
            raise
        if exc.file is None and source:
            exc.file = _config_file(source) or source
        print(exc.format(), file=sys.stderr)
        _outcome(worker, {"state": "fail", "reason": exc.format()})
        if multirun:
            raise
        raise SystemExit(2) from None
    except Exception as exc:
        if type(exc).__name__ != "TrialPruned":
            _outcome(worker, {"state": "fail", "reason": f"{type(exc).__name__}: {exc}"})
            raise
        print(f"clara-hydra: {exc}", file=sys.stderr)
        _outcome(worker, {"state": "pruned", "reason": str(exc)})
        if worker:
            return None
        raise


def _outcome(path: str | None, outcome: dict) -> None:
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(outcome, fh)
        os.replace(tmp, path)


def _config_file(source: str | None) -> str | None:
    if not source:
        return None
    from hydra.core.hydra_config import HydraConfig
    conf_dir = next((s.path for s in HydraConfig.get().runtime.config_sources
                     if s.provider == "main" and s.schema == "file"), None)
    path = os.path.normpath(os.path.join(conf_dir, source)) if conf_dir else source
    return path if os.path.exists(path) else None


__all__ = ["run", "prepare"]
