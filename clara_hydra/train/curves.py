"""The curves every run writes for TensorBoard, in ``<run dir>/tensorboard`` (for a sweep's trial
the same TensorBoard run as its HParams, so that the HParams tab links its params to its curves):
``train/loss`` at each iteration, ``train/lr`` at each epoch, and each validation metric as
``val/<name>`` at each validation (``val_mean_dice`` as ``val/mean_dice``), its step the training
epoch. The config's own TensorBoard handlers write what they write, besides."""

from __future__ import annotations

from typing import Any


def tag(metric: str) -> str:
    """A validation metric's curve: ``val_mean_dice`` -> ``val/mean_dice``, ``acc`` -> ``val/acc``."""
    return "val/" + (metric[4:] if metric.startswith("val_") and len(metric) > 4 else metric)


class Curves:
    def __init__(self, log_dir: str) -> None:
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=log_dir)

    def attach(self, trainer: Any, evaluator: Any | None, watch: Any) -> None:
        """``watch``: the run's :class:`.loss.LossWatch`, which gives each iteration's loss as it reads them."""
        from ignite.engine import Events
        watch.listeners.append(self._losses)
        trainer.add_event_handler(Events.EPOCH_STARTED, self._lr)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _engine: self.writer.flush())  # a kill keeps them
        trainer.add_event_handler(Events.COMPLETED, lambda _engine: self.writer.close())
        if evaluator is not None:
            evaluator.add_event_handler(Events.COMPLETED, lambda engine: self._metrics(engine, trainer))

    def _losses(self, pairs: list[tuple[int, float]]) -> None:
        for iteration, loss in pairs:
            self.writer.add_scalar("train/loss", loss, iteration)

    def _lr(self, trainer: Any) -> None:
        optimizer = getattr(trainer, "optimizer", None)
        groups = getattr(optimizer, "param_groups", None) or []
        if groups and isinstance(groups[0].get("lr"), (int, float)):
            self.writer.add_scalar("train/lr", float(groups[0]["lr"]), trainer.state.epoch)

    def _metrics(self, evaluator: Any, trainer: Any) -> None:
        for name, value in (evaluator.state.metrics or {}).items():
            try:
                number = float(value)
            except (TypeError, ValueError):  # a metric that is not one number (per class, a table)
                continue
            self.writer.add_scalar(tag(str(name)), number, trainer.state.epoch)
        self.writer.flush()
