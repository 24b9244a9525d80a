"""Export a run (a sweep's trial, or a single run) as a complete Clara MMAR: the training config
with the run's values written in and no search blocks, its environment, the validation config,
the checkpoint as ``models/model.pt`` (and ``models/model.ts`` where the network scripts), and
``conf/`` converted, so ``clara-hydra validate``, ``infer`` and ``train`` (finetune) run on it
where it is moved to.

The config is the user's JSON as written, with the values the run used put in: ``"{NAME}"``
references, ``@refs``, expressions and aliases stay as they were; ``search``, ``apply`` and
``lr_search`` blocks go (their values are in place). Pure except the TorchScript step
(:mod:`clara_hydra.train.export_ts`, which imports torch).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

from . import tree as T
from .errors import ClaraHydraError

#: Blocks of a search space: gone from an exported config (the values they chose are in place)
SEARCH_KEYS = ("search", "apply")
TOP_SEARCH_KEYS = ("search", "lr_search")
#: What the exported environment.json names (relative to the exported MMAR)
CKPT = "models/model.pt"
TORCHSCRIPT = "models/model.ts"
_NAME = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def written(raw: Any, effective: Any, names: set[str], top: bool = True) -> Any:
    """``raw`` (the user's JSON) with the values of ``effective`` (the run's effective config,
    enabled_only=False) put in. A string that uses a ``{NAME}`` of ``names`` (first-level params
    and environment keys) stays as written: its value comes from the NAME, which the run's value
    is written into."""
    if T.is_ref(raw):
        return raw  # {"ref": name}: it follows the component it names, whose values are written in
    if isinstance(raw, dict) and isinstance(effective, dict):
        drop = TOP_SEARCH_KEYS if top else SEARCH_KEYS
        out = {k: (written(v, effective[k], names, False) if k in effective else v)
               for k, v in raw.items() if k not in drop}
        if not top:  # e.g. "disabled" that a searched @disabled set, where the JSON had none
            out.update({k: v for k, v in effective.items() if k not in raw and k not in drop})
        return out
    if isinstance(raw, list) and isinstance(effective, list) and len(raw) == len(effective):
        return [written(r, e, names, False) for r, e in zip(raw, effective)]
    if isinstance(raw, str) and any(m.group(1) in names for m in _NAME.finditer(raw)):
        return raw
    if isinstance(raw, str) and raw[:1] in "@#" or isinstance(raw, str) and raw.lstrip().startswith("lambda"):
        return raw
    return effective


def pick_checkpoint(models_dir: str) -> str:
    """The run's checkpoint: ``model.pt`` (clara-hydra's saver), else the one whose name holds the
    best key metric (MONAI's ``*_key_metric=0.91.pt``), else the newest ``.pt``."""
    if not os.path.isdir(models_dir):
        raise ClaraHydraError("the run wrote no checkpoint", file=models_dir,
                              hint="export a run that trained (its models/ folder holds the checkpoint)")
    files = [f for f in os.listdir(models_dir) if f.endswith(".pt")]
    if "model.pt" in files:
        return os.path.join(models_dir, "model.pt")
    scored = [(float(m.group(1)), f) for f in files if (m := re.search(r"key_metric=(-?[0-9.]+?)\.pt$", f))]
    if scored:
        return os.path.join(models_dir, max(scored)[1])
    if files:
        return max((os.path.join(models_dir, f) for f in files), key=os.path.getmtime)
    raise ClaraHydraError("the run wrote no checkpoint", file=models_dir,
                          hint="export a run that trained (its models/ folder holds the checkpoint)")


def environment(env: dict, values: dict, overridden: set[str], src_root: str, out_root: str,
                cwd: str) -> tuple[dict, list[str]]:
    """The exported environment.json and what was done to it: the run's values (a key set on the
    run's command line, relative, was the caller's: made absolute from ``cwd``); the checkpoint
    names Clara's; a datalist inside the MMAR copied along; a path that would not be found from
    the exported MMAR made absolute."""
    from .paths import MMAR_PATH_KEYS, in_mmar
    out, notes = dict(env), []
    for key in set(env) | (overridden & set(MMAR_PATH_KEYS)):
        value = values.get(key, env.get(key))
        if key in overridden and isinstance(value, str) and key in MMAR_PATH_KEYS and not os.path.isabs(value):
            value = os.path.normpath(os.path.join(cwd, value))
        out[key] = value
    out.update({"MMAR_CKPT_DIR": "models", "MMAR_CKPT": CKPT, "MMAR_TORCHSCRIPT": TORCHSCRIPT})
    out.setdefault("MMAR_EVAL_OUTPUT_PATH", "eval")  # (as every Clara MMAR had it: its validation writes there)
    for key in ("DATASET_JSON", "DATA_ROOT", "PRETRAIN_WEIGHTS_FILE"):
        value = out.get(key)
        if not isinstance(value, str) or not value or os.path.isabs(value) or value.startswith("{") \
                or value == "synthetic":
            continue
        found = in_mmar(value, src_root)
        inside = os.path.relpath(found, src_root)
        if key == "DATASET_JSON" and os.path.isfile(found) and not inside.startswith(".."):
            os.makedirs(os.path.dirname(os.path.join(out_root, inside)), exist_ok=True)
            shutil.copyfile(found, os.path.join(out_root, inside))
            notes.append(f"{key}: the datalist {inside} copied along")
        else:
            out[key] = found
            notes.append(f"{key}: written as {found} (relative to the MMAR it would not be found from the export)")
    return out, notes


def write_json(path: str, data: Any) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")


def export(run_dir: str, out_root: str, *, force: bool = False, remove_disabled: bool = False) -> list[str]:
    """Write the MMAR of the run in ``run_dir`` (a single run's folder, or a sweep's job folder)
    into ``out_root``; give what was noted on the way (the TorchScript outcome among it).
    ``remove_disabled``: the transforms the run had disabled are left out (Clara's
    ``remove_search_augs``)."""
    from omegaconf import OmegaConf

    from . import convert as C
    from .evalconf import FILE_NAME, INFERENCE_FILE_NAME
    from .paths import config_dirs, mmar_root, source_file
    from .reader import load_json, read
    from .resolve import effective_from_cfg, first_level_values, override_keys

    hydra_dir = os.path.join(run_dir, ".hydra")
    if not os.path.isfile(os.path.join(hydra_dir, "config.yaml")):
        raise ClaraHydraError("not a run folder: no .hydra/config.yaml", file=run_dir,
                              hint="give the folder of a run or of a sweep's trial (it holds .hydra/ and models/)")
    cfg: Any = OmegaConf.load(os.path.join(hydra_dir, "config.yaml"))
    hy: Any = OmegaConf.load(os.path.join(hydra_dir, "hydra.yaml")).hydra
    source = OmegaConf.select(cfg, "clara_hydra.source")
    if not source:
        raise ClaraHydraError("the run is not of a converted Clara config (no clara_hydra.source)", file=run_dir)
    src = source_file(str(source), config_dirs(hy.runtime.config_sources))
    if src is None:
        raise ClaraHydraError(f"the Clara config the run came from is not there: {source}", file=run_dir,
                              hint="export where the MMAR the run trained from still is")
    if os.path.isdir(out_root) and os.listdir(out_root) and not force:
        raise ClaraHydraError("the folder to export into is not empty", file=out_root,
                              hint="give a new folder, or --force to write over it")
    notes: list[str] = []
    config_dir, root = os.path.dirname(os.path.abspath(src)), mmar_root(src)
    raw = load_json(src)
    env_file = os.path.join(config_dir, "environment.json")
    env = load_json(env_file, "environment") if os.path.isfile(env_file) else {}
    effective = effective_from_cfg(cfg, enabled_only=False, file=src)
    names = {k for k, v in raw.items() if not isinstance(v, (dict, list))} | set(env)
    config_path = os.path.join(out_root, "config", "config_train.json")
    config = written(raw, effective, names)
    if remove_disabled:
        from .sweep.results import without_disabled_transforms
        config = without_disabled_transforms(config)
    write_json(config_path, config)
    env_out, env_notes = environment(env, first_level_values(cfg), set(override_keys(hy.overrides.task)), root,
                                     out_root, str(hy.runtime.cwd))
    write_json(os.path.join(out_root, "config", "environment.json"), env_out)
    notes += env_notes
    for name in (FILE_NAME, INFERENCE_FILE_NAME):
        beside = os.path.join(config_dir, name)
        if os.path.isfile(beside):
            shutil.copyfile(beside, os.path.join(out_root, "config", name))
    notes += _copy_code(root, config_dir, out_root)
    ckpt = pick_checkpoint(os.path.join(run_dir, "models"))
    os.makedirs(os.path.join(out_root, "models"), exist_ok=True)
    shutil.copyfile(ckpt, os.path.join(out_root, CKPT))
    notes.append(f"models/model.pt: {os.path.relpath(ckpt, run_dir)} of the run")
    from .effective import enabled_only
    from .train.export_ts import script
    refused = script(enabled_only(effective), ckpt, os.path.join(out_root, TORCHSCRIPT), src)
    notes.append(f"models/model.ts: not written: {refused}" if refused else
                 "models/model.ts: the network as TorchScript")
    conv = C.convert(read(config_path))
    C.write(conv, os.path.join(out_root, "conf"))
    return notes


def _copy_code(root: str, config_dir: str, out_root: str) -> list[str]:
    """The MMAR's own code (BYOC: where clara-hydra looks for it, :func:`clara_hydra.paths.search_dirs`):
    ``custom/`` of the MMAR and of its config folder, and Python files beside the config."""
    copied = []
    for src, dst in ((os.path.join(root, "custom"), os.path.join(out_root, "custom")),
                     (os.path.join(config_dir, "custom"), os.path.join(out_root, "config", "custom"))):
        if os.path.isdir(src) and os.path.abspath(src) != os.path.abspath(dst) and not os.path.isdir(dst):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            copied.append(os.path.relpath(dst, out_root))
    for name in sorted(os.listdir(config_dir)):
        if name.endswith(".py"):
            shutil.copyfile(os.path.join(config_dir, name), os.path.join(out_root, "config", name))
            copied.append(f"config/{name}")
    return [f"your code copied along: {', '.join(copied)}"] if copied else []


__all__ = ["written", "pick_checkpoint", "environment", "export", "CKPT", "TORCHSCRIPT"]
