"""``clara-hydra export RUN_DIR --bundle -o DIR``: a trained run (a plain run or a sweep's trial) as
a MONAI bundle that MONAI runs without clara-hydra:

    DIR/configs/train.json       what the run trained, in MONAI bundle syntax: its searched values
                                 written in, ``bundle_root``, ``device``, ``dataset_dir``, ``datalist``,
                                 ``network_def``, ``train::trainer``, the ids ``initialize`` and ``run``
    DIR/configs/inference.json   the validate path made an inference (clara-hydra infer's): the
                                 config's inferer, pre and post transforms, ``SaveImaged``
    DIR/configs/evaluate.json    Clara's validate.sh (clara-hydra validate's): the MMAR's
                                 config_validation.json where there is one, else the validate
                                 section; per-case metrics and summaries (MetricsSaver) in ``eval/``
    DIR/configs/datalist.json    the run's training and validation lists, relative to ``dataset_dir``
    DIR/configs/metadata.json    MONAI's defaults, filled: versions, the network's input and output,
                                 the key metric and its value, the searched values, a changelog line
    DIR/models/model.pt          the weights (a state dict); models/model.ts: TorchScript
    DIR/scripts/                 what MONAI does not have: clara-hydra's small adapters and the
                                 MMAR's own code (BYOC), imported from there
    DIR/docs/README.md           how it was made, how to run it

``python -m monai.bundle run --config_file configs/train.json`` trains (from the bundle's folder;
``--dataset_dir`` points at the data elsewhere), ``... --config_file configs/inference.json``
writes predictions into ``eval/``, ``... configs/evaluate.json`` the metrics. The bundle's
configs come from what the run trained (``bundle_config.json`` in its folder), never from the
Clara JSON again.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
import re
import shutil
from typing import Any

from .errors import ClaraHydraError

#: The bundle's top-level ids a user overrides (``--dataset_dir /data``) and what they start as.
DEVICE = "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')"
SCHEMA = "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20240725.json"
#: clara-hydra's adapters, carried as the bundle's scripts/clara_compat.py
COMPAT = "clara_hydra.train.compat."
SHARED_DATASET = "clara_hydra.train.cache.shared_dataset"
#: configs/logging.conf: MONAI's bundle runner logs to the console
LOGGING_CONF = """[loggers]
keys=root

[handlers]
keys=consoleHandler

[formatters]
keys=fullFormatter

[logger_root]
level=INFO
handlers=consoleHandler

[handler_consoleHandler]
class=StreamHandler
level=INFO
formatter=fullFormatter
args=(sys.stdout,)

[formatter_fullFormatter]
format=%(asctime)s - %(name)s - %(levelname)s - %(message)s
"""
#: Where inference saves, until the bundle names it (@output_dir)
OUTPUT_MARK = "/clara-hydra-bundle/output_dir"
_DEVICE_EXPR = re.compile(r"^\$torch\.device\(.*\)$")


def export_bundle(run_dir: str, out_root: str, *, force: bool = False) -> list[str]:
    """Write the bundle of the run in ``run_dir`` into ``out_root`` (whole or not at all); give what
    was noted on the way."""
    from .export import opened_run
    from .jsonfile import load_json
    from .staged import staged

    cfg, _hy, src, ckpt = opened_run(run_dir, out_root, force)
    built_file = os.path.join(run_dir, "bundle_config.json")
    if not os.path.isfile(built_file):
        raise ClaraHydraError("the run left no bundle_config.json (what it trained, in MONAI's terms)", file=run_dir,
                              hint="train it with this version of clara-hydra, then export it")
    built = load_json(built_file)
    with staged(out_root) as into:
        return _write(cfg, src, run_dir, ckpt, built, into)


def _write(cfg: Any, src: str, run_dir: str, ckpt: str, built: dict, out: str) -> list[str]:
    from . import better
    from .effective import enabled_only
    from .export import write_json
    from .resolve import effective_from_cfg
    from .train.export_ts import script

    notes: list[str] = []
    tree = enabled_only(effective_from_cfg(cfg, enabled_only=False, file=src))
    goal = better.of_config(tree)
    for sub in ("configs", "models", "scripts", "docs"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    lists: dict[str, list] = {}
    train = _standalone(built, lists, run_dir, goal_sign=goal.direction == "minimize")
    infer = _inference(tree, src, built)
    inference = _standalone(infer, {}, run_dir, goal_sign=False, inference=True) if infer else None
    try:
        evaluated, eval_file = _evaluation(cfg, tree, src, built, ckpt)
    except ClaraHydraError as exc:  # an evaluation config that does not fit the run: the rest stands
        evaluated, eval_file = None, None
        notes.append(f"configs/evaluate.json: not written: {exc.format()}")
    evaluate = _standalone(evaluated, {}, run_dir, goal_sign=False, inference=True) if evaluated else None
    dataset_dir = _relative_lists(lists)
    for config in (train, inference, evaluate):
        if config is not None:
            config["dataset_dir"] = dataset_dir
    scripts = _scripts(src, out, [train, inference, evaluate])
    notes += scripts
    write_json(os.path.join(out, "configs", "datalist.json"), lists)
    with open(os.path.join(out, "configs", "logging.conf"), "w") as fh:  # (monai.bundle run reads it)
        fh.write(LOGGING_CONF)
    write_json(os.path.join(out, "configs", "train.json"), train)
    if inference is not None:
        write_json(os.path.join(out, "configs", "inference.json"), inference)
    if evaluate is not None:
        write_json(os.path.join(out, "configs", "evaluate.json"), evaluate)
        notes.append("configs/evaluate.json: " + (f"from {eval_file}" if eval_file else
                                                  "the training config's validate section"))
    import torch

    from .train.export_ts import saved_weights
    torch.save(saved_weights(ckpt), os.path.join(out, "models", "model.pt"))
    refused = script(tree, ckpt, os.path.join(out, "models", "model.ts"), src)
    notes.append(f"models/model.ts: not written: {refused}" if refused else
                 "models/model.ts: the network as TorchScript")
    meta = _metadata(cfg, tree, train, run_dir, src, goal)
    write_json(os.path.join(out, "configs", "metadata.json"), meta)
    _readme(os.path.join(out, "docs", "README.md"), meta, src, run_dir, inference is not None, evaluate is not None)
    return notes


# --------------------------------------------------------------------------- the configs

def _standalone(built: dict, lists: dict[str, list], run_dir: str, *, goal_sign: bool,
                inference: bool = False) -> dict:
    """A built config (clara-hydra's ``train``/``validate`` sections) as a bundle that MONAI runs
    alone; the data lists it held go into ``lists`` (``training``, ``validation``); what it wrote
    into ``run_dir`` (the config's own savers, its curves) it writes into the bundle's folder."""
    sections = {k: copy.deepcopy(v) for k, v in built.items() if k in ("train", "validate")}
    train, validate = sections.get("train") or {}, sections.get("validate") or {}
    network_def = train.pop("model", None)
    if network_def is None:
        raise ClaraHydraError("the run's built config has no train.model", location="train.model")
    for name, sec in (("training", train), ("validation", validate)):
        ds = sec.get("dataset")
        if isinstance(ds, dict) and isinstance(ds.get("data"), list):
            lists[name] = ds["data"]
            ds["data"] = f"$monai.data.load_decathlon_datalist(@datalist, True, '{name}', @dataset_dir)"
            _plain_dataset(ds)
    if inference:
        evaluator = validate.get("evaluator")
        if isinstance(evaluator, dict):
            handlers = validate.setdefault("handlers", [])
            handlers.insert(0, {"_target_": "monai.handlers.CheckpointLoader", "load_path": "$@ckpt_dir + '/model.pt'",
                                "load_dict": {"model": "@network"}, "map_location": "@device"})
            evaluator["val_handlers"] = "@validate::handlers"
        run = ["$@validate::evaluator.run()"]
    else:
        saver = {"_target_": "monai.handlers.CheckpointSaver", "save_dir": "@ckpt_dir",
                 "save_dict": {"model": "@network"}}
        if isinstance(validate.get("evaluator"), dict):  # the best by the key metric, as the run kept it
            best = {**saver, "save_key_metric": True, "key_metric_filename": "model.pt"}
            if goal_sign:  # a minimized key metric (a loss): MONAI keeps the largest, so its sign turns
                best["key_metric_negative_sign"] = True
            validate.setdefault("handlers", []).append(best)
            validate["evaluator"]["val_handlers"] = "@validate::handlers"
            # as the run did: a validation interval longer than the training validates once at its end
            run = ["$@train::trainer.run()", "$@validate::evaluator.run(@train::trainer.state.epoch) "
                                             "if @validate::evaluator.state.epoch == 0 else None"]
        else:  # no validation: the last weights
            train.setdefault("handlers", []).append({**saver, "save_final": True, "final_filename": "model.pt"})
            train["trainer"]["train_handlers"] = "@train::handlers"
            run = ["$@train::trainer.run()"]
    out: dict[str, Any] = {
        "imports": ["$import os", "$import torch", "$import monai"],
        "bundle_root": ".",
        "ckpt_dir": "$@bundle_root + '/models'",
        "output_dir": "$@bundle_root + '/eval'",
        "dataset_dir": None,
        "datalist": "$@bundle_root + '/configs/datalist.json'",
        "device": DEVICE,
        "network_def": network_def,
        "network": "$@network_def.to(@device)",
        **({"train": train} if train else {}),
        **({"validate": validate} if validate else {}),
        "initialize": ["$monai.utils.set_determinism(seed=0)"],
        "run": run,
    }
    return _walk(out, os.path.abspath(run_dir))


def _plain_dataset(ds: dict) -> None:
    """clara-hydra's dataset that trials of a sweep share -> the MONAI class it stands for."""
    if ds.get("_target_") == SHARED_DATASET:
        ds["_target_"] = ds.pop("dataset_class", "monai.data.CacheDataset")
        ds.pop("key", None)


def _walk(node: Any, run_dir: str) -> Any:
    """References to the network and the device as the bundle names them; clara-hydra's adapters
    from the bundle's scripts; a path in the run's folder, the same path in the bundle's."""
    if isinstance(node, dict):
        return {k: _walk(v, run_dir) for k, v in node.items()}
    if isinstance(node, list):
        return [_walk(v, run_dir) for v in node]
    if isinstance(node, str):
        if node == run_dir:
            return "@bundle_root"
        if node.startswith(run_dir + os.sep):
            return f"$@bundle_root + {'/' + os.path.relpath(node, run_dir)!r}"
        if _DEVICE_EXPR.match(node) and node != DEVICE:
            return "@device"
        if node == OUTPUT_MARK:
            return "@output_dir"
        text = node.replace("@train::model", "@network").replace("@train#model", "@network")
        return text.replace(COMPAT, "clara_compat.")
    return node


def _inference(tree: dict, src: str, built: dict) -> dict | None:
    """The inference bundle clara-hydra infer builds from the config's validate path, on the run's
    validation list (None: the config validates nothing)."""
    return _validate_path(tree, src, built, infer=True)


def _evaluation(cfg: Any, tree: dict, src: str, built: dict, ckpt: str) -> tuple[dict | None, str | None]:
    """(The evaluation bundle clara-hydra validate builds, Clara's validate.sh: the MMAR's
    config_validation.json where there is one, else the training config's validate section; on
    the run's validation list, with the labels and metrics, the per-case reports in ``eval/``;
    the evaluation config it came from)."""
    from . import evalconf
    from .resolve import first_level_values
    eval_file = evalconf.find(src, None)
    if eval_file is not None:
        # the bundle's weights go into the training config's network (never a TorchScript file; the
        # config's own loader of the run's checkpoint gives way to the bundle's), the reports into
        # the bundle's output_dir
        fixed = {"dont_load_ts_model": True, "dont_load_ckpt_model": False, "MMAR_EVAL_OUTPUT_PATH": OUTPUT_MARK,
                 "MMAR_CKPT": ckpt, "MMAR_TORCHSCRIPT": ckpt}
        scalars = {**first_level_values(cfg), **fixed}
        ev = evalconf.read(eval_file, scalars, frozenset(fixed), tree)
        tree = {**ev.tree, "train": {**(ev.tree.get("train") or {}), "model": tree["train"]["model"]}}
    return _validate_path(tree, src, built, infer=False), eval_file


def _validate_path(tree: dict, src: str, built: dict, *, infer: bool) -> dict | None:
    """``tree``'s validate section as ``clara-hydra infer`` (``infer``) or ``clara-hydra validate``
    builds it, on the run's validation list (None: the config validates nothing)."""
    import tempfile

    from .evalconf import for_inference
    from .export import write_json
    from .train.evaluate import TRAINING_ONLY
    from .train.run import build
    data = ((built.get("validate") or {}).get("dataset") or {}).get("data")
    if not tree.get("validate") or not isinstance(data, list):
        return None
    with tempfile.TemporaryDirectory() as tmp:
        datalist = os.path.join(tmp, "datalist.json")
        write_json(datalist, {"validation": data})  # (the bundle reads its own datalist.json instead)

        def adapt(t: dict) -> dict:
            if infer:
                t = for_inference(t, "validation", OUTPUT_MARK)
            ds = t["validate"].get("dataset")
            if isinstance(ds, dict):
                t["validate"]["dataset"] = {**ds, "data_list_file_path": datalist, "data_file_base_dir": "/",
                                            "data_list_key": "validation"}
            return t
        _parser, bundle, _era = build(tree, config_file=src, device="cpu", amp=False, validate_only=True, adapt=adapt)
    validate = bundle.get("validate") or {}
    if "evaluator" not in validate:
        return None
    if not infer:  # the bundle's weights are loaded once (_standalone), never saved again; reports in eval/
        handlers = [h for h in validate.get("handlers") or [] if not (isinstance(h, dict) and str(
            h.get("_target_", "")).endswith(TRAINING_ONLY + ("CheckpointLoader",)))]
        if not any(isinstance(h, dict) and str(h.get("_target_", "")).endswith("MetricsSaver") for h in handlers):
            handlers.append({"_target_": "monai.handlers.MetricsSaver", "save_dir": OUTPUT_MARK, "metrics": "*",
                             "metric_details": "*", "summary_ops": "*",
                             "batch_transform": "$lambda x: [xx['image'].meta for xx in x]"})
        validate["handlers"] = handlers
    return {"train": {"model": bundle["train"]["model"]}, "validate": validate}


def _relative_lists(lists: dict[str, list]) -> str:
    """The data folder all list entries share; each path in ``lists`` made relative to it."""
    paths = [v for items in lists.values() for item in items if isinstance(item, dict)
             for v in item.values() if isinstance(v, str) and os.path.isabs(v)]
    if not paths:
        return "."
    root = os.path.commonpath([os.path.dirname(p) for p in paths])
    for items in lists.values():
        for item in items:
            if isinstance(item, dict):
                for k, v in item.items():
                    if isinstance(v, str) and os.path.isabs(v):
                        item[k] = os.path.relpath(v, root)
    return root


def _scripts(src: str, out: str, configs: list[dict | None]) -> list[str]:
    """scripts/: clara-hydra's adapters (where a config uses one) and the MMAR's own code, on
    ``sys.path`` once the bundle imports ``scripts``; a class from anywhere else that MONAI cannot
    import alone is refused in one line naming the component."""
    from .paths import search_dirs
    from .train import compat
    notes: list[str] = []
    text = json.dumps([c for c in configs if c is not None])
    code = ["import os", "import sys", "",
            "# the bundle's own code is imported by its module name (BYOC, clara_compat)",
            "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))", ""]
    with open(os.path.join(out, "scripts", "__init__.py"), "w") as fh:
        fh.write("\n".join(code))
    imports = ["$import scripts"]
    if "clara_compat." in text:
        with open(os.path.join(out, "scripts", "clara_compat.py"), "w") as fh:
            fh.write(inspect.getsource(compat))
        imports.append("$import clara_compat")
        notes.append("scripts/clara_compat.py: clara-hydra's adapters the config uses")
    copied = []
    for folder in search_dirs(src):  # where training imported the MMAR's own code from
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            if name.endswith(".py") and not os.path.exists(os.path.join(out, "scripts", name)):
                shutil.copyfile(path, os.path.join(out, "scripts", name))
                copied.append(name)
            elif os.path.isdir(path) and os.path.isfile(os.path.join(path, "__init__.py")) and \
                    not os.path.exists(os.path.join(out, "scripts", name)):
                shutil.copytree(path, os.path.join(out, "scripts", name), ignore=shutil.ignore_patterns("__pycache__"))
                copied.append(name + "/")
    if copied:
        notes.append(f"scripts/: the MMAR's own code: {', '.join(copied)}")
    for config in configs:
        if config is not None:
            config["imports"] += imports
            _refuse_clara_hydra(config)
    return notes


def _refuse_clara_hydra(config: dict, path: str = "") -> None:
    """Nothing of clara-hydra may stay (a bundle runs where it is not installed)."""
    if isinstance(config, dict):
        for k, v in config.items():
            _refuse_clara_hydra(v, f"{path}::{k}" if path else str(k))
    elif isinstance(config, list):
        for i, v in enumerate(config):
            _refuse_clara_hydra(v, f"{path}::{i}")
    elif isinstance(config, str) and "clara_hydra" in config:
        raise ClaraHydraError(f"needs clara-hydra to run ({config[:80]}), which a MONAI bundle cannot carry",
                              location=path, hint="export it as an MMAR instead (without --bundle)")


# --------------------------------------------------------------------------- metadata, docs

def _metadata(cfg: Any, tree: dict, train: dict, run_dir: str, src: str, goal: Any) -> dict:
    import monai
    import numpy
    import torch
    from monai.bundle.utils import DEFAULT_METADATA
    from omegaconf import OmegaConf

    from .paths import mmar_root
    meta = copy.deepcopy(DEFAULT_METADATA)
    net = train["network_def"]
    inferer = ((train.get("validate") or {}).get("inferer") or (train.get("train") or {}).get("inferer") or {})
    roi = inferer.get("roi_size") if isinstance(inferer, dict) else None
    dims = int(net.get("spatial_dims", 3)) if isinstance(net.get("spatial_dims", 3), int) else 3
    shape = list(roi) if isinstance(roi, list) and len(roi) == dims else ["16*n"] * dims
    names = list(cfg.clara_hydra.params) if "params" in cfg.clara_hydra else []
    searched: dict[str, Any] = {str(k): OmegaConf.select(cfg, str(k)) for k in names}
    value = _key_metric_value(run_dir)
    key = _key_metric_name(train)
    mmar = os.path.basename(mmar_root(src))
    n_in, n_out = int(net.get("in_channels", 1)), int(net.get("out_channels", 1))
    trial = os.path.basename(os.path.abspath(run_dir))
    meta.update({
        "schema": SCHEMA,
        "version": "0.1.0",
        "changelog": {"0.1.0": f"exported by clara-hydra from the Clara MMAR '{mmar}' ({os.path.basename(src)}), "
                               f"run {trial}"},
        "monai_version": monai.__version__, "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__,
        "name": f"{mmar} ({os.path.splitext(os.path.basename(src))[0]})",
        "task": "segmentation, as trained from a Clara Train config by clara-hydra",
        "description": f"The network of a Clara Train MMAR ({mmar}), trained by clara-hydra; searched values: "
                       + (", ".join(f"{k}={v}" for k, v in searched.items()) or "none"),
        "authors": "exported by clara-hydra", "copyright": "the MMAR's owner",
        "intended_use": "research; validate it on your own data before any other use",
        "searched_values": searched,
        "key_metric": {"name": key, "value": value, "direction": goal.direction},
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "modality": "unknown",
                                 "num_channels": n_in, "spatial_shape": shape,
                                 "dtype": "float32", "value_range": [], "is_patch_data": True,
                                 "channel_def": {str(i): f"channel {i}" for i in range(n_in)}}},
            "outputs": {"pred": {"type": "image", "format": "segmentation",
                                 "num_channels": n_out, "spatial_shape": shape,
                                 "dtype": "float32", "value_range": [], "is_patch_data": True,
                                 "channel_def": {str(i): f"class {i}" for i in range(n_out)}}},
        },
    })
    if value is not None:
        meta["eval_metrics"] = {key: value}
    return meta


def _key_metric_name(train: dict) -> str:
    key = ((train.get("validate") or {}).get("key_metric")) or {}
    return next(iter(key), "loss") if isinstance(key, dict) else "loss"


def _key_metric_value(run_dir: str) -> float | None:
    """The run's key metric as it reported it (clara_trial_result.json, or train.log's line)."""
    path = os.path.join(run_dir, "clara_trial_result.json")
    try:
        with open(path) as fh:
            data = json.load(fh)
        value = data.get("value")
        return float(value) if isinstance(value, (int, float)) else None
    except (OSError, ValueError, AttributeError):
        pass
    try:
        with open(os.path.join(run_dir, "train.log"), errors="replace") as fh:
            found = re.findall(r"key metric = ([-0-9.eE+]+)", fh.read())
        return float(found[-1]) if found else None
    except OSError:
        return None


def _readme(path: str, meta: dict, src: str, run_dir: str, inference: bool, evaluate: bool) -> None:
    key = meta.get("key_metric") or {}
    lines = [f"# {meta['name']}", "",
             f"A MONAI bundle exported by clara-hydra from the Clara config `{src}`, run `{os.path.abspath(run_dir)}`.",
             f"Its key metric {key.get('name')}: {key.get('value')} ({key.get('direction')}).", "",
             "Searched values: " + (", ".join(f"`{k}={v}`" for k, v in meta["searched_values"].items()) or "none"), "",
             "## Run it (from this folder; MONAI, PyTorch, nibabel and fire: no clara-hydra)", "", "```bash",
             "pip install 'monai[nibabel,fire]'   # (with the torch build for your machine)",
             "python -m monai.bundle run --config_file configs/train.json            # train (dataset_dir: the data)",
             "python -m monai.bundle run --config_file configs/train.json --dataset_dir /data/elsewhere"]
    if inference:
        lines.append("python -m monai.bundle run --config_file configs/inference.json        # predictions in eval/")
    if evaluate:
        lines.append("python -m monai.bundle run --config_file configs/evaluate.json         # metrics in eval/")
    lines += ["python -m monai.bundle verify_net_in_out --net_id network_def --meta_file configs/metadata.json "
              "--config_file configs/train.json", "```", "",
              "`configs/datalist.json` holds the run's lists, relative to `dataset_dir`; `scripts/` what MONAI does "
              "not have (clara-hydra's small adapters, the MMAR's own code)."]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")


