"""The structured-config schema: types of Clara's well-known first-level params.

Registered in Hydra's ConfigStore as the group ``clara_schema``, one config per param (by the
``hydra_plugins`` module of this package, so plain Hydra apps find it too). A converted config
selects the ones it has, first in its defaults (``- clara_schema@_global_: [epochs, amp]``), so
``epochs=abc`` fails with "Value 'abc' ... could not be converted to Integer", and a key the
config does not have never shows up (no ``???`` in ``--cfg job`` or ``--help``).
"""

from __future__ import annotations

from typing import Any

from .values import as_bool

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
    "channels_last_3d": bool,
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
        ok = as_bool(value) is not None
    elif typ is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        return None
    want = {bool: "a boolean", int: "an integer", float: "a number"}[typ]
    return f"must be {want}, got {value!r}"


def schema_node(name: str):
    from omegaconf import MISSING, BooleanNode, FloatNode, IntegerNode, OmegaConf
    node_type: dict[type, type[IntegerNode] | type[FloatNode] | type[BooleanNode]] = {
        int: IntegerNode, float: FloatNode, bool: BooleanNode}
    return OmegaConf.create({name: node_type[WELL_KNOWN[name]](MISSING, is_optional=False)})


def defaults_entry(keys) -> str | None:
    """The converted config's defaults line that types ``keys`` (those of them that are well known)."""
    typed = [k for k in WELL_KNOWN if k in set(keys)]
    return f"{SCHEMA_NAME}@_global_: [{', '.join(typed)}]" if typed else None


def register() -> None:
    """Register (or re-register) the ``clara_schema`` group in Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore
    cs = ConfigStore.instance()
    for name in WELL_KNOWN:
        cs.store(group=SCHEMA_NAME, name=name, node=schema_node(name), provider="clara_hydra",
                 replace=True)
