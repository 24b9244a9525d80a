"""What a sweep leaves for people: optimization_results.yaml, trials.csv, and the best trial's
config as Hydra YAML and as a Clara config_train.json."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import yaml
from optuna.trial import TrialState

from . import protocol as P


def format_params(params: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def best(study):
    try:
        return study.best_trial
    except ValueError:
        return None


def write_all(study, sweep_dir: Path, param_names: list[str]) -> None:
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    b = best(study)
    summary = {"name": "clara_optuna", "study_name": study.study_name, "direction": study.direction.name.lower(),
               "n_trials": len(trials),
               "states": {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState if
                          any(t.state == s for t in trials)}}
    if b is not None:
        summary.update({"best_trial": b.number, "best_value": b.value, "best_params": dict(b.params)})
    _atomic(sweep_dir / "optimization_results.yaml", yaml.safe_dump(summary, sort_keys=False))
    names = list(dict.fromkeys(param_names + [k for t in trials for k in t.params]))
    rows = []
    for t in trials:
        duration = t.user_attrs.get(P.ATTR_DURATION)
        if duration is None and t.datetime_start and t.datetime_complete:
            duration = (t.datetime_complete - t.datetime_start).total_seconds()
        rows.append([t.number, t.state.name.lower(), "" if t.value is None else t.value]
                    + [t.params.get(n, "") for n in names]
                    + ["" if duration is None else duration, t.user_attrs.get(P.ATTR_REASON, ""),
                       t.user_attrs.get(P.ATTR_JOB_DIR, "")])
    tmp = sweep_dir / ".trials.csv.tmp"
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["number", "state", "value"] + names + ["duration_s", "reason", "job_dir"])
        w.writerows(rows)
    os.replace(tmp, sweep_dir / "trials.csv")
    if b is not None:
        job = Path(b.user_attrs.get(P.ATTR_JOB_DIR, sweep_dir / str(b.number)))
        for src, dst in ((job / "config_train.json", "best_config_train.json"),
                         (job / ".hydra" / "config.yaml", "best_config.yaml")):
            if src.exists():
                shutil.copyfile(src, sweep_dir / dst)
            elif (sweep_dir / dst).exists():
                (sweep_dir / dst).unlink()  # the best trial ran elsewhere: no stale copy of another one


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
