"""When a sweep starts no new trial: its time limit, the stop threshold (Clara's MMARHandler), a
handler or controller that asks it to stop, and too many failed trials. Counts the trials it told."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .. import better
from ..errors import SweepError
from ..logs import notice


class Stops:
    def __init__(self, *, timeout: float | None, stop_threshold: float | None, max_failure_rate: float) -> None:
        self.timeout, self.threshold, self.max_failure_rate = timeout, stop_threshold, max_failure_rate
        self.started = time.time()  # the sweep's time limit counts from here
        self.said_out_of_time = False
        self.reason: str | None = None  # why the sweep stopped (a stop rule), once it has
        self.finished = self.failed = self.completed = 0
        self.first_error: str | None = None  # the first failure's cause: the failure-rate stop names it

    def out_of_time(self) -> bool:
        """Past the sweep's time limit: no new trial starts (said once)."""
        if self.timeout is None or time.time() - self.started < self.timeout:
            return False
        if not self.said_out_of_time:
            notice(f"the sweep's time limit is reached (timeout={self.timeout:g}s): no new trials")
            self.said_out_of_time = True
        return True

    def check_threshold(self, goal: better.Goal, complete: list) -> None:
        """MMARHandler's stop_threshold: the first of these complete trials whose (first) value
        reaches it stops the sweep."""
        if self.threshold is None or self.reason:
            return
        for t in complete:
            value = t.values[0] if t.values else None
            if value is not None and goal.reached(value, self.threshold):
                self.stop(f"trial #{t.number} reached stop_threshold={self.threshold:g} (value {value:.4f})")
                return

    def stop(self, reason: str) -> None:
        self.reason = reason
        notice(f"the sweep stops: {reason}")

    def stopping(self, ctx: Any, controller: Any, *, running: bool) -> bool:
        """No new trial: the stop threshold was reached, or a handler or the controller asked to
        stop (``ctx``: the engine's context), or the controller has nothing to recommend (while
        trials run it may still: then it waits)."""
        if self.reason:
            return True
        if ctx.stop_requested:  # a handler (or the controller) called ctx.stop_work
            self.stop(ctx.stop_requested)
            return True
        if controller is None or controller.ready():
            return False
        if controller.exhausted or not running:  # (while trials run, the controller may still recommend)
            self.stop(controller.exhausted or "the controller has no recommendation left")
        return True

    def count(self, state: str, reason: str | None) -> None:
        """A told trial: ``complete``, ``pruned`` or ``fail`` (with its reason)."""
        self.finished += 1
        if state == "complete":
            self.completed += 1
        elif state == "fail":
            self.failed += 1
            self.first_error = self.first_error or reason

    def failure_rate_exceeded(self) -> bool:
        return self.finished >= 4 and self.failed / self.finished > self.max_failure_rate

    def failure_rate_error(self, sweep_dir: Path) -> SweepError:
        return SweepError(f"{self.failed} of {self.finished} trials failed, more than max_failure_rate="
                          f"{self.max_failure_rate}: the sweep stops"
                          + (f" (the first: {self.first_error})" if self.first_error else ""),
                          location="hydra.sweeper.max_failure_rate",
                          hint=f"see the reasons in {sweep_dir / 'trials.csv'}")
