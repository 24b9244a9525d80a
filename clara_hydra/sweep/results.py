"""What a sweep leaves for people: optimization_results.yaml, trials.csv, and the best trial's
config as Hydra YAML and as a Clara config_train.json."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import yaml
from optuna.trial import TrialState

from . import protocol as P


def format_params(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def best(study):
    """The best trial of a single-objective study (None before one completes, and for a
    multi-objective study, which has a Pareto front instead: :func:`front`)."""
    if len(study.directions) > 1:
        return None
    try:
        return study.best_trial
    except ValueError:
        return None


def front(study) -> list:
    """The trials on the Pareto front of a multi-objective study (empty for one objective)."""
    return list(study.best_trials) if len(study.directions) > 1 else []


def _objective_names(objectives: list[str] | None, n: int) -> list[str]:
    """The names of n values: the objectives', or 0, 1, ... where they are not named."""
    return list(objectives) if objectives and len(objectives) == n else [str(i) for i in range(n)]


def format_values(values, objectives: list[str] | None = None) -> str:
    return ", ".join(f"{n} {v:.4f}" for n, v in zip(_objective_names(objectives, len(values)), values))


def value_columns(study, objectives: list[str] | None = None) -> list[str]:
    """trials.csv's value column(s): ``value`` (one objective, as Optuna's trials_dataframe), else
    ``values_<objective>`` (``values_0``, ``values_1``, ... where the objectives have no names)."""
    n = len(study.directions)
    return ["value"] if n == 1 else [f"values_{name}" for name in _objective_names(objectives, n)]


def write_all(study, sweep_dir: Path, param_names: list[str], objectives: list[str] | None = None, *,
              remove_search_augs: bool = False) -> None:
    """optimization_results.yaml with the stock sweeper's keys (``name: optuna``; ``best_params``
    and ``best_value``, or the Pareto front as ``solutions`` of ``params``/``values``) plus ours;
    trials.csv; the best trial's configs (``remove_search_augs``: the Clara config without the
    transforms that are disabled, as Clara's executor option wrote it)."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    b = best(study)
    directions = [d.name.lower() for d in study.directions]
    summary: dict = {"name": "optuna", "sweeper": "clara_optuna", "study_name": study.study_name,
                     "direction": directions[0] if len(directions) == 1 else directions}
    if objectives:
        summary["objectives"] = list(objectives)
    summary.update({"n_trials": len(trials),
                    "states": {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if
                               any(t.state == s for t in trials)}})
    if b is not None:
        summary.update({"best_params": dict(b.params), "best_value": b.value, "best_trial": b.number})
    pareto = front(study)
    if pareto:
        summary["solutions"] = [{"params": dict(t.params), "values": list(t.values), "trial": t.number,
                                 "job_dir": t.user_attrs.get(P.ATTR_JOB_DIR, "")} for t in pareto]
    _atomic(sweep_dir / "optimization_results.yaml", yaml.safe_dump(summary, sort_keys=False))
    names = list(dict.fromkeys(param_names + [k for t in trials for k in t.params]))
    n_values = len(directions)
    rows = []
    for t in trials:
        duration = t.user_attrs.get(P.ATTR_DURATION)
        if duration is None and t.datetime_start and t.datetime_complete:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        values = list(t.values) if t.values is not None else [""] * n_values
        rows.append([t.number, t.state.name.lower()] + values
                    + [t.params.get(n, "") for n in names]
                    + ["" if duration is None else duration, t.user_attrs.get(P.ATTR_REASON, ""),
                       t.user_attrs.get(P.ATTR_JOB_DIR, "")])
    tmp = sweep_dir / ".trials.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["number", "state"] + value_columns(study, objectives) + names + ["duration_s", "reason",
                                                                                      "job_dir"])
        w.writerows(rows)
    from .. import faults
    faults.point("results_write")
    os.replace(tmp, sweep_dir / "trials.csv")
    if b is not None:
        job = Path(b.user_attrs.get(P.ATTR_JOB_DIR, sweep_dir / str(b.number)))
        for src, dst in ((job / "config_train.json", "best_config_train.json"),
                         (job / ".hydra" / "config.yaml", "best_config.yaml")):
            if src.exists() and remove_search_augs and dst.endswith(".json"):
                _atomic(sweep_dir / dst, json.dumps(without_disabled_transforms(json.loads(src.read_text())),
                                                    indent=2))
            elif src.exists():
                shutil.copyfile(src, sweep_dir / dst)
            elif (sweep_dir / dst).exists():
                (sweep_dir / dst).unlink()  # the best trial ran elsewhere: no stale copy of another one


def without_disabled_transforms(tree: dict) -> dict:
    """A Clara config whose transform lists (``pre_transforms``, ``post_transforms``, v3's
    ``batch_transforms``) drop the members that are disabled: what a search switched
    off does nothing, so the written config reads as what was trained."""
    from ..values import as_bool
    out = dict(tree)
    for sec in ("train", "validate"):
        section = out.get(sec)
        if not isinstance(section, dict):
            continue
        section = dict(section)
        for key in ("pre_transforms", "post_transforms", "batch_transforms"):
            items = section.get(key)
            if isinstance(items, list):
                section[key] = [c for c in items if not (isinstance(c, dict) and as_bool(c.get("disabled", False)))]
        out[sec] = section
    return out


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
