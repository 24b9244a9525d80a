"""``tensorboard: true`` (Clara's MMARTensorboardHandler): each finished trial's params and value
as TensorBoard HParams in its folder's ``tensorboard/``, beside the curves training wrote there,
so ``tensorboard --logdir SWEEP_DIR`` compares the whole sweep in one view (HParams tab)."""

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
    metrics = {f"hparam/{n}": float(v) for n, v in zip(names, values) if math.isfinite(float(v))}
    with SummaryWriter(log_dir=log_dir) as writer:
        writer.add_hparams({k: _plain(v) for k, v in params.items()}, metrics, run_name=".")
