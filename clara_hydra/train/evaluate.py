"""Clara's validate.sh: a trained checkpoint on the validation data of a config's ``validate``
section, with per-case metrics (CSV) and a summary written where MMAR_EVAL_OUTPUT_PATH says."""

from __future__ import annotations

import math
import os
import sys
import time

from ..errors import BuildError
from ..logs import notice
from .ids import item_id

#: handlers of a training config's validate section that make no sense without training: the
#: checkpoint it validates is not saved again
TRAINING_ONLY = ("CheckpointSaver",)


def _meta_of(batch) -> list[dict]:
    """The meta data of each case of a batch (for the file names in the per-case CSV)."""
    from monai.data import decollate_batch
    items = batch if isinstance(batch, list) else decollate_batch(batch)
    out = []
    for item in items:
        image = item.get("image") if isinstance(item, dict) else None
        meta = getattr(image, "meta", None) or (item.get("image_meta_dict") if isinstance(item, dict) else None)
        out.append(dict(meta) if meta else {})
    return out


def validate(tree: dict, *, checkpoint: str, out_dir: str, config_file: str | None = None,
             run_dir: str = ".", progress: bool = True) -> dict[str, float]:
    """Run ``tree``'s validation (an effective, enabled-only Clara config) with the network's
    weights from ``checkpoint``; write MONAI's MetricsSaver reports (``metrics.csv``, and per
    metric ``<name>_raw.csv`` per case and ``<name>_summary.csv``) into ``out_dir``; return the
    metrics."""
    import json

    from monai.handlers import CheckpointLoader, MetricsSaver

    from .run import _parsed, build, pick_device

    device, amp = pick_device()
    if not os.path.isfile(checkpoint):
        raise BuildError(f"the checkpoint to validate is not there: {os.path.abspath(checkpoint)}",
                         location="MMAR_CKPT", hint="train first, or set MMAR_CKPT=PATH (a relative path in "
                                                    "environment.json is the MMAR's)")
    t_build = time.perf_counter()
    parser, bundle, _era = build(tree, config_file=config_file, device=device, amp=amp)
    if "evaluator" not in bundle.get("validate", {}):
        raise BuildError("the config has nothing to validate with", location="validate",
                         hint="add a validate section (dataset, dataloader, inferer, metrics, evaluator)")
    handlers = bundle["validate"].get("handlers")
    if isinstance(handlers, list):
        dropped = [h for h in handlers if isinstance(h, dict) and str(h.get("_target_", "")).endswith(TRAINING_ONLY)]
        bundle["validate"]["handlers"] = [h for h in handlers if h not in dropped]
        parser.update({item_id("validate", "handlers"): bundle["validate"]["handlers"]})
    with open(os.path.join(run_dir, "bundle_config.json"), "w") as fh:
        json.dump(bundle, fh, indent=1, default=str)
    evaluator = _parsed(parser, item_id("validate", "evaluator"))
    CheckpointLoader(load_path=checkpoint, load_dict={"model": evaluator.network},
                     map_location=device).attach(evaluator)
    os.makedirs(out_dir, exist_ok=True)
    MetricsSaver(save_dir=out_dir, metrics="*", metric_details="*", batch_transform=_meta_of,
                 summary_ops="*").attach(evaluator)
    from ..logs import tidy_library_loggers
    tidy_library_loggers()
    if progress and sys.stderr.isatty():
        from ignite.contrib.handlers import ProgressBar
        ProgressBar(persist=False).attach(evaluator)
    notice(f"built in {time.perf_counter() - t_build:.2f}s; validating {checkpoint}")
    start = time.perf_counter()
    evaluator.run()
    metrics = {k: float(v) for k, v in evaluator.state.metrics.items() if isinstance(v, (int, float))}
    cases = len(evaluator.data_loader.dataset) if hasattr(evaluator.data_loader, "dataset") else None
    for name, value in metrics.items():
        notice(f"{name} = {value:.4f}" + ("" if math.isfinite(value) else " (check the metric's inputs)"))
    notice(f"validated {cases if cases is not None else '?'} case(s) in {time.perf_counter() - start:.1f}s; "
           f"per-case metrics and summaries in {out_dir}")
    return metrics
