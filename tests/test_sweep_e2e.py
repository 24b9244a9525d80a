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

CONFIGS = ["cte-pt41-automl/trn_autoML_Enum.json", "cte-tf31-automl/trn_autoML_Loss_Optimizer.json",
           "cte-pt41-automl/trn_autoML_LR_LP.json"]


@pytest.mark.parametrize("rel", CONFIGS)
def test_three_trial_sweep_with_stock_optuna_sweeper(tmp_path, rel):
    from clara_hydra.convert import convert, write
    from clara_hydra.paths import get
    from clara_hydra.reader import read

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
    names = {p.name for p in conv.params}
    for job in jobs:
        overrides = dict(o.split("=", 1) for o in yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()))
        assert set(overrides) == names  # every search parameter was sampled and passed as an override
        tree = json.loads((job / "effective.json").read_text())
        for p in conv.params:
            given = overrides[p.name]
            if p.mode == "label":  # the label's values landed in the (enabled) config
                assert given in p.choices
            elif p.type == "float":
                for src_loc in p.sources:
                    assert get(tree, src_loc) == pytest.approx(float(given))
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert set(results["best_params"]) == names
    assert results["name"] == "optuna" and isinstance(results["best_value"], float)  # the stock sweeper's keys
