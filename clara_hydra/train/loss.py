"""The batch loss of every iteration, kept where it was computed (a CUDA tensor stays on the GPU)
and read off the device in one transfer every :data:`READ_EVERY` iterations and at each epoch's
end, never one host-device sync per iteration. A loss that is not finite ends the run, naming the
epoch and the iteration where it first was. What reads the loss (the epoch line, the progress
bar, the TensorBoard curve, MLflow) gets each iteration's value from here: ``state.clara_loss``
is the latest one read, and listeners get ``(iteration, value)`` pairs as they are read."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import TrainingError

#: iterations between two reads of the kept losses (and at every epoch's end)
READ_EVERY = 50


def batch_loss(output: Any) -> Any:
    """The loss of an iteration's output (MONAI's trainer: a dict, or one per item, the loss the
    same in each), or None."""
    item = output[0] if isinstance(output, list) and output else output
    return item.get("loss") if isinstance(item, dict) else None


class LossWatch:
    def __init__(self, every: int = READ_EVERY) -> None:
        self.every = max(1, int(every))
        self.pending: list[tuple[int, int, Any]] = []  # (epoch, iteration, the loss where it was computed)
        self.listeners: list[Callable[[list[tuple[int, float]]], None]] = []

    def attach(self, trainer: Any) -> LossWatch:
        """Before the handlers that read ``state.clara_loss`` at an epoch's end (the epoch line)."""
        from ignite.engine import Events
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._keep)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self.read)
        return self

    def _keep(self, engine: Any) -> None:
        loss = batch_loss(engine.state.output)
        if loss is None:
            return
        self.pending.append((engine.state.epoch, engine.state.iteration,
                             loss.detach() if hasattr(loss, "detach") else loss))
        if len(self.pending) >= self.every:
            self.read(engine)

    def read(self, engine: Any) -> None:
        """The kept losses off the device (one transfer); the first that is not finite ends the run."""
        if not self.pending:
            return
        import torch
        kept, self.pending = self.pending, []
        tensors = [t.float().reshape(()) if isinstance(t, torch.Tensor) else None for _, _, t in kept]
        on_device = [t for t in tensors if t is not None]
        read = iter(torch.stack(on_device).tolist() if on_device else [])
        values = [next(read) if t is not None else float(raw) for t, (_, _, raw) in zip(tensors, kept)]
        for (epoch, iteration, _), value in zip(kept, values):
            if not math.isfinite(value):
                raise TrainingError(f"the loss is {value} at epoch {epoch}, iteration {iteration}",
                                    location="train.loss",
                                    hint="lower learning_rate, check the data and the loss/activation settings")
        engine.state.clara_loss = values[-1]
        pairs = [(iteration, value) for (_, iteration, _), value in zip(kept, values)]
        for listener in self.listeners:
            listener(pairs)
