"""A real 3-trial sweep with the stock Hydra Optuna sweeper over converted corpus configs and a
stand-in task function, in a subprocess: the emitted params are real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, corpus_or_skip

pytestmark = pytest.mark.slow

STEP_SIZE = ("train", "lr_scheduler", "args", "step_size")
CHANNELS = ("train", "model", "args", "channels")
NORM = ("train", "model", "args", "norm")
LOSS_NAME = ("train", "loss", "name")
OPTIMIZER_NAME = ("train", "optimizer", "name")

#: config -> every search parameter the sweep samples -> what it sets in the trial's
#: (enabled-only) config: for an enum, value given -> {place: value there}; for a float,
#: (low, high, places the sampled value lands at).
EXPECTED = {
    "cte-pt41-automl/trn_autoML_Enum.json": {
        "StepLR_step_size": {"5000": {STEP_SIZE: 5000}, "1000": {STEP_SIZE: 1000}},
        "UNet_channels": {"16-32-64-128-256": {CHANNELS: [16, 32, 64, 128, 256]},
                          "8-16-32-64-128": {CHANNELS: [8, 16, 32, 64, 128]}},
        "UNet_norm": {"batch": {NORM: "batch"}, "INSTANCE": {NORM: "INSTANCE"}},
    },
    "cte-tf31-automl/trn_autoML_Loss_Optimizer.json": {  # the label names the one member left enabled
        "mySearchLoss1_mySearchLoss2": {"Focal": {LOSS_NAME: "Focal"}, "Dice": {LOSS_NAME: "Dice"}},
        "mySearchOptimizer1_mySearchOptimizer2": {"NovoGrad": {OPTIMIZER_NAME: "NovoGrad"},
                                                  "Adam": {OPTIMIZER_NAME: "Adam"}},
    },
    "cte-pt41-automl/trn_autoML_LR_LP.json": {
        "learning_rate": (0.0001, 0.001, [("learning_rate",), ("train", "optimizer", "args", "lr")]),
        "StepLR_gamma": (0.1, 0.2, [("train", "lr_scheduler", "args", "gamma")]),
        "myProb": (0.0, 1.0, [("train", "pre_transforms", 6, "args", "prob"),
                              ("train", "pre_transforms", 7, "args", "prob")]),
    },
}


def standin_score(tree: dict) -> float:
    """What tests/standin/task.py returned for a trial, from the config it wrote."""
    return float(sum(map(ord, json.dumps(tree, sort_keys=True))) % 1000) / 1000.0


@pytest.mark.parametrize("rel,expected", [pytest.param(rel, exp, id=rel) for rel, exp in EXPECTED.items()])
def test_three_trial_sweep_with_stock_optuna_sweeper(tmp_path, rel, expected):
    from clara_hydra.convert import convert
    from clara_hydra.paths import get
    from clara_hydra.reader import read
    from clara_hydra.render import write

    src = corpus_or_skip() / rel
    conv = convert(read(str(src)))
    written = Path(write(conv, str(tmp_path / "conf")))
    sweep_dir = tmp_path / "multirun"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "standin" / "task.py"), "-m",
         "--config-dir", str(written.parent), "--config-name", written.stem,
         "hydra/sweeper=optuna", "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.seed=1",
         f"hydra.sweep.dir={sweep_dir}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    assert len(jobs) == 3
    assert {p.name for p in conv.params} == set(expected)
    scores = []
    for job in jobs:
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        assert set(overrides) == set(expected)  # every search parameter was sampled and passed as an override
        tree = json.loads((job / "effective.json").read_text())
        for name, want in expected.items():
            given = overrides[name]
            if isinstance(want, dict):  # an enum: the value given lands as its values
                assert given in want, (name, given)
                for loc, value in want[given].items():
                    assert get(tree, loc) == value, (name, given, loc)
            else:  # a float: the sampled value, inside the range, at every place it sets
                low, high, locs = want
                assert low <= float(given) <= high, (name, given)
                for loc in locs:
                    assert get(tree, loc) == float(given), (name, given, loc)
        scores.append((standin_score(tree), overrides))
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna"  # the stock sweeper's keys
    # the converted config maximizes (val_mean_dice is higher-is-better): the best trial is the top score
    best = max(score for score, _ in scores)
    assert results["best_value"] == best
    best_params = {name: str(value) for name, value in results["best_params"].items()}
    assert best_params in [overrides for score, overrides in scores if score == best]
