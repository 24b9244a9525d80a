"""Data once per sweep: the deterministic part of the transform chain is cached once and reused
by every trial that has the same deterministic transforms and data.

In one process (Hydra's launcher) the cached dataset object is reused and only its transform
(whose random tail may differ per trial) is swapped; across worker processes a PersistentDataset
in the sweep's cache folder is shared on disk. The key hashes the deterministic prefix's config
and the data list, so a trial that changes a deterministic arg gets a cache of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from typing import Any

from ..sweep.protocol import ENV_CACHE_DIR, in_worker

_MEMORY: OrderedDict[str, Any] = OrderedDict()
KEEP = 2  # cached datasets kept in memory per process


def first_random_index(transforms: list) -> int:
    """Index of the first random transform in a translated chain (len() when none is random)."""
    from monai.transforms import Randomizable

    from .names import resolve_class
    for i, t in enumerate(transforms):
        target = t.get("_target_", "") if isinstance(t, dict) else ""
        try:
            cls = resolve_class(target)
        except Exception:
            return i
        if isinstance(cls, type) and issubclass(cls, Randomizable):
            return i
    return len(transforms)


def prefix_key(transforms: list, data: list, extra: dict) -> str:
    """Hash of the deterministic prefix (up to the first random transform) and the data."""
    prefix = transforms[:first_random_index(transforms)]
    text = json.dumps([prefix, data, extra], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def shared_dataset(data, transform, key: str, dataset_class: str = "monai.data.CacheDataset", **kwargs):
    """A CacheDataset-like dataset whose cache trials share (target of translated configs)."""
    from ..logs import notice, notice_once
    from .names import resolve_class
    cache_dir = os.environ.get(ENV_CACHE_DIR)
    if key in _MEMORY:
        ds = _MEMORY.pop(key)
        _MEMORY[key] = ds
        ds.transform = transform
        notice_once("reusing this sweep's cached data (same deterministic transforms and data)")
        return ds
    if cache_dir and in_worker():  # a worker process: share on disk
        from monai.data import PersistentDataset
        path = os.path.join(cache_dir, key)
        os.makedirs(path, exist_ok=True)
        notice(f"caching the deterministic transforms on disk for the whole sweep: {path}")
        return PersistentDataset(data, transform=transform, cache_dir=path)
    ds = resolve_class(dataset_class)(data=data, transform=transform, **kwargs)
    _MEMORY[key] = ds
    while len(_MEMORY) > KEEP:
        _MEMORY.popitem(last=False)
    return ds
