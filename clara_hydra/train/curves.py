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


def learning_rate(trainer: Any) -> float | None:
    """The trainer's learning rate now (its optimizer's first group), or None."""
    groups = getattr(getattr(trainer, "optimizer", None), "param_groups", None) or []
    return float(groups[0]["lr"]) if groups and isinstance(groups[0].get("lr"), (int, float)) else None


def numbers(metrics: dict | None) -> dict[str, float]:
    """The metrics that are one number each (not per class, not a table)."""
    out = {}
    for name, value in (metrics or {}).items():
        try:
            out[str(name)] = float(value)
        except (TypeError, ValueError):
            continue
    return out


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
        lr = learning_rate(trainer)
        if lr is not None:
            self.writer.add_scalar("train/lr", lr, trainer.state.epoch)

    def _metrics(self, evaluator: Any, trainer: Any) -> None:
        for name, number in numbers(evaluator.state.metrics).items():
            self.writer.add_scalar(tag(name), number, trainer.state.epoch)
        self.writer.flush()
