"""What a trial's job gives back, as Optuna takes it: its value(s), the cause of a worker's end
without an outcome, and the study's ``tell``."""

from __future__ import annotations

import math
import signal
from typing import Any

import optuna
from omegaconf import ListConfig


def values(value: Any, n: int, objectives: list[str] | None) -> tuple[Any, str | None]:
    """A job's return as Optuna takes it (a float, or a list of n floats), or the reason it is not."""
    many = isinstance(value, (list, tuple, ListConfig))
    if n == 1 and many and len(value) == 1:
        value, many = value[0], False
    if (n > 1) != many or (many and len(value) != n):
        got = f"{len(value)} value(s)" if many else "1 value"
        return value, (f"the task returned {got} for {n} direction(s)"
                       + ("" if objectives else "; name them with hydra.sweeper.objectives=[...]"))
    try:
        floats = [float(v) for v in value] if many else [float(value)]
    except (TypeError, ValueError):
        return value, f"the task returned {value!r}, not {'numbers' if many else 'a number'}"
    names = objectives or ([] if many else ["the key metric"])
    for i, v in enumerate(floats):
        if not math.isfinite(v):
            what = names[i] if i < len(names) else f"value {i}"
            return value, f"{'the key metric' if what == 'key_metric' else what} is {v}"
    return (floats if many else floats[0]), None


def tell(study: optuna.Study, trial: Any, **kwargs: Any) -> None:
    """study.tell; the grid sampler, told its last combination, asks the study to stop, which Optuna
    allows only inside study.optimize: the trial is recorded all the same (as the stock sweeper)."""
    try:
        study.tell(trial, **kwargs)
    except RuntimeError as exc:
        if "Study.stop" not in str(exc):
            raise


def exit_cause(returncode: int) -> str:
    """What a worker's exit code says: ``was killed by SIGKILL (...)`` or ``exited with code 3``."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        why = " (kill -9, or the system's out-of-memory killer)" if -returncode == signal.SIGKILL else ""
        return f"was killed by {name}{why}"
    return f"exited with code {returncode} without an outcome"
