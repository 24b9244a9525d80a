"""What ``train.py`` does inside Hydra: fill the paths a run needs, resolve, save, train."""

from __future__ import annotations

import json
import os
import sys

from omegaconf import DictConfig, OmegaConf, open_dict

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


def run(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    run_dir = HydraConfig.get().runtime.output_dir
    source = ((cfg.get("clara_hydra") or {}).get("source")) if "clara_hydra" in cfg else None
    try:
        prepare(cfg, run_dir)
        tree = effective_from_cfg(cfg, enabled_only=True)
        with open(os.path.join(run_dir, "config_train.json"), "w") as fh:
            json.dump(tree, fh, indent=2)
        from .run import train
        return train(tree, config_file=_config_file(source), run_dir=run_dir)
    except ClaraHydraError as exc:
        if os.environ.get("CLARA_HYDRA_FULL_ERROR") == "1":
            raise
        if exc.file is None and source:
            exc.file = _config_file(source) or source
        print(exc.format(), file=sys.stderr)
        if HydraConfig.get().mode.name == "MULTIRUN":
            raise
        raise SystemExit(2) from None


def _config_file(source: str | None) -> str | None:
    if not source:
        return None
    from hydra.core.hydra_config import HydraConfig
    conf_dir = next((s.path for s in HydraConfig.get().runtime.config_sources
                     if s.provider == "main" and s.schema == "file"), None)
    path = os.path.normpath(os.path.join(conf_dir, source)) if conf_dir else source
    return path if os.path.exists(path) else None


__all__ = ["run", "prepare", "OmegaConf"]
