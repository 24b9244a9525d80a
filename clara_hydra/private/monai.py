"""MONAI's internals: a CheckpointSaver's key-metric checkpoint (the ignite Checkpoint that keeps
the best checkpoints), which a trial's resume point saves and restores (:mod:`clara_hydra.train.resume`);
MONAI's public ``load_state_dict`` restores it, but nothing public reads it."""

from __future__ import annotations

from typing import Any

#: What this module reaches into, by owner: the upgrade test checks each is still there.
PRIVATE_NAMES: dict[str, tuple[str, ...]] = {
    "monai.handlers.CheckpointSaver": ("_key_metric_checkpoint",),
}


def key_metric_checkpoint(saver: Any) -> Any:
    """The saver's ignite Checkpoint of its best key-metric checkpoints (None: it keeps none)."""
    return getattr(saver, "_key_metric_checkpoint", None)
