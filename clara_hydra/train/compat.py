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
