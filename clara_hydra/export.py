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
    if isinstance(raw, dict) and isinstance(effective, dict):  # (search blocks go: their values are in place)
        drop = T.TOP_SEARCH_KEYS if top else T.SEARCH_KEYS
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


def search_block(config: Any) -> str | None:
    """Where the first search block of a Clara config is (``search``, ``train.model.search``, an
    ``apply`` block ...), or None: a config without one is fixed values, as an export writes it."""
    from .paths import clara, nodes
    for loc, node in nodes(config):
        if isinstance(node, dict):
            keys = T.TOP_SEARCH_KEYS if loc == () else T.SEARCH_KEYS
            for key in node:  # (in the order the JSON writes them)
                if key in keys:
                    return clara(loc + (key,))
    return None


def check_target(out_root: str, src: str, force: bool) -> None:
    """Refuse to export into ``out_root`` where that would lose work: the MMAR the run trained from
    (its config would be replaced by the run's values), a config with a search space (a user's own,
    which an export never writes: ``--force`` writes over an earlier export, never over one of these),
    or, without ``force``, any folder that is not empty."""
    from .jsonfile import load_json
    from .paths import mmar_root
    target = os.path.join(out_root, "config", "config_train.json")
    if os.path.realpath(out_root) == os.path.realpath(mmar_root(src)) or \
            os.path.realpath(target) == os.path.realpath(src):
        raise ClaraHydraError(f"this is the MMAR the run trained from ({src}): the export would write over its "
                              f"config with the run's values", file=out_root,
                              hint="give another folder: -o NEW_DIR")
    if os.path.isfile(target):
        try:
            where = search_block(load_json(target))
        except ClaraHydraError:
            where = None  # not a Clara config: no search space to lose
        if where is not None:
            raise ClaraHydraError("holds a search space, which the export would replace with one run's values",
                                  file=target, location=where,
                                  hint="give another folder: -o NEW_DIR; --force writes over an earlier export, "
                                       "never over a search space")
    if os.path.isdir(out_root) and os.listdir(out_root) and not force:
        raise ClaraHydraError("the folder to export into is not empty", file=out_root,
                              hint="give a new folder, or --force to write over an earlier export")


#: In the line a run's train.log ends with when it finished (train.entry's "key metric = 0.91 (...; what
#: this run returns)", "objectives: ... (what this run returns)")
_FINISHED = "what this run returns)"


def run_state(run_dir: str, hy: Any) -> dict:
    """How the run in ``run_dir`` ended, from what it left (``hy``: its .hydra/hydra.yaml): a sweep
    worker's outcome file (``clara_trial_result.json``), else its row in the sweep's ``trials.csv``
    (the sweep's record of the study, written as each trial ends), else its ``train.log`` (the
    result line, or the error line). ``{"state": complete|pruned|fail|running|waiting|unfinished,
    "trial": its number in a sweep or None, "seen": where that was read, "reason": why, or ""}``."""
    from omegaconf import OmegaConf

    from .sweep import protocol as P
    table, row = _trial_row(run_dir, hy)
    subdir = str(OmegaConf.select(hy, "sweep.subdir", default="")) if _multirun(hy) else ""
    trial = int(row["number"]) if row is not None else int(subdir) if subdir.isdigit() else None
    outcome = P.read_outcome(os.path.join(run_dir, P.RESULT_FILE))
    if outcome is not None:  # (the trial's worker wrote it: the sweeper may have stopped before it read it)
        return {"state": outcome["state"], "trial": trial, "seen": f"{P.RESULT_FILE}: {outcome['state']}",
                "reason": str(outcome.get("reason") or "")}
    if row is not None:
        state = row.get("state") or "unfinished"
        return {"state": state, "trial": trial, "seen": f"{os.path.relpath(table)}: {state}",
                "reason": row.get("reason") or ""}
    try:
        with open(os.path.join(run_dir, "train.log"), errors="replace") as fh:
            log = fh.read().splitlines()
    except OSError:
        log = []
    error = next((ln[ln.index("error:"):] for ln in reversed(log) if "][ERROR] error:" in ln), None)
    if error is not None:
        return {"state": P.FAIL, "trial": trial, "seen": "train.log", "reason": error}
    if any(_FINISHED in ln for ln in log):
        return {"state": P.COMPLETE, "trial": trial, "seen": "train.log", "reason": ""}
    return {"state": "unfinished", "trial": trial, "seen": "",
            "reason": "no outcome: its train.log has neither a result nor an error line" if log else
                      "no outcome: no train.log"}


def _multirun(hy: Any) -> bool:
    """Was the run a job of a sweep in Hydra's own process (a worker process's job runs as a run)?"""
    return str(getattr(hy, "mode", "")).endswith("MULTIRUN")


def _trial_row(run_dir: str, hy: Any) -> tuple[str, dict | None]:
    """(the sweep's trials.csv, the row of the trial whose job folder is ``run_dir``, or None)."""
    import csv
    cwd = str(hy.runtime.cwd) if hy.runtime.cwd else os.getcwd()
    here = os.path.realpath(run_dir)
    tables = [os.path.join(os.path.dirname(here), "trials.csv")]  # a worker's job: in the sweep's folder
    if _multirun(hy):
        tables.insert(0, os.path.join(cwd, str(hy.sweep.dir), "trials.csv"))
    for table in dict.fromkeys(tables):
        try:
            with open(table, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, csv.Error, UnicodeDecodeError):
            continue
        mine = [r for r in rows if r.get("job_dir") and str(r.get("number", "")).isdigit()
                and os.path.realpath(os.path.join(cwd, r["job_dir"])) == here]
        if mine:  # (a trial that reused another's result names that one's folder too: the folder's own first)
            return table, next((r for r in mine if r["number"] == os.path.basename(here)), mine[0])
    return tables[0], None


def state_warning(state: dict, run_dir: str, checkpoint: str | None) -> str | None:
    """The line that says a run did not finish (failed, pruned, interrupted or still running) and
    what its checkpoint is then; None for a run that completed."""
    from .sweep import protocol as P
    if state["state"] == P.COMPLETE:
        return None
    who = f"trial {state['trial']}" if state["trial"] is not None else "the run"
    what = {P.FAIL: "failed", P.PRUNED: "was pruned", "waiting": "did not start"}.get(state["state"], "did not finish")
    line = f"{who} {what} ({state['seen'] or 'interrupted, or still running'})"
    line += f": {state['reason']}" if state["reason"] else ""
    epoch = P.resume_epoch(run_dir) if os.path.isfile(P.resume_file(run_dir)) else None
    line += f"; its resume point is after epoch {epoch}" if epoch is not None else ""
    return line + (f"; models/model.pt is {os.path.relpath(checkpoint, run_dir)}, the best checkpoint it saved "
                   f"before it stopped, not that of a whole training" if checkpoint else "")


def publish(mmar: str, checkpoint: str, *, tree: dict, config_file: str | None = None) -> str:
    """Leave the MMAR ready to validate and infer, as Clara's train.sh did (a plain run of
    ``clara-hydra train --mmar``; a sweep's best trial, whose searched values the MMAR's config does
    not have, is an MMAR of its own: ``best_mmar``): ``checkpoint`` as its ``MMAR_CKPT``
    (environment.json's, else ``models/model.pt``) and the network of ``tree`` (the run's
    effective, enabled-only config) as TorchScript as its ``MMAR_TORCHSCRIPT`` (else ``model.ts``
    beside it). A model that was there is kept (:func:`keep_earlier`). Gives one line to say."""
    from .jsonfile import load_json
    from .paths import in_mmar
    env_file = os.path.join(mmar, "config", "environment.json")
    env = load_json(env_file, "environment") if os.path.isfile(env_file) else {}
    env = env if isinstance(env, dict) else {}

    def place(key: str, default: str) -> str:
        value = env.get(key)
        value = value if isinstance(value, str) and value and not value.startswith("{") else default
        return value if os.path.isabs(value) else in_mmar(value, mmar)
    ckpt_out = place("MMAR_CKPT", CKPT)
    ts_out = place("MMAR_TORCHSCRIPT", os.path.join(os.path.dirname(os.path.relpath(ckpt_out, mmar)), "model.ts"))
    os.makedirs(os.path.dirname(ckpt_out), exist_ok=True)
    # both go aside first: an earlier model.ts never stays beside the new model.pt (nor where it does not script)
    kept = [name for name in map(keep_earlier, (ckpt_out, ts_out)) if name]
    shutil.copyfile(checkpoint, ckpt_out + ".tmp")
    os.replace(ckpt_out + ".tmp", ckpt_out)
    from .train.export_ts import script
    refused = script(tree, checkpoint, ts_out, config_file)
    return (f"the MMAR is ready to validate and infer (clara-hydra validate --mmar {mmar}): {ckpt_out}"
            + (f", {ts_out}" if refused is None else f" (no {os.path.basename(ts_out)}: {refused})")
            + (f"; the earlier model kept as {', '.join(kept)}" if kept else ""))


def keep_earlier(path: str) -> str | None:
    """A model about to be written over is kept as ``PATH.prev`` (one before it goes); gives that
    name, or None where there was none."""
    if not os.path.isfile(path):
        return None
    os.replace(path, path + ".prev")
    return os.path.basename(path) + ".prev"


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
    cfg, hy, src, ckpt = opened_run(run_dir, out_root, force)
    from .staged import staged
    with staged(out_root) as into:  # whole or not at all
        return _write(cfg, hy, src, run_dir, ckpt, into, remove_disabled)


def opened_run(run_dir: str, out_root: str, force: bool) -> tuple[Any, Any, str, str]:
    """What every export of a run starts from: its composed config and Hydra config, the Clara
    config it came from, its checkpoint; ``out_root`` checked (:func:`check_target`), and a
    warning where the run did not finish."""
    from omegaconf import OmegaConf

    from .logs import warn
    from .paths import config_dirs, source_file

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
    check_target(out_root, src, force)
    state = run_state(run_dir, hy)
    try:
        ckpt = pick_checkpoint(os.path.join(run_dir, "models"))
    except ClaraHydraError as exc:
        line = state_warning(state, run_dir, None)
        if line:
            exc.message += f": {line}"
        raise
    line = state_warning(state, run_dir, ckpt)
    if line:
        warn(line)
    return cfg, hy, src, ckpt


def _write(cfg: Any, hy: Any, src: str, run_dir: str, ckpt: str, out_root: str, remove_disabled: bool) -> list[str]:
    """The exported MMAR's files, written into ``out_root`` (a folder beside the export's, moved
    into place once complete: the paths it writes are relative to the MMAR)."""
    from . import convert as C
    from .evalconf import FILE_NAME, INFERENCE_FILE_NAME
    from .jsonfile import load_json
    from .paths import mmar_root
    from .reader import read
    from .render import write
    from .resolve import effective_from_cfg, first_level_values, override_keys
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
    os.makedirs(os.path.join(out_root, "models"), exist_ok=True)
    shutil.copyfile(ckpt, os.path.join(out_root, CKPT))
    notes.append(f"models/model.pt: {os.path.relpath(ckpt, run_dir)} of the run")
    from .effective import enabled_only
    from .train.export_ts import script
    refused = script(enabled_only(effective), ckpt, os.path.join(out_root, TORCHSCRIPT), src)
    notes.append(f"models/model.ts: not written: {refused}" if refused else
                 "models/model.ts: the network as TorchScript")
    conv = C.convert(read(config_path))
    write(conv, os.path.join(out_root, "conf"))
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


__all__ = ["written", "pick_checkpoint", "environment", "export", "opened_run", "search_block", "check_target",
           "run_state", "state_warning", "CKPT", "TORCHSCRIPT"]
