"""Small adapters between Clara v4 idioms and MONAI 1.6."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def per_item(fn: Callable) -> Callable:
    """Clara v4.0 output transforms (``lambda x: (x['pred'], x['label'])``) expect one dict per
    batch; MONAI 1.6 engines give a list of per-item dicts. Apply per item and regroup."""
    def transform(output: Any) -> Any:
        if not isinstance(output, list):
            return fn(output)
        results = [fn(item) for item in output]
        first = results[0] if results else None
        if isinstance(first, tuple):
            return tuple(list(parts) for parts in zip(*results))
        return first
    transform.__name__ = getattr(fn, "__name__", "per_item")
    return transform


def meta_of(key: str = "image") -> Callable:
    """Clara v4's ``from_engine(['image_meta_dict'])`` (a batch's meta data, for the file names
    of MetricsSaver's per-case rows): in MONAI 1.6 the meta data rides on the image (MetaTensor)."""
    def transform(batch: Any) -> list[dict]:
        from monai.data import decollate_batch
        items = batch if isinstance(batch, list) else decollate_batch(batch)
        out = []
        for item in items:
            value = item.get(key) if isinstance(item, dict) else None
            meta = getattr(value, "meta", None) or (item.get(f"{key}_meta_dict") if isinstance(item, dict) else None)
            out.append(dict(meta) if meta else {})
        return out
    return transform


def channel(index: int) -> Callable:
    """``(pred, label)`` of each item cut to one channel: a v3 metric of one class
    (``ComputeAverageDice`` on ``pred_class1`` / ``label_class1``)."""
    def transform(output: Any) -> tuple[list, list]:
        items = output if isinstance(output, list) else [output]
        return ([one_channel(i["pred"], index) for i in items], [one_channel(i["label"], index) for i in items])
    return transform


def one_channel(tensor: Any, index: int) -> Any:
    """Channel ``index`` of a channel-first image (a v3 ``pred_classK`` / ``label_classK``)."""
    if index >= tensor.shape[0]:
        raise ValueError(f"class {index} is asked for, but the prediction has {tensor.shape[0]} channel(s) "
                         f"(classes 0 to {tensor.shape[0] - 1}): check the evaluation config's classes against "
                         f"the network's")
    return tensor[index:index + 1]
