"""The sweep loop, once for every way of running trials: ask for the next trial (an interrupted
one to resume first), reuse a finished combination, check the stop rules, hand the job to a
:class:`Runner`, and tell each outcome the runner gives back.

A runner is a way of running trials (:mod:`.runners`: Hydra's launcher, in-process or a SLURM
array; Clara's workers, subprocesses with their own GPUs). It takes jobs while it has room and
gives back the ones that ended; the loop never knows how they ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass
class Job:
    """One trial's run: the trial, its overrides (the sweep's params and fixed overrides), its
    folder, the ``sweep.protocol`` environment it runs with, and whether it resumes the trial."""

    trial: Any
    overrides: list[str]
    job_dir: Path
    env: dict[str, str]
    resumed: bool = False


@dataclass
class Ended:
    """A job that ended. ``state``: ``complete`` (with ``value``), ``pruned`` or ``fail`` (with
    ``reason``); None when it died without an outcome (``cause``: how it ended, ``log_line``: the
    last error line of its log), so that the sweep may resume it."""

    job: Job
    started: float
    state: str | None
    value: Any = None
    reason: str | None = None
    error: str | None = None  # the failure as the sweep's first error names it (exception type: message)
    cause: str = ""
    log_line: str = ""


class Runner(Protocol):
    def free(self) -> int:
        """How many more jobs it takes now."""

    def busy(self) -> bool:
        """Whether it holds jobs that have not ended (started, or waiting to start)."""

    def start(self, job: Job) -> None:
        """Take a job (it may start it at once, or with the next ones in :meth:`wait`)."""

    def wait(self) -> list[Ended]:
        """Run or watch its jobs; give back those that ended (none, while all still run)."""

    def stop(self) -> list[Any]:
        """Ctrl-C, SIGTERM, a failure: stop every job; give back their trials."""


class Sweep(Protocol):
    """What the loop asks of the sweep (:class:`.session.Sweep`)."""

    def out_of_time(self) -> bool: ...

    def recheck(self) -> None: ...

    def stopping(self, *, running: bool) -> bool: ...

    def stopped(self) -> bool: ...

    def next(self) -> Job: ...

    def reuse(self, trial: Any) -> bool: ...

    def started(self, job: Job) -> None: ...

    def conclude(self, ended: Ended) -> bool: ...

    def failure_rate_exceeded(self) -> bool: ...

    def cut_short(self, trials: list) -> None: ...

    def fail_for_rate(self) -> BaseException: ...


def run(sweep: Sweep, runner: Runner, to_go: int) -> None:
    """Run ``to_go`` trials (a reused one counts; a trial resumed after its job died does not),
    fewer where a stop rule ends the sweep; the running ones always end first. Too many failures
    raise once the running trials have ended; an interruption stops the runner's jobs and records
    their trials as cut short (resumable, or failed)."""
    failing = False
    try:
        while (to_go > 0 and not failing) or runner.busy():
            if to_go > 0 and not failing and sweep.out_of_time():
                to_go = 0
            sweep.recheck()
            while to_go > 0 and not failing and runner.free() > 0:
                if sweep.stopping(running=runner.busy()):
                    if sweep.stopped() or not runner.busy():
                        to_go = 0  # stopped, or a controller with nothing left to recommend
                    break  # (a controller waits for a running trial's outcome)
                job = sweep.next()
                to_go -= 1
                if not job.resumed and sweep.reuse(job.trial):
                    continue
                runner.start(job)
                sweep.started(job)
            for ended in runner.wait():
                if sweep.conclude(ended):
                    to_go += 1  # resumed: it runs again, not as one of the new trials
                elif sweep.failure_rate_exceeded():
                    failing = True
    except BaseException:
        sweep.cut_short(runner.stop())
        raise
    sweep.cut_short([])  # resumable trials the sweep stopped before: the next run resumes them
    if failing:
        raise sweep.fail_for_rate()
