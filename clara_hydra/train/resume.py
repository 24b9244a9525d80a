"""A sweep trial's resume point: after each whole epoch (its validation included) the state to
continue from is written to ``models/resume.ckpt`` of the trial's folder; a trial that finds one
there (the sweep runs it again after a crash, Ctrl-C or a preemption) continues after that
epoch: the network, optimizer and LR schedule, the epoch and iteration counts, the best
validation value and its epoch, and which checkpoint is the best. The file goes when the trial
ends (completed, pruned or failed): only an interrupted trial keeps it."""

from __future__ import annotations

import json
import os
from typing import Any

from ..logs import notice
from ..private.monai import key_metric_checkpoint
from ..sweep.protocol import remove_resume_point, resume_file
from .dist import unwrapped


class ResumePoint:
    def __init__(self, run_dir: str, trainer, evaluator, scheduler, savers: list, at_best: dict) -> None:
        self.run_dir, self.path = run_dir, resume_file(run_dir)
        self.trainer, self.evaluator, self.scheduler = trainer, evaluator, scheduler
        self.kept = [kept for kept in map(key_metric_checkpoint, savers) if kept is not None]  # their best files
        self.at_best = at_best  # a multi-objective trial's metrics at its best epoch (updated in place)

    def state(self) -> dict[str, Any]:
        t, e = self.trainer, self.evaluator
        return {"epoch": t.state.epoch, "iteration": t.state.iteration,
                "network": unwrapped(t.network).state_dict(), "optimizer": t.optimizer.state_dict(),
                "lr_scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "best_metric": getattr(e.state, "best_metric", None) if e is not None else None,
                "best_metric_epoch": getattr(e.state, "best_metric_epoch", None) if e is not None else None,
                "savers": [kept.state_dict() for kept in self.kept],
                "at_best": dict(self.at_best)}

    def attach(self) -> None:
        """Write the state after each epoch: after the config's handlers of that event (its
        validation, its LR step), which were attached when it was built."""
        from ignite.engine import Events
        self.trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda _engine: self.save())

    def save(self) -> None:
        import torch
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        tmp = self.path + ".tmp"
        torch.save(self.state(), tmp)
        os.replace(tmp, self.path)  # a kill while writing leaves the previous epoch's point
        with open(self.path + ".json", "w") as fh:  # for the sweep, which need not load torch to say it
            json.dump({"epoch": self.trainer.state.epoch}, fh)

    def load(self) -> int:
        """Continue from the saved point, where there is one; give its epoch (0: none)."""
        if not os.path.isfile(self.path):
            return 0
        import torch
        try:  # as MONAI loads a checkpoint: tensors and plain values, never code
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            if not isinstance(saved, dict) or not isinstance(saved.get("epoch"), int):
                raise ValueError(f"no epoch in it (a {type(saved).__name__})")
        except Exception as exc:  # a truncated file (a full disk), another program's pickle
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            notice(f"the resume point {self.path} cannot be read ({why}): training the trial from its start")
            self.remove()
            return 0
        t, e = self.trainer, self.evaluator
        unwrapped(t.network).load_state_dict(saved["network"])
        t.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None and saved.get("lr_scheduler") is not None:
            self.scheduler.load_state_dict(saved["lr_scheduler"])
        t.state.epoch, t.state.iteration = int(saved["epoch"]), int(saved["iteration"])
        if e is not None and saved.get("best_metric") is not None:
            e.state.best_metric, e.state.best_metric_epoch = saved["best_metric"], saved["best_metric_epoch"]
        for kept, state in zip(self.kept, saved.get("savers") or []):
            kept.load_state_dict(state)
            _files_as_at_the_point(kept)
        self.at_best.update(saved.get("at_best") or {})
        notice(f"resuming after epoch {saved['epoch']}/{t.state.max_epochs} (the trial was interrupted): "
               f"{self.path}")
        return int(saved["epoch"])

    def remove(self) -> None:
        remove_resume_point(self.run_dir)


def _files_as_at_the_point(checkpoint) -> None:
    """The best-checkpoint files of a saver as the resume point knows them. The run may have gone
    on after it wrote the point (a preemption's grace time; a kill after a new best was saved but
    before the epoch's point): a file it removed is forgotten (else the next best fails to remove
    it), a file it wrote is removed (its epochs train again; it would pass for the trial's best)."""
    import glob
    import re
    folder = getattr(checkpoint.save_handler, "dirname", None)
    if folder is None:
        return
    (field, saved), = checkpoint.state_dict().items()  # ignite's public state: [(priority, filename), ...]
    known = [name for _, name in saved]
    checkpoint.load_state_dict({field: [(p, name) for p, name in saved if os.path.exists(os.path.join(folder, name))]})
    kept = {name for _, name in checkpoint.state_dict()[field]}
    for name in known:
        shape = re.sub(r"=[^=/]*(\.\w+)$", r"=*\1", name)  # model_key_metric=0.2684.pt -> model_key_metric=*.pt
        if shape == name:
            continue  # a fixed name (key_metric_filename): the next best overwrites it
        for path in glob.glob(os.path.join(glob.escape(str(folder)), shape)):
            if os.path.basename(path) not in kept:
                os.remove(path)
