"""Read Clara's ``config_automl.json`` (controller, executor, handlers) and map it onto the
``clara_optuna`` sweeper's settings. Pure: no Optuna, no torch, and no code of the config is run
(a BYO controller's or handler's module is only looked for, so a missing one is named at once).

How each piece maps (the README's "config_automl.json" table says the same):

- ``controller``: ``ReinforcementController`` -> Optuna's TPE sampler (both learn, trial after
  trial, where the good values are; Clara's RL controller code was never published);
  ``RandomController`` -> Optuna's RandomSampler; ``"path"`` (a controller of your own) -> the
  ``clara_controller`` sampler, which runs it through Clara's controller interface.
  ``args.max_rounds`` -> ``n_trials`` and ``study_trials`` (the study's total).
- ``MMARHandler``: ``stop_threshold`` -> ``stop_threshold``; ``num_mmars_to_keep`` ->
  ``keep_best``; ``work_dir`` -> ``hydra.sweep.dir``.
- ``StatsHandler`` / ``MMARStatsHandler`` -> ``trials.csv`` / ``optimization_results.yaml``
  (always written); ``MMARTensorboardHandler`` -> ``tensorboard: true`` (HParams of every trial).
- ``{"path": ...}`` handlers -> ``handlers`` (Clara's events, through the sweeper).
- ``executor.args.remove_search_augs`` -> ``remove_search_augs``; other executor args are named
  in a notice as not needed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigSyntaxError, did_you_mean
from ..paths import search_dirs

#: The file Clara reads beside the training config (``$MMAR_ROOT/config/config_automl.json``).
DEFAULT_NAME = "config_automl.json"
#: Top-level keys of a config_automl.json.
KEYS = ("handlers", "executor", "controller")
CONTROLLERS = {"ReinforcementController": "tpe", "RandomController": "random"}
STATS_HANDLERS = {"StatsHandler": "trials.csv (written by every sweep)",
                  "MMARStatsHandler": "optimization_results.yaml and `clara-hydra report` (written by every sweep)",
                  "MMARTensorboardHandler": "TensorBoard HParams of every trial (hydra.sweeper.tensorboard)"}
HANDLERS = ("MMARHandler",) + tuple(STATS_HANDLERS)
MMAR_HANDLER_ARGS = ("num_mmars_to_keep", "stop_threshold", "train_config_file", "work_dir",
                     "key_mmar_content_only")
EXECUTORS = ("MMARExecutor",)


@dataclass
class AutoML:
    """What a config_automl.json sets: ``sweeper`` (``hydra.sweeper`` keys), ``sampler``
    (``tpe``, ``random`` or ``clara_controller``), the sweep folder, and notices of what is not
    needed here."""

    file: str
    sampler: str = "tpe"
    sampler_args: dict[str, Any] = field(default_factory=dict)  # clara_controller: path, args
    sweeper: dict[str, Any] = field(default_factory=dict)
    sweep_dir: str | None = None
    notes: list[str] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # sweeper key -> where in the file it came from


#: top-level keys of Clara's validation and inference configs (config_validation.json), which
#: have handlers too
EVALUATION_KEYS = ("evaluator", "model_loader", "val_metrics", "inferer", "dataset", "pre_transforms")


def is_automl(data: Any) -> bool:
    """Does this JSON look like a config_automl.json (and not like a training or validation config)?"""
    return isinstance(data, dict) and ("controller" in data or "executor" in data) \
        and not any(k in data for k in ("train", "validate") + EVALUATION_KEYS)


def is_evaluation(data: Any) -> bool:
    """Does this JSON look like a config_validation.json / config_inference.json (every slot at
    the top level, no train section)?"""
    return isinstance(data, dict) and "train" not in data and any(k in data for k in EVALUATION_KEYS)


def beside(config_file: str) -> str | None:
    """The config_automl.json Clara reads with this training config, if there is one."""
    path = os.path.join(os.path.dirname(os.path.abspath(config_file)), DEFAULT_NAME)
    return path if os.path.isfile(path) else None


def read(path: str, config_file: str) -> AutoML:
    """Read and check ``path``; ``config_file`` is the training config (BYO modules are looked
    for beside it and in its MMAR's ``custom/`` folder, as for BYOC components)."""
    from ..jsonfile import load_json
    data = load_json(path, "AutoML config")
    return analyse(data, file=path, config_file=config_file)


def analyse(data: Any, *, file: str, config_file: str) -> AutoML:
    def bad(message: str, location: str, hint: str | None = None) -> ConfigSyntaxError:
        return ConfigSyntaxError(message, file=file, location=location, hint=hint)

    if not isinstance(data, dict):
        raise bad(f"a config_automl.json is a JSON object, got {type(data).__name__}", "<top level>",
                  'write {"controller": {...}, "executor": {...}, "handlers": [...]}')
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise bad(f"unknown key '{unknown[0]}'", unknown[0],
                  did_you_mean(unknown[0], KEYS) + "a config_automl.json has controller, executor and handlers")
    out = AutoML(file=file)
    dirs = search_dirs(config_file)

    def component(node: Any, where: str) -> tuple[str | None, str | None, dict]:
        if not isinstance(node, dict):
            raise bad(f"a component is a JSON object with a name (or path) and args, got {type(node).__name__}",
                      where, 'write {"name": "...", "args": {...}}')
        name, path, args = node.get("name"), node.get("path"), node.get("args", {})
        for key in node:
            if key not in ("name", "path", "args"):
                raise bad(f"unknown key '{key}'", f"{where}.{key}", "a component has name, path and args")
        if name is None and path is None:
            raise bad("the component has neither name nor path", where,
                      'give "name" (a Clara component) or "path" (module.Class of your own)')
        for key, value in (("name", name), ("path", path)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise bad(f"{key} must be a non-empty string, got {value!r}", f"{where}.{key}")
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise bad(f"args must be a JSON object, got {type(args).__name__}", f"{where}.args")
        if path is not None:
            find_module(path, f"{where}.path", dirs, file)
        return name, path, args

    # -- controller ------------------------------------------------------------------------
    if "controller" in data:
        name, path, args = component(data["controller"], "controller")
        args = dict(args)
        rounds = args.pop("max_rounds", None) if path is None else args.get("max_rounds")
        if rounds is not None:
            if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
                raise bad(f"max_rounds must be a whole number >= 1, got {rounds!r}", "controller.args.max_rounds")
            out.sweeper["n_trials"] = rounds
            out.sweeper["study_trials"] = rounds
            out.sources["n_trials"] = out.sources["study_trials"] = "controller.args.max_rounds"
        if path is not None:
            out.sampler = "clara_controller"
            out.sampler_args = {"path": path, "args": dict(data["controller"].get("args") or {})}
        elif name in CONTROLLERS:
            out.sampler = CONTROLLERS[name]
            if args:
                out.notes.append(f"controller.args: {', '.join(sorted(args))} of {name} have no equivalent "
                                 f"(the {out.sampler} sampler's own settings are hydra.sweeper.sampler.*)")
        else:
            raise bad(f"unknown controller '{name}'", "controller.name",
                      did_you_mean(str(name), CONTROLLERS) + "use " + " or ".join(CONTROLLERS)
                      + ', or "path": "module.Class" for a controller of your own')

    # -- handlers --------------------------------------------------------------------------
    handlers = data.get("handlers", [])
    if not isinstance(handlers, list):
        raise bad(f"handlers must be a list, got {type(handlers).__name__}", "handlers")
    own: list[dict] = []
    for i, node in enumerate(handlers):
        where = f"handlers[{i}]"
        name, path, args = component(node, where)
        if path is not None:
            own.append({"path": path, "args": dict(args)})
            continue
        if name == "MMARHandler":
            _mmar_handler(args, where, out, bad)
        elif name in STATS_HANDLERS:
            if name == "MMARTensorboardHandler":
                out.sweeper["tensorboard"] = True
                out.sources["tensorboard"] = where
            if args:
                out.notes.append(f"{where}.args: {', '.join(sorted(args))} of {name} are not needed here")
        else:
            raise bad(f"unknown handler '{name}'", f"{where}.name",
                      did_you_mean(str(name), HANDLERS) + "use " + ", ".join(HANDLERS)
                      + ', or "path": "module.Class" for a handler of your own')
    if own:
        out.sweeper["handlers"] = own
        out.sources["handlers"] = "handlers[].path"

    # -- executor --------------------------------------------------------------------------
    if "executor" in data:
        name, path, args = component(data["executor"], "executor")
        if path is not None or name not in EXECUTORS:
            out.notes.append(f"executor: {path or name} is not used: trials run through Hydra's launcher or the "
                             f"sweeper's workers")
        args = dict(args)
        if "remove_search_augs" in args:
            value = args.pop("remove_search_augs")
            if not isinstance(value, bool):
                raise bad(f"remove_search_augs must be true or false, got {value!r}",
                          "executor.args.remove_search_augs")
            out.sweeper["remove_search_augs"] = value
            out.sources["remove_search_augs"] = "executor.args.remove_search_augs"
        if args:
            out.notes.append(f"executor.args: {', '.join(sorted(args))} not needed (each trial's log is train.log in "
                             f"its folder)")
    return out


def _mmar_handler(args: dict, where: str, out: AutoML, bad) -> None:
    for key in args:
        if key not in MMAR_HANDLER_ARGS:
            raise bad(f"unknown MMARHandler arg '{key}'", f"{where}.args.{key}",
                      did_you_mean(key, MMAR_HANDLER_ARGS) + "MMARHandler takes " + ", ".join(MMAR_HANDLER_ARGS))
    if "stop_threshold" in args:
        value = args["stop_threshold"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad(f"stop_threshold must be a number, got {value!r}", f"{where}.args.stop_threshold")
        out.sweeper["stop_threshold"] = float(value)
        out.sources["stop_threshold"] = f"{where}.args.stop_threshold"
    if "num_mmars_to_keep" in args:
        value = args["num_mmars_to_keep"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad(f"num_mmars_to_keep must be a whole number >= 1, got {value!r}",
                      f"{where}.args.num_mmars_to_keep")
        out.sweeper["keep_best"] = value
        out.sources["keep_best"] = f"{where}.args.num_mmars_to_keep"
    if "work_dir" in args:
        value = args["work_dir"]
        if not isinstance(value, str) or not value.strip():
            raise bad(f"work_dir must be a folder, got {value!r}", f"{where}.args.work_dir")
        out.sweep_dir = value
    if args.get("key_mmar_content_only") is not None:
        out.notes.append(f"{where}.args.key_mmar_content_only: trial folders hold a run's outputs only (its config, "
                         f"log, checkpoints), never a copy of the MMAR")
    conf = args.get("train_config_file")
    if conf is not None and conf != "{trainconf}":
        out.notes.append(f"{where}.args.train_config_file: {conf!r} is not read: the training config is the "
                         f"one converted")


def find_module(path: str, where: str, dirs: list[str], file: str) -> None:
    """Is the module of ``path`` (``module.Class``) there? Looked for, never imported."""
    module, _, attr = path.rpartition(".")
    if not module or not attr:
        raise ConfigSyntaxError(f"path '{path}' is not a dotted class path", file=file, location=where,
                                hint='write "path": "module.Class"')
    top = module.split(".")[0]
    found = importlib.machinery.PathFinder.find_spec(top, [d for d in dirs if os.path.isdir(d)])
    if found is None:
        try:
            found = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            found = None
    if found is None:
        looked = ", ".join(d for d in dirs if os.path.isdir(d))
        raise ConfigSyntaxError(f"cannot find module '{top}' of '{path}' (looked in {looked} and installed "
                                f"packages)", file=file, location=where,
                                hint=f"put {top}.py in the MMAR's custom/ folder (or beside the config)")
