"""Clara v3 (TensorFlow era) -> MONAI: the builders that apply the declarative table
(:mod:`.v3_table`) and map the whole-config sections (models, losses, pipelines, ...).

The mapping runs on the effective config, after search values are in place, so a searched or
applied v3 arg maps exactly like a written one. docs/V3_MAPPING.md gives the research behind
each row.

The result is a v4.1-style tree (components by dotted ``path``, wiring written out) that the
same builder as v4 turns into MONAI objects.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .. import tree as T
from ..errors import BuildError, did_you_mean, first_line
from ..logs import notice, notice_once
from .v3_table import CONVERTERS, LAYOUT_ARGS, SECTION_NAMES, SPECIAL, TABLE, TX, Row


def known_names() -> list[str]:
    names = set(TABLE) | SPECIAL
    for group in SECTION_NAMES.values():
        names |= set(group)
    return sorted(names)


def _keys(args: dict, *names: str) -> list:
    out: list = []
    for n in names:
        v = args.get(n)
        if v is None:
            continue
        out += v if isinstance(v, list) else [v]
    return list(dict.fromkeys(out))


def _comp(target: str, args: dict, disabled: Any = False) -> dict:
    c: dict[str, Any] = {"path": target, "args": args}
    if disabled:
        c["disabled"] = True
    return c


def map_row(row: Row, v3args: dict, where: str, consumed: set[str] | None = None) -> dict:
    """``consumed``: the v3 args that a sibling row (same v3 component) maps."""
    out = dict(row.defaults)
    dropped = []
    for k, v in v3args.items():
        if k in row.args:
            spec = row.args[k]
            name, conv = (spec, None) if isinstance(spec, str) else spec
            out[name] = CONVERTERS[conv](v) if conv else v
        elif k in LAYOUT_ARGS:
            continue
        elif k in row.drop or (k not in row.args and k not in (consumed or set())):
            dropped.append(k)
    if dropped:
        notice(f"{where}: {', '.join(dropped)} ha{'s' if len(dropped) == 1 else 've'} no equivalent in "
               f"{row.target.rsplit('.', 1)[-1]}: dropped")
    out.update(row.fixed)
    if "keys" in out and isinstance(out["keys"], str):
        out["keys"] = [out["keys"]]
    if row.note:
        notice_once(f"{where}: {row.note}")
    return out


def map_transform(comp: dict, where: str) -> list[dict]:
    """One v3 transform -> its MONAI components (``path`` + args)."""
    if "path" in comp:
        return [comp]  # BYOC: the user's class, as written
    name = T.class_name(comp)
    args = dict(comp.get("args") or {})
    disabled = comp.get("disabled", False)
    if name in SPECIAL:
        return [_comp(t, a, disabled) for t, a in _special(name, args, where)]
    if name not in TABLE:
        raise BuildError(f"the v3 component '{name}' has no MONAI equivalent in clara-hydra's table",
                         location=where, hint=did_you_mean(name, known_names())
                         + "see the README's v3 table, or give a \"path\" to your own class")
    rows = TABLE[name]
    if not rows:
        notice(f"{where}: {name} has no MONAI equivalent needed (MONAI does it already): dropped")
    consumed = {k for r in rows for k in r.args}
    return [_comp(r.target, map_row(r, args, where, consumed), disabled) for r in rows]


def _special(name: str, a: dict, where: str) -> list[tuple[str, dict]]:
    if name in ("FastCropByPosNegRatio", "FastPosNegRatioCropROI"):
        image = a.get("image_field") or (_keys(a, "fields") or ["image"])[0]
        label = a.get("label_field", "label")
        keys = list(dict.fromkeys(_keys(a, "fields", "image_field") + [label]))
        out = [(TX + "RandCropByPosNegLabeld", {
            "keys": keys, "label_key": label, "spatial_size": a.get("size"), "pos": a.get("pos", 1),
            "neg": a.get("neg", 1), "num_samples": a.get("batch_size", 1), "image_key": image, "image_threshold": 0})]
        if a.get("rotation") or a.get("scale"):
            out.append((TX + "RandAffined", {
                "keys": keys, "prob": 1.0, "mode": ["bilinear"] * (len(keys) - 1) + ["nearest"],
                "rotate_range": math.radians(a.get("rotation_degree", 0)) if a.get("rotation") else None,
                "scale_range": a.get("scale_factor") if a.get("scale") else None}))
        if a.get("deform"):
            notice(f"{where}: 'deform' has no known v3 strength: no elastic deformation added")
        return out
    if name == "RandomRotate2D":
        keys = _keys(a, "fields")
        modes = ["nearest" if "label" in str(k) else "bilinear" for k in keys]
        if a.get("is_random", True):
            return [(TX + "RandRotated", {"keys": keys, "range_x": math.radians(a.get("angle", 0)), "prob": 1.0,
                                         "keep_size": True, "mode": modes})]
        return [(TX + "Rotated", {"keys": keys, "angle": math.radians(a.get("angle", 0)), "mode": modes})]
    if name == "RandomZoom":
        keys = _keys(a, "image_field", "label_field", "fields")
        modes = ["nearest" if k == a.get("label_field") else "trilinear" for k in keys]
        return [(TX + "RandZoomd", {"keys": keys, "min_zoom": a.get("lower_limits"), "max_zoom": a.get("upper_limits"),
                                   "prob": 1.0, "keep_size": True, "mode": modes})]
    if name == "CropRandomSizeWithDisplacement":
        keys = _keys(a, "fields")
        size = a.get("lower_size")
        if "max_displacement" in a:
            notice(f"{where}: max_displacement has no MONAI equivalent: the crop centre is uniform")
        if isinstance(size, list) and all(isinstance(x, (int, float)) and x <= 1 for x in size):
            return [(TX + "RandScaleCropd", {"keys": keys, "roi_scale": size, "max_roi_scale": 1.0,
                                            "random_center": True, "random_size": True})]
        return [(TX + "RandSpatialCropd", {"keys": keys, "roi_size": size, "random_center": True, "random_size": True})]
    raise AssertionError(name)  # pragma: no cover


# --------------------------------------------------------------------------- whole config

def to_v4(tree: dict) -> dict:
    """An effective v3 config -> a v4.1-style config (train/validate with written wiring)."""
    train, validate = tree.get("train", {}), tree.get("validate", {})
    epochs = int(tree.get("epochs", 1))
    lr = tree.get("learning_rate", 1e-4)
    amp = bool(tree.get("use_amp", False))
    model_v3 = train.get("model") or {}
    act = str((model_v3.get("args") or {}).get("final_activation", "softmax")).lower()
    pipe_t = train.get("image_pipeline") or {}
    pipe_v = validate.get("image_pipeline") or {}
    in_channels = int((pipe_t.get("args") or {}).get("output_image_channels", 1))
    model, n_classes, weight_decay = _located("train.model", _model, model_v3, in_channels, pipe_t)

    out_t: dict[str, Any] = {"model": model}
    out_t["loss"] = _located("train.loss", _loss, train.get("loss") or {"name": "Dice"}, act, n_classes)
    out_t["optimizer"] = _located("train.optimizer", _optimizer, train.get("optimizer") or {"name": "Adam"}, lr,
                                  weight_decay)
    out_t["pre_transforms"] = _transforms(train.get("pre_transforms") or [], "train.pre_transforms")
    classification = "Classification" in T.class_name(pipe_t) if pipe_t else False
    out_t["dataset"], out_t["dataloader"] = _located("train.image_pipeline", _pipeline, pipe_t, "train",
                                                     classification)
    handlers = []
    if train.get("lr_policy"):
        out_t["lr_scheduler"] = _located("train.lr_policy", _lr_policy, train["lr_policy"], epochs)
        handlers.append({"path": "monai.handlers.LrScheduleHandler",
                         "args": {"lr_scheduler": "@lr_scheduler", "epoch_level": True, "print_lr": True}})
    has_validation = bool(pipe_v)
    if has_validation:
        handlers.append({"path": "monai.handlers.ValidationHandler", "args": {
            "validator": "@evaluator", "epoch_level": True,
            "interval": int(tree.get("num_training_epoch_per_valid", 1))}})
    handlers.append({"path": "monai.handlers.StatsHandler", "args": {
        "tag_name": "train_loss", "output_transform": "#monai.handlers.from_engine(['loss'], first=True)"}})
    out_t["handlers"] = handlers
    out_t["inferer"] = {"path": "monai.inferers.SimpleInferer"}
    out_t["trainer"] = {"path": "monai.engines.SupervisedTrainer", "args": {
        "max_epochs": epochs, "train_data_loader": "@dataloader", "network": "@model", "loss_function": "@loss",
        "optimizer": "@optimizer", "inferer": "@inferer", "train_handlers": "@handlers", "amp": amp}}
    result = {k: v for k, v in tree.items() if k not in ("train", "validate")}
    result["train"] = out_t
    if has_validation:
        result["validate"] = _located("validate", _validate, validate, train, act, n_classes, classification, amp)
    return result


def _located(where: str, build, *args):
    """A v3 arg of the wrong type (``init_filters=abc``) is one located line, not a traceback."""
    try:
        return build(*args)
    except BuildError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, ZeroDivisionError) as exc:
        raise BuildError(f"cannot map this v3 component: {type(exc).__name__}: {first_line(exc)}", location=where,
                         hint="check the types of its args (a number where a number is expected)") from None


def _model(comp: dict, in_channels: int, pipe: dict) -> tuple[dict, int, float]:
    if "path" in comp:
        return comp, 2, 0.0
    name = T.class_name(comp)
    a = dict(comp.get("args") or {})
    n = int(a.get("num_classes", 2))
    wd = float(a.get("reg_weight", 0.0) or 0.0)
    if name == "SegResnet":
        filters = int(a.get("init_filters", 8))
        groups = int(a.get("use_group_normG", 8))
        fitting = max(g for g in range(1, min(groups, filters) + 1) if filters % g == 0)
        if a.get("use_group_norm", True) and fitting != groups:
            notice(f"train.model: {groups} groups do not divide init_filters={filters}: using {fitting} groups")
        norm = ["GROUP", {"num_groups": fitting}] if a.get("use_group_norm", True) else "BATCH"
        if a.get("use_vae"):
            notice("train.model: SegResnet use_vae has no loss wiring here: training without the VAE branch")
        return {"path": "monai.networks.nets.SegResNet", "args": {
            "spatial_dims": 3, "in_channels": in_channels, "out_channels": n,
            "init_filters": int(a.get("init_filters", 8)), "dropout_prob": a.get("dropout_prob"), "norm": norm,
            "blocks_down": CONVERTERS["int_tuple"](a.get("blocks_down", "1,2,2,4")),
            "blocks_up": CONVERTERS["int_tuple"](a.get("blocks_up", "1,1,1"))}}, n, wd
    if name == "SegAhnet":
        return {"path": "monai.networks.nets.AHNet", "args": {
            "spatial_dims": int(a.get("n_spatial_dim", 3)), "in_channels": in_channels, "out_channels": n,
            "psp_block_num": 4 if a.get("if_use_psp") else 0, "upsample_mode": "transpose", "pretrained": False}}, n, wd
    if name == "DenseNet121":
        n = int(a.get("num_classes", 15))
        return {"path": "monai.networks.nets.DenseNet121", "args": {
            "spatial_dims": 2, "in_channels": in_channels, "out_channels": n, "pretrained": False}}, n, float(
            a.get("weight_decay", 0.0) or 0.0)
    if name == "Unet":
        notice("train.model: v3 Unet has no MONAI twin: using BasicUNet (different topology)")
        return {"path": "monai.networks.nets.BasicUNet", "args": {
            "spatial_dims": 3, "in_channels": in_channels, "out_channels": n}}, n, wd
    raise BuildError(f"the v3 model '{name}' has no MONAI equivalent in clara-hydra's table", location="train.model",
                     hint=did_you_mean(name, SECTION_NAMES["models"]) + "give a \"path\" to your class")


def _loss(comp: dict, act: str, n: int) -> dict:
    if "path" in comp:
        return comp
    name = T.class_name(comp)
    a = comp.get("args") or {}
    if name == "Dice":
        if a.get("jaccard"):
            notice("train.loss: Dice jaccard: MONAI computes the true IoU, v3 computed 2I/(S-I)")
        return {"path": "monai.losses.DiceLoss", "args": {
            "include_background": not a.get("skip_background", False),
            "to_onehot_y": not a.get("is_onehot_targets", False), "squared_pred": bool(a.get("squared_pred", False)),
            "jaccard": bool(a.get("jaccard", False)), "smooth_nr": float(a.get("top_smooth", 0.0)),
            "smooth_dr": float(a.get("smooth", 1e-5)), "softmax": act == "softmax", "sigmoid": act == "sigmoid"}}
    if name == "Focal":
        return {"path": "monai.losses.FocalLoss", "args": {
            "include_background": not a.get("skip_background", False), "to_onehot_y": True,
            "use_softmax": act == "softmax"}}
    if name == "BinaryClassificationLoss":
        return {"path": "torch.nn.BCEWithLogitsLoss", "args": {}}
    raise BuildError(f"the v3 loss '{name}' has no MONAI equivalent in clara-hydra's table", location="train.loss",
                     hint="give a \"path\" to your class")


def _optimizer(comp: dict, lr: float, weight_decay: float) -> dict:
    if "path" in comp:
        return comp
    name = T.class_name(comp)
    a = dict(comp.get("args") or {})
    lr = a.pop("learning_rate", lr)
    if name == "Adam":
        return {"path": "torch.optim.Adam", "args": {"params": "#@model.parameters()", "lr": lr,
                                                     "weight_decay": weight_decay}}
    if name == "NovoGrad":
        return {"path": "monai.optimizers.Novograd", "args": {
            "params": "#@model.parameters()", "lr": lr, "betas": [a.get("beta1", 0.95), a.get("beta2", 0.98)],
            "eps": a.get("epsilon", 1e-8), "weight_decay": a.get("weight_decay", weight_decay)}}
    raise BuildError(f"the v3 optimizer '{name}' has no equivalent in clara-hydra's table", location="train.optimizer",
                     hint="use Adam or NovoGrad, or give a \"path\"")


def _lr_policy(comp: dict, epochs: int) -> dict:
    name = T.class_name(comp)
    a = comp.get("args") or {}
    if name == "ReducePoly":
        return {"path": "torch.optim.lr_scheduler.PolynomialLR", "args": {
            "optimizer": "@optimizer", "total_iters": max(epochs, 1), "power": a.get("poly_power", 0.9)}}
    if name == "ReduceCosine":
        if "rate" in a:
            notice("train.lr_policy: ReduceCosine 'rate' has no known meaning: cosine annealing to 0 over the epochs")
        return {"path": "torch.optim.lr_scheduler.CosineAnnealingLR", "args": {
            "optimizer": "@optimizer", "T_max": max(epochs, 1), "eta_min": 0.0}}
    if name == "DecayOnStep":
        return {"path": "torch.optim.lr_scheduler.StepLR", "args": {
            "optimizer": "@optimizer", "step_size": a.get("decay_freq", 1), "gamma": a.get("decay_ratio", 0.1)}}
    raise BuildError(f"the v3 lr_policy '{name}' has no equivalent in clara-hydra's table", location="train.lr_policy")


def _transforms(items: list, where: str) -> list:
    out = []
    for i, comp in enumerate(items):
        if T.is_component(comp):
            out += _located(f"{where}[{i}]", map_transform, comp, f"{where}[{i}]")
    return out


def _pipeline(comp: dict, sec: str, classification: bool) -> tuple[dict, dict]:
    a = comp.get("args") or {}
    name = T.class_name(comp) if comp else ""
    where = f"{sec}.image_pipeline"
    if name and name not in SECTION_NAMES["pipelines"] and "path" not in comp:
        raise BuildError(f"the v3 image pipeline '{name}' has no equivalent in clara-hydra's table", location=where)
    dataset = {"path": "monai.data.CacheDataset", "data_list_file_path": a.get("data_list_file_path"),
               "data_file_base_dir": a.get("data_file_base_dir"),
               "data_list_key": a.get("data_list_key", "training" if sec == "train" else "validation"),
               "is_segmentation": not classification,
               "args": {"transform": "@pre_transforms", "cache_rate": 1.0, "num_workers": int(a.get("num_workers", 2))}}
    if "num_cache_objects" in a:
        dataset["args"]["cache_num"] = int(a["num_cache_objects"])
    batch = int(a.get("output_batch_size", 1))
    if a.get("batched_by_transforms"):
        batch = 1  # the batching crop makes the batch from one volume (V3_MAPPING.md section 4)
    loader = {"path": "monai.data.DataLoader", "args": {
        "dataset": "@dataset", "batch_size": batch if sec == "train" else 1, "shuffle": sec == "train",
        "num_workers": int(a.get("num_workers", 2))}}
    return dataset, loader


def _metric_for(field_name: str, train: dict, n: int, label: str) -> tuple[dict, str]:
    """The MONAI metric for a v3 ComputeAverage(field): from the aux op that produced the field."""
    for op in train.get("aux_ops") or []:
        if not T.is_component(op):
            continue
        a = op.get("args") or {}
        tags = a.get("tags") or ([a["tag"]] if "tag" in a else [])
        if field_name not in tags:
            continue
        name = T.class_name(op)
        if name in ("DiceMaskedOutput", "ComputeDice"):
            return {"path": "monai.handlers.MeanDice", "log_label": label, "args": {
                "include_background": not a.get("skip_background", False)}}, "dice"
        if name == "ComputeAccuracy":
            return {"path": "ignite.metrics.Accuracy", "log_label": label, "args": {}}, "accuracy"
        if name == "NegLoss":
            notice(f"validate.metrics: {label} (NegLoss) is measured as mean Dice here")
            return {"path": "monai.handlers.MeanDice", "log_label": label, "args": {}}, "dice"
    notice(f"validate.metrics: no aux op produces '{field_name}': measuring {label} as mean Dice")
    return {"path": "monai.handlers.MeanDice", "log_label": label, "args": {}}, "dice"


def _validate(validate: dict, train: dict, act: str, n: int, classification: bool, amp: bool) -> dict:
    out: dict[str, Any] = {}
    out["pre_transforms"] = _transforms(validate.get("pre_transforms") or [], "validate.pre_transforms")
    out["dataset"], out["dataloader"] = _pipeline(validate.get("image_pipeline") or {}, "validate", classification)
    inf = validate.get("inferer") or {"name": "TFSimpleInferer"}
    ia = inf.get("args") or {}
    if T.class_name(inf) == "TFScanWindowInferer":
        roi = ia.get("roi_size") or (validate.get("image_pipeline", {}).get("args") or {}).get("output_crop_size")
        out["inferer"] = {"path": "monai.inferers.SlidingWindowInferer", "args": {
            "roi_size": roi, "sw_batch_size": int(ia.get("batch_size", 1)), "overlap": 0.5}}
    else:
        out["inferer"] = {"path": "monai.inferers.SimpleInferer"}
    metrics: list[dict[str, Any]] = []
    kinds: set[str] = set()
    m: dict[str, Any]
    for i, comp in enumerate(validate.get("metrics") or []):
        if not T.is_component(comp):
            continue
        a = comp.get("args") or {}
        label = str(a.get("name") or T.class_name(comp))
        name = T.class_name(comp)
        one_class = re.fullmatch(r"pred_class(\d+)", str(a.get("field", "")))
        if one_class and int(one_class.group(1)) >= n:
            raise BuildError(f"the metric {label} is of class {one_class.group(1)}, but the network gives {n} "
                             f"classes (0 to {n - 1})", location=f"validate.metrics[{i}]",
                             hint="check the evaluation config's classes against the training config's network")
        if name == "ComputeAverageDice" and one_class:  # an evaluation config's dice of one class
            m, kind = {"path": "monai.handlers.MeanDice", "log_label": label, "args": {
                "include_background": True,
                "output_transform": f"#clara_hydra.train.compat.channel({int(one_class.group(1))})"}}, "dice"
        elif name == "ComputeAverageDice":
            m, kind = {"path": "monai.handlers.MeanDice", "log_label": label,
                       "args": {"include_background": not a.get("remove_bg", True)}}, "dice"
        elif name == "ComputeAUC":
            m, kind = {"path": "monai.handlers.ROCAUC", "log_label": label,
                       "args": {"average": a.get("auc_average", "macro")}}, "auc"
        elif name == "ComputeAverage":
            m, kind = _metric_for(a.get("field", ""), train, n, label)
        else:
            raise BuildError(f"the v3 metric '{name}' has no equivalent in clara-hydra's table",
                             location="validate.metrics", hint="use ComputeAverageDice, ComputeAverage or ComputeAUC")
        m["is_key_metric"] = bool(a.get("is_key_metric", False))
        metrics.append(m)
        kinds.add(kind)
    if not metrics:
        metrics = [{"path": "monai.handlers.MeanDice", "log_label": "val_mean_dice", "is_key_metric": True, "args": {}}]
        kinds.add("dice")
    out["metrics"] = metrics
    post = [{"path": TX + "Activationsd", "args": {"keys": "pred", "softmax": act == "softmax",
                                                  "sigmoid": act == "sigmoid"}}]
    if not classification:
        if act == "sigmoid":
            post.append({"path": TX + "AsDiscreted", "args": {"keys": "pred", "threshold": 0.5}})
        else:
            post.append({"path": TX + "AsDiscreted", "args": {"keys": "pred", "argmax": True, "to_onehot": n}})
        post.append({"path": TX + "AsDiscreted", "args": {"keys": "label", "to_onehot": n}})
    out["post_transforms"] = post
    out["handlers"] = [{"path": "monai.handlers.StatsHandler", "args": {"output_transform": "lambda x: None"}}]
    out["evaluator"] = {"path": "monai.engines.SupervisedEvaluator", "args": {
        "val_data_loader": "@dataloader", "network": "@model", "inferer": "@inferer",
        "postprocessing": "@post_transforms", "val_handlers": "@handlers", "amp": amp}}
    return out
