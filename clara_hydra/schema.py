"""The structured-config schema: types of Clara's well-known first-level params.

Registered in Hydra's ConfigStore as ``clara_schema`` (by the ``hydra_plugins`` module of
this package, so plain Hydra apps find it too). A converted config lists it first in its
defaults, so ``epochs=abc`` fails with "Value 'abc' ... could not be converted to Integer".
Keys a config does not have stay ``???`` (missing) and are dropped from the effective config.
"""

from __future__ import annotations

from typing import Any

WELL_KNOWN: dict[str, type] = {
    "epochs": int,
    "num_interval_per_valid": int,
    "num_training_epoch_per_valid": int,
    "train_summary_recording_interval": int,
    "learning_rate": float,
    "multi_gpu": bool,
    "amp": bool,
    "use_amp": bool,
    "use_gpu": bool,
    "cudnn_benchmark": bool,
    "dont_load_ckpt_model": bool,
    "tf32": bool,
    "dynamic_input_shape": bool,
    "use_scanning_window": bool,
}

SCHEMA_NAME = "clara_schema"


def check_value(typ: type, value: Any) -> str | None:
    """None when ``value`` fits ``typ`` (or is a ``{name}``/``${...}`` reference), else why not."""
    if isinstance(value, str) and (value.startswith("{") or value.startswith("${")):
        return None
    if typ is bool:
        ok = isinstance(value, bool) or (isinstance(value, str) and value.lower() in ("true", "false"))
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        return None
    want = {bool: "a boolean", int: "an integer", float: "a number"}[typ]
    return f"must be {want}, got {value!r}"


def schema_node():
    from omegaconf import MISSING, BooleanNode, FloatNode, IntegerNode, OmegaConf
    node_type = {int: IntegerNode, float: FloatNode, bool: BooleanNode}
    return OmegaConf.create({k: node_type[t](MISSING) for k, t in WELL_KNOWN.items()})


def register() -> None:
    """Register (or re-register) ``clara_schema`` in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore
    ConfigStore.instance().store(name=SCHEMA_NAME, node=schema_node(), provider="clara_hydra", replace=True)
