"""TensorBoard HParams (Clara's MMARTensorboardHandler; on by default for a Clara config): each
finished trial's params and value(s), each value under its own name (``val_mean_dice``), in its
folder's ``tensorboard/``, the same TensorBoard run as the curves training wrote there, so that
``tensorboard --logdir SWEEP_DIR`` compares the whole sweep in one view and the HParams tab
links each trial's params to its curves."""

from __future__ import annotations

import math
import os
from typing import Any


def _plain(value: Any) -> Any:
    return value if isinstance(value, (bool, int, float, str)) else str(value)


def write(job_dir: str, params: dict, values: list[float], names: list[str]) -> None:
    from torch.utils.tensorboard import SummaryWriter
    log_dir = os.path.join(job_dir, "tensorboard")
    os.makedirs(log_dir, exist_ok=True)
    metrics = {n: float(v) for n, v in zip(names, values) if math.isfinite(float(v))}
    with SummaryWriter(log_dir=log_dir) as writer:
        writer.add_hparams({k: _plain(v) for k, v in params.items()}, metrics, run_name=".")
