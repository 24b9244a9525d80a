"""Clara's evaluation configs (``config_validation.json``; v3, v4.0 and v4.1 forms) as a training
tree whose ``validate`` section the training code builds: the network is the training config's
(or the TorchScript file the config names), the rest is the evaluation config's.

Pure: no torch, no MONAI, and nothing of the config runs here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from . import tree as T
from .errors import ClaraHydraError, ConfigSyntaxError
from .values import as_bool

FILE_NAME = "config_validation.json"
#: what Clara's infer.sh read; infer takes it where it is there, else the validation config
INFERENCE_FILE_NAME = "config_inference.json"
#: ``--eval-config none``: the training config's validate section, even where a
#: config_validation.json is there
NONE = "none"
#: The slots of a v4 evaluation config (all at its top level); they become the validate section.
V4_SLOTS = ("pre_transforms", "dataset", "dataloader", "inferer", "handlers", "post_transforms", "key_metric",
            "additional_metrics", "metrics", "evaluator")
#: A v3 evaluation config's slots (TensorFlow era): mapped onto the training config's validate section.
V3_SLOTS = ("pre_transforms", "label_transforms", "post_transforms", "inferer", "val_metrics", "writers")


@dataclass
class Evaluation:
    file: str
    #: an effective, enabled-only training tree: the training config's model, the evaluation's validate
    tree: dict
    #: ("ts", path): the network is that TorchScript file; ("ckpt", path): the training config's
    #: network with the weights of that checkpoint
    weights: tuple[str, str]
    #: v3 ``writers`` (WriteNifti): (field, folder, dtype)
    writers: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: v3 (its slots map onto the training config's validate section) or v4 (its top-level slots
    #: are the validate section)
    era: str = "v4"


def find(config_file: str | None, given: str | None, infer: bool = False) -> str | None:
    """The evaluation config to run: ``given`` (``none``: none), else the config_validation.json
    (``infer``: the config_inference.json, else that) beside the training config, else None (the
    training config's validate section)."""
    if given == NONE:
        return None
    if given:
        if not os.path.isfile(given):
            raise ClaraHydraError("no such evaluation config", file=given,
                                  hint=f"give a config_validation.json, or --eval-config {NONE} for the training "
                                       f"config's validate section")
        return given
    for name in ((INFERENCE_FILE_NAME, FILE_NAME) if infer else (FILE_NAME,)) if config_file else ():
        beside = os.path.join(os.path.dirname(os.path.abspath(config_file or "")), name)
        if os.path.isfile(beside):
            return beside
    return None


def is_v3(data: dict) -> bool:
    if any(k in data for k in ("model_loader", "val_metrics", "label_transforms", "writers")):
        return True
    return any(isinstance(c, dict) and "fields" in (c.get("args") or {}) for c in data.get("pre_transforms") or [])


def read(path: str, scalars: dict, overridden: frozenset, train_tree: dict) -> Evaluation:
    """The evaluation config at ``path`` with its ``{NAME}`` values from ``scalars`` (the
    composed training config's first-level values and environment, MMAR paths made absolute)
    and its own first-level values; a name set on the command line (``overridden``) wins over
    the config's own value. ``train_tree`` is the effective, enabled-only training config."""
    from .jsonfile import load_json
    data = load_json(path, "evaluation config")
    if not isinstance(data, dict):
        raise ConfigSyntaxError("an evaluation config must be a JSON object", file=path, location="<top level>")
    if "train" in data:
        raise ConfigSyntaxError("this is a training config, not an evaluation config", file=path,
                                hint="give a config_validation.json to --eval-config")
    v3 = is_v3(data)
    used = (V3_SLOTS if v3 else V4_SLOTS + ("model",))
    notes = []
    loader = data.get("model_loader")
    if v3 and isinstance(loader, dict) and T.is_component(loader):
        notes.append(f"model_loader {T.class_name(loader)} loads a TensorFlow model: the network here is the "
                     f"training config's, with the weights MMAR_CKPT names")
    unused = [k for k, v in data.items() if isinstance(v, (dict, list)) and k not in used]
    if unused:
        notes.append(f"not used here: {', '.join(unused)} (clara-hydra reads {', '.join(used)})")
    resolved = _substituted({k: v for k, v in data.items() if k not in unused}, scalars, overridden, path)
    try:
        from .effective import effective
        tree = effective(resolved, enabled_only=True)
    except ClaraHydraError as exc:
        raise exc.with_file(path) from None
    ev = _v3(tree, train_tree, path) if v3 else _v4(tree, train_tree, path)
    ev.notes[:0] = notes
    return ev


def _substituted(data: dict, scalars: dict, overridden: frozenset, path: str) -> dict:
    """``data`` with its ``{NAME}`` strings given their values (OmegaConf interpolation, as the
    training config's are)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from .convert import _Values, escape
    own = {k for k, v in data.items() if not isinstance(v, (dict, list))}
    defined = set(scalars) | own
    values = _Values(defined, path)
    body = values.conv(data, ())
    for key, value in scalars.items():
        if key not in own or key in overridden:
            body[key] = escape(value) if isinstance(value, str) else value
    if values.undefined:
        name, loc = next(iter(values.undefined.items()))
        from .paths import clara
        raise ClaraHydraError(f"'{{{name}}}' names nothing: neither the environment nor the config defines it",
                              file=path, location=clara(loc),
                              hint=f"set {name} in environment.json or on the command line: {name}=VALUE")
    try:
        out: Any = OmegaConf.to_container(OmegaConf.create(body), resolve=True)
    except OmegaConfBaseException as exc:
        from .errors import first_line
        raise ClaraHydraError(f"cannot give the config its values: {first_line(exc)}", file=path,
                              location=getattr(exc, "full_key", None) or None,
                              hint="set the names it uses in environment.json or on the command line") from None
    return out


def _weights(tree: dict, path: str) -> tuple[str, str]:
    """Which weights the config loads: its ``model`` list (v4.1: ``ts_path`` / ``ckpt_path``
    entries, the disabled ones dropped already), else the checkpoint MMAR_CKPT names."""
    models = tree.get("model")
    entries = models if isinstance(models, list) else [models] if isinstance(models, dict) else []
    for entry in entries:
        if not isinstance(entry, dict) or as_bool(entry.get("disabled", False)) is True:
            continue
        for key, kind in (("ts_path", "ts"), ("ckpt_path", "ckpt")):
            if isinstance(entry.get(key), str):
                return kind, entry[key]
    if isinstance(models, list) and models:
        raise ClaraHydraError("every entry of 'model' is disabled: nothing to load", file=path, location="model",
                              hint="dont_load_ts_model=false (the TorchScript file) or dont_load_ckpt_model=false "
                                   "(the checkpoint)")
    return "ckpt", checkpoint(tree, path)


def checkpoint(scalars: dict, path: str | None) -> str:
    """The checkpoint MMAR_CKPT names."""
    ckpt = scalars.get("MMAR_CKPT")
    if not isinstance(ckpt, str) or not ckpt or ckpt.startswith("{"):
        raise ClaraHydraError("no checkpoint to load: MMAR_CKPT is not set", file=path, location="MMAR_CKPT",
                              hint="set MMAR_CKPT=PATH (or MMAR_CKPT in the MMAR's environment.json)")
    return ckpt


def _first_level(tree: dict) -> dict:
    return {k: v for k, v in tree.items() if not isinstance(v, (dict, list))}


def _v4(tree: dict, train_tree: dict, path: str) -> Evaluation:
    weights = _weights(tree, path)
    validate = {k: tree[k] for k in V4_SLOTS if k in tree}
    if "evaluator" not in validate:
        raise ConfigSyntaxError("the evaluation config has no evaluator", file=path, location="evaluator",
                                hint="add an evaluator (SupervisedEvaluator)")
    model = train_tree.get("train", {}).get("model")
    if weights[0] == "ts":
        model = {"path": "torch.jit.load", "args": {"f": weights[1], "map_location": "cpu"}}
    elif model is None:
        raise ClaraHydraError("the training config has no model to load the checkpoint into", file=path,
                              location="train.model", hint="validate with the MMAR whose training wrote it")
    out = {**_first_level(train_tree), **_first_level(tree), "train": {"model": model}, "validate": validate}
    return Evaluation(path, out, weights)


def _v3(tree: dict, train_tree: dict, path: str) -> Evaluation:
    """A v3 evaluation config on the training config's network and data (its validate image
    pipeline): its pre- and label transforms, inferer and metrics; its writers, as NIfTI."""
    notes = []
    skipped = sorted({T.class_name(c) for c in tree.get("post_transforms") or [] if T.is_component(c)})
    if skipped:
        notes.append(f"post_transforms ({', '.join(skipped)}) are done from the training config's final activation "
                     f"and classes")
    validate = dict(train_tree.get("validate") or {})
    if not validate.get("image_pipeline"):
        raise ClaraHydraError("the training config has no validate image_pipeline: no data to validate on",
                              file=path, location="validate.image_pipeline",
                              hint="validate with the MMAR's training config (it names the validation data)")
    labels = [c for c in tree.get("label_transforms") or [] if T.class_name(c) != "SplitBasedOnLabel"]
    validate["pre_transforms"] = list(tree.get("pre_transforms") or []) + labels
    if isinstance(tree.get("inferer"), dict):
        validate["inferer"] = tree["inferer"]
    if tree.get("val_metrics"):
        validate["metrics"] = tree["val_metrics"]
    writers = []
    for i, w in enumerate(tree.get("writers") or []):
        if not T.is_component(w):
            continue
        a = w.get("args") or {}
        if T.class_name(w) != "WriteNifti" or not isinstance(a.get("write_path"), str):
            notes.append(f"writers[{i}] ({T.class_name(w)}) is not written")
            continue
        writers.append((str(a.get("field", "model")), a["write_path"], str(a.get("dtype", "float32"))))
    out = {**train_tree, **_first_level(tree), "validate": validate}
    return Evaluation(path, out, _weights(tree, path), writers, notes, era="v3")


#: The label key of Clara's datalists: what inference data has not
LABEL = "label"
#: Validation's slots and handlers that need labels, or that save what inference does not make
METRIC_SLOTS = ("key_metric", "additional_metrics", "metrics")
NOT_IN_INFERENCE = ("MetricsSaver", "CheckpointSaver", "CheckpointLoader", "ValidationHandler")


def for_inference(tree: dict, key: str, out_dir: str) -> dict:
    """A v4-form tree (v3 already mapped) whose validate section infers: on the datalist's
    ``key`` list, without labels (the ``label`` key leaves every transform, a transform of
    labels only goes), without metrics, a label map (``argmax`` without ``to_onehot``) inverted
    to the input's grid (``Invertd``, unless the post transforms invert already) and saved as
    NIfTI with the input's affine (``SaveImaged`` into ``out_dir``, unless the config saves)."""
    import copy
    v = copy.deepcopy(tree.get("validate") or {})
    dataset = v.get("dataset")
    if isinstance(dataset, dict):
        dataset["data_list_key"] = key
    for slot in ("pre_transforms", "post_transforms"):
        v[slot] = [c for c in (_without_label(c) for c in v.get(slot) or []) if c is not None]
    for slot in METRIC_SLOTS:
        v.pop(slot, None)
    v["handlers"] = [h for h in v.get("handlers") or [] if T.class_name(h).rsplit(".", 1)[-1] not in NOT_IN_INFERENCE]
    evaluator = v.get("evaluator")
    if isinstance(evaluator, dict):
        args = {k: a for k, a in (evaluator.get("args") or {}).items()
                if k not in ("key_val_metric", "additional_metrics")}
        v["evaluator"] = {**evaluator, "args": args}
    post = v["post_transforms"]
    for c in post:
        a = c.get("args") or {}
        if T.class_name(c).endswith("AsDiscreted") and _keys(a) == ["pred"] and a.get("argmax") in (True, [True]):
            a.pop("to_onehot", None)  # a label map, not one channel per class
    names = [T.class_name(c).rsplit(".", 1)[-1] for c in post]
    if "Invertd" not in names and v.get("pre_transforms"):
        post.append({"path": "monai.transforms.Invertd", "args": {
            "keys": "pred", "transform": "@pre_transforms", "orig_keys": "image", "nearest_interp": True}})
    if "SaveImaged" not in names:
        post.append({"path": "monai.transforms.SaveImaged", "args": {
            "keys": "pred", "output_dir": out_dir, "output_postfix": "seg", "separate_folder": False,
            "resample": False, "print_log": False}})
    return {**tree, "validate": v}


def _keys(args: dict) -> list:
    keys = args.get("keys")
    return [keys] if isinstance(keys, str) else list(keys) if isinstance(keys, list) else []


def _without_label(comp: Any) -> Any:
    """``comp`` with the label key out of its ``keys`` (and out of its per-key list args); None
    where it is a transform of labels only."""
    if not T.is_component(comp):
        return comp
    args = dict(comp.get("args") or {})
    keys = _keys(args)
    if LABEL not in keys:
        return comp
    if keys == [LABEL]:
        return None
    at = keys.index(LABEL)
    for name, value in list(args.items()):
        if name != "keys" and isinstance(value, list) and len(value) == len(keys):
            args[name] = value[:at] + value[at + 1:]  # (mode: [bilinear, nearest] -> [bilinear])
    args["keys"] = keys[:at] + keys[at + 1:]
    return {**comp, "args": args}


__all__ = ["Evaluation", "find", "read", "for_inference", "FILE_NAME", "NONE"]
