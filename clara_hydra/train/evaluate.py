"""Clara's validate.sh: a trained checkpoint on the validation data of a config's ``validate``
section, with per-case metrics (CSV) and a summary written where MMAR_EVAL_OUTPUT_PATH says."""

from __future__ import annotations

import math
import os
import re
import sys
import time

from ..errors import BuildError, ClaraHydraError
from ..logs import notice
from .compat import meta_of
from .ids import item_id

#: handlers of a training config's validate section that make no sense without training: the
#: checkpoint it validates is not saved again
TRAINING_ONLY = ("CheckpointSaver",)


def validate(tree: dict, *, weights: tuple[str, str], out_dir: str, config_file: str | None = None,
             run_dir: str = ".", writers: list[tuple[str, str, str]] | tuple = (),
             progress: bool = True, infer: str | None = None) -> dict[str, float]:
    """Run ``tree``'s validation (an effective, enabled-only Clara config) with the network's
    weights from ``weights`` (``("ckpt", path)``: a checkpoint into the config's network;
    ``("ts", path)``: a TorchScript model, which the tree's ``train.model`` loads); write MONAI's
    MetricsSaver reports (``metrics.csv``, and per metric ``<name>_raw.csv`` per case and
    ``<name>_summary.csv``) into ``out_dir`` unless the config saves its own; write a v3
    config's ``writers`` (field, folder, dtype) as NIfTI; return the metrics.

    With ``infer`` (a datalist key): Clara's infer.sh instead, on that list, without labels or
    metrics, the predictions saved as NIfTI with the input's affine
    (:func:`clara_hydra.evalconf.for_inference`); return {}."""
    import json

    from monai.handlers import CheckpointLoader, MetricsSaver

    from .run import _parsed, _training_error, build, pick_device, place

    device, amp = pick_device()
    kind, weights_file = weights
    if not os.path.isfile(weights_file):
        if kind == "ts":
            raise BuildError(f"the TorchScript model to validate is not there: {os.path.abspath(weights_file)}",
                             location="MMAR_TORCHSCRIPT",
                             hint="export the MMAR (clara-hydra export writes models/model.ts), or load the "
                                  "checkpoint: dont_load_ts_model=true dont_load_ckpt_model=false")
        raise BuildError(f"the checkpoint to validate is not there: {os.path.abspath(weights_file)}",
                         location="MMAR_CKPT", hint="train first, or set MMAR_CKPT=PATH (a relative path in "
                                                    "environment.json is the MMAR's)")
    t_build = time.perf_counter()
    adapt = None
    if infer is not None:
        from ..evalconf import for_inference
        adapt = lambda t: for_inference(t, infer, out_dir)  # noqa: E731
        writers = ()  # the label map is saved as <case>_seg.nii.gz
    parser, bundle, _era = build(tree, config_file=config_file, device=device, amp=amp, validate_only=True,
                                 adapt=adapt)
    if "evaluator" not in bundle.get("validate", {}):
        raise BuildError("the config has nothing to validate with", location="validate",
                         hint="add a validate section (dataset, dataloader, inferer, metrics, evaluator)")
    handlers = bundle["validate"].get("handlers")
    if isinstance(handlers, list):  # the weights are loaded here, once, and never saved again
        kept = [h for h in handlers if not (isinstance(h, dict) and str(h.get("_target_", "")).endswith(
            TRAINING_ONLY + ("CheckpointLoader",)))]
        bundle["validate"]["handlers"] = kept
        parser.update({item_id("validate", "handlers"): kept})
    own_saver = any(str(h.get("_target_", "")).endswith("MetricsSaver") for h in
                    bundle["validate"].get("handlers") or [] if isinstance(h, dict))
    if writers:
        post = bundle["validate"].get("post_transforms")
        chain = post.get("transforms") if isinstance(post, dict) else None
        if chain is None:
            raise BuildError("the writers need post transforms to follow", location="validate.post_transforms")
        chain.extend(nifti_writers(writers))
        parser.update({item_id("validate", "post_transforms"): post})
    with open(os.path.join(run_dir, "bundle_config.json"), "w") as fh:
        json.dump(bundle, fh, indent=1, default=str)
    evaluator = _parsed(parser, item_id("validate", "evaluator"))
    if bundle["validate"].get("post_transforms") is not None:  # (the very objects the evaluator runs)
        _one_output_per_case(evaluator, _parsed(parser, item_id("validate", "post_transforms")))
    place(device, evaluator)
    if kind == "ckpt":
        CheckpointLoader(load_path=weights_file, load_dict={"model": evaluator.network},
                         map_location=device).attach(evaluator)
    os.makedirs(out_dir, exist_ok=True)
    if not own_saver and infer is None:
        MetricsSaver(save_dir=out_dir, metrics="*", metric_details="*", batch_transform=meta_of("image"),
                     summary_ops="*").attach(evaluator)
    from ..logs import tidy_library_loggers
    tidy_library_loggers()
    if progress and sys.stderr.isatty():
        from ignite.contrib.handlers import ProgressBar
        ProgressBar(persist=False).attach(evaluator)
    notice(f"built in {time.perf_counter() - t_build:.2f}s; {'inferring' if infer else 'validating'} with "
           f"{weights_file}")
    start = time.perf_counter()
    try:
        evaluator.run()
    except ClaraHydraError:
        raise
    except Exception as exc:
        raise _training_error(exc, "validate") from None
    cases = len(evaluator.data_loader.dataset) if hasattr(evaluator.data_loader, "dataset") else None
    if infer is not None:
        notice(f"inferred {cases if cases is not None else '?'} case(s) of the '{infer}' list in "
               f"{time.perf_counter() - start:.1f}s; predictions in {out_dir}")
        return {}
    metrics = {k: float(v) for k, v in evaluator.state.metrics.items() if isinstance(v, (int, float))}
    for name, value in metrics.items():
        notice(f"{name} = {value:.4f}" + ("" if math.isfinite(value) else " (check the metric's inputs)"))
    notice(f"validated {cases if cases is not None else '?'} case(s) in {time.perf_counter() - start:.1f}s; "
           + ("the config's MetricsSaver wrote its reports" if own_saver else
              f"per-case metrics and summaries in {out_dir}"))
    return metrics


def _one_output_per_case(evaluator, post) -> None:
    """Every case of the list gets its own output: a MONAI saver given no ``data_root_dir`` saves
    below the common folder of the list's images, in their folders, so that two images with one
    name in two folders (KiTS: ``case_1/imaging.nii.gz``, ``case_2/imaging.nii.gz``) are two
    outputs; a list in one folder is saved as before."""
    from monai.transforms import Compose, SaveImage, SaveImaged
    data = getattr(getattr(getattr(evaluator, "data_loader", None), "dataset", None), "data", None)
    if not isinstance(data, (list, tuple)):
        return
    images = [item.get("image") if isinstance(item, dict) else item for item in data]
    folders = {os.path.dirname(os.path.abspath(p)) for p in images if isinstance(p, str) and p}
    if len(folders) < 2:
        return
    root = os.path.commonpath(sorted(folders))

    def visit(t) -> None:
        if isinstance(t, Compose):
            for member in t.transforms:
                visit(member)
        saver = t.saver if isinstance(t, SaveImaged) else t if isinstance(t, SaveImage) else None
        layout = getattr(saver, "folder_layout", None)
        if layout is not None and hasattr(layout, "data_root_dir") and not layout.data_root_dir:
            layout.data_root_dir = root
    visit(post)


def nifti_writers(writers) -> list[dict]:
    """v3 WriteNifti writers as post transforms (after the one-hot ``pred``): ``model`` is the
    label map, ``pred_classK`` the mask of class K; each as ``<case>_<field>.nii.gz``."""
    out: list[dict] = []
    for field, folder, dtype in writers:
        m = re.fullmatch(r"pred_class(\d+)", field)
        if field == "model":
            pick = {"_target_": "monai.transforms.AsDiscreted", "keys": field, "argmax": True}
        elif m:
            k = int(m.group(1))
            pick = {"_target_": "monai.transforms.Lambdad", "keys": field,
                    "func": f"$lambda x: clara_hydra.train.compat.one_channel(x, {k})"}
        else:
            raise BuildError(f"the writer's field '{field}' is not one clara-hydra writes", location="writers",
                             hint="write 'model' (the label map) or 'pred_classK' (one class)")
        out += [{"_target_": "monai.transforms.CopyItemsd", "keys": "pred", "names": field}, pick,
                {"_target_": "monai.transforms.SaveImaged", "keys": field, "output_dir": folder,
                 "output_postfix": field, "output_dtype": "$numpy." + dtype, "separate_folder": False,
                 "resample": False, "print_log": False}]
    return out
