"""What "better" means, in one place: the direction of the key metric for a run and of each
objective for a study.

A run's direction is its sweep's (``hydra.sweeper.direction``, handed to every job as
``CLARA_HYDRA_DIRECTION``: in-process, worker processes, SLURM jobs and DDP ranks alike), else
the config's key metric (:func:`of_config`: a loss is minimized unless ``negate_value`` makes it
higher-is-better). Everything that compares values asks a :class:`Goal`: the value a trial returns
(MONAI's ``metric_cmp_fn``), the checkpoint kept (``key_metric_negative_sign``), the resume point's
best, the stop threshold, ``keep_best``, a reused combination's value, the report's ranking and the
Clara controller's score. Pure: no torch, no Optuna.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

MAXIMIZE = "maximize"
MINIMIZE = "minimize"
#: a sweep's job: the direction of the value it returns (its key metric's)
ENV_DIRECTION = "CLARA_HYDRA_DIRECTION"


@dataclass(frozen=True)
class Goal:
    direction: str = MAXIMIZE
    why: str = ""

    @property
    def maximize(self) -> bool:
        return self.direction == MAXIMIZE

    def better(self, value: Any, than: Any) -> bool:
        """Is ``value`` strictly better than ``than`` (MONAI's ``metric_cmp_fn(current, prev)``)?"""
        return value > than if self.maximize else value < than

    def reached(self, value: float, threshold: float) -> bool:
        """Is ``value`` at or beyond ``threshold`` in this direction (a stop threshold)?"""
        return value >= threshold if self.maximize else value <= threshold

    def score(self, value: float) -> float:
        """Higher is better whatever the direction (Clara's score; sort keys)."""
        return float(value) if self.maximize else -float(value)

    def ranked(self, items: list, value=lambda x: x) -> list:
        """``items`` best first, by ``value(item)``."""
        return sorted(items, key=lambda item: -self.score(value(item)))


def parse(direction: Any, why: str = "") -> Goal:
    """A direction as Hydra, Optuna or a user writes it (``maximize``, ``StudyDirection.MINIMIZE``);
    ValueError where it is not one."""
    name = str(getattr(direction, "name", direction)).lower()
    if name not in (MAXIMIZE, MINIMIZE):
        raise ValueError(f"not a direction: {direction!r}")
    return Goal(name, why)


def of_study(study: Any, index: int = 0) -> Goal:
    """The direction of the study's objective ``index`` (its first by default)."""
    return parse(study.directions[index], "the study's direction")


def _key_metric(tree: dict) -> dict | None:
    """The config's key validation metric component (v4.1 ``key_metric``; v4.0/v3 the metric marked
    ``is_key_metric``, else the first of ``metrics``), or None."""
    validate: dict = tree["validate"] if isinstance(tree.get("validate"), dict) else {}
    if isinstance(validate.get("key_metric"), dict):
        return validate["key_metric"]
    metrics = [m for m in validate.get("metrics") or [] if isinstance(m, dict)]
    for m in metrics:
        if m.get("is_key_metric") is True or (m.get("args") or {}).get("is_key_metric"):
            return m
    return metrics[0] if metrics else None  # (none marked: the first is the key one, as training takes it)


def key_label(tree: dict) -> str | None:
    """The key metric's name as the run reports it (its ``log_label``; v3: its ``name`` arg)."""
    m = _key_metric(tree)
    if m is None:
        return None
    args: dict = m["args"] if isinstance(m.get("args"), dict) else {}
    label = m.get("log_label") or args.get("name")
    return str(label) if label else None


def of_config(tree: dict) -> Goal:
    """The key validation metric's direction, from the config: higher is better (Clara's score),
    but a loss is minimized unless ``negate_value`` (or a negating name) makes it higher-is-better."""
    m = _key_metric(tree)
    if m is None:
        return Goal(MAXIMIZE, "Clara's score: the key validation metric, higher is better")
    args: dict = m["args"] if isinstance(m.get("args"), dict) else {}
    label = str(key_label(tree) or m.get("name") or m.get("path") or "")
    text = (label + " " + str(m.get("name", "")) + " " + str(m.get("path", ""))).lower()
    if "loss" in text and not args.get("negate_value") and "neg" not in text:
        return Goal(MINIMIZE, f"the key metric {label} is a loss")
    return Goal(MAXIMIZE, f"the key metric {label} is higher-is-better")


def of_run(tree: dict) -> Goal:
    """The direction of this run's key metric: its sweep's, else its config's."""
    given = os.environ.get(ENV_DIRECTION)
    if given:
        try:
            return parse(given, "the sweep's direction")
        except ValueError:
            pass  # (the sweeper refuses a wrong direction before any job starts)
    return of_config(tree)


def key_direction(directions: list, objectives: list[str] | None, key_names: tuple[str, ...]) -> Goal | None:
    """The direction a sweep gives its jobs' key metric: its only direction, or that of the objective
    that names the key metric (``key_metric`` or the metric's own name); None where no objective is it."""
    if objectives is None:
        return parse(directions[0], "the study's direction") if len(directions) == 1 else None
    for name, direction in zip(objectives, directions):
        if name in key_names:
            return parse(direction, f"the direction of the objective {name}")
    return None
