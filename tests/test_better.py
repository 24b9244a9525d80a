"""One notion of "better", end to end: a sweep of a loss key metric (minimized) and of a score
(maximized), on real training whose validation curve is scripted (a BYOC metric in the MMAR's
custom/ folder gives 0.5, 0.2, 0.9, 0.4 at epochs 1-4). Each value that depends on the direction
is checked: the trial's value, the intermediate values the pruner saw (at their own epochs), the
checkpoints kept, the resume point's best after a kill -9, the exported best MMAR, the objectives
of a multi-objective trial (at the epoch of the best key metric), the report's ranking."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import convert_here, run_cli
from test_mmar import make_mmar, synth_data, trials
from test_sweeper import conf, rows  # noqa: F401  (conf is a fixture)
from test_sweeper import sweep as stand_in

pytestmark = pytest.mark.slow

CURVE = [0.5, 0.2, 0.9, 0.4]  # the key metric at epochs 1-4: its best is 0.2 (minimize) or 0.9 (maximize)
OTHER = [10.0, 20.0, 30.0, 40.0]  # a second validation metric, for a multi-objective sweep

SCRIPTED = '''from monai.handlers import MeanDice


class Scripted(MeanDice):
    """A validation metric whose value at epoch k is values[k - 1] (a scripted curve)."""

    def __init__(self, values, **kwargs):
        super().__init__(**kwargs)
        self.values = values

    def attach(self, engine, name):
        self.engine = engine
        super().attach(engine, name)

    def compute(self):
        super().compute()
        return float(self.values[self.engine.state.epoch - 1])
'''

CASES = {  # label of the key metric (convert decides the direction from it), its best epoch
    "minimize": ("val_loss", 2),
    "maximize": ("val_score", 3),
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return synth_data(tmp_path_factory.mktemp("data"), train=2, val=1)


def scripted_mmar(root: Path, data: dict, label: str) -> Path:
    """The demo MMAR, 4 epochs, its key metric the scripted curve under ``label``, a second metric
    ``val_other``, and a CheckpointSaver that keeps the 2 best checkpoints."""
    mmar = make_mmar(root, data)
    cfg = json.loads((mmar / "config" / "config_train.json").read_text())
    cfg["epochs"] = 4
    val = cfg["validate"]
    out = "#monai.handlers.from_engine(['pred', 'label'])"
    val["key_metric"] = {"path": "scripted.Scripted", "log_label": label,
                         "args": {"values": CURVE, "include_background": False, "output_transform": out}}
    val["additional_metrics"] = [{"path": "scripted.Scripted", "log_label": "val_other",
                                  "args": {"values": OTHER, "include_background": False, "output_transform": out}}]
    val["evaluator"]["args"]["additional_metrics"] = "@additional_metrics"
    saver = next(h for h in val["handlers"] if h["name"] == "CheckpointSaver")
    saver["args"]["key_metric_n_saved"] = 2
    (mmar / "custom" / "scripted.py").write_text(SCRIPTED)
    (mmar / "config" / "config_train.json").write_text(json.dumps(cfg, indent=1))
    convert_here(mmar / "config" / "config_train.json", mmar / "conf")
    return mmar


def sweep(mmar: Path, cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return run_cli("train", "--mmar", mmar, "-m", "hydra.sweeper.params=null", "hydra.sweeper.n_trials=1",
                   "hydra.sweeper.pruner=none", *args, cwd=cwd, env=env, timeout=600)


@pytest.mark.parametrize("direction", list(CASES))
def test_the_direction_of_the_key_metric_decides_every_best(tmp_path, data, direction):
    label, best_epoch = CASES[direction]
    best = CURVE[best_epoch - 1]
    mmar = scripted_mmar(tmp_path / "mmar", data, label)
    assert f"direction: {direction}" in (mmar / "conf" / "config_train.yaml").read_text()
    sweep_dir = tmp_path / "sweep"
    if direction == "minimize":  # the best (epoch 2) is behind the resume point: it must come through it
        # killed (kill -9 of the whole sweep: its trial runs in-process) right after epoch 3's resume point
        killed = sweep(mmar, tmp_path, f"hydra.sweep.dir={sweep_dir}", env={"CLARA_HYDRA_FAULT": "epoch_end@3:kill"})
        assert killed.returncode == -9, killed.stdout[-2000:] + killed.stderr[-2000:]
        # exported as it is, the trial says it did not finish and what its checkpoint is
        unfinished = run_cli("export", sweep_dir / "0", "-o", tmp_path / "unfinished", cwd=tmp_path)
        assert unfinished.returncode == 0, unfinished.stderr[-2000:]
        (warning,) = [ln for ln in unfinished.stderr.splitlines() if ln.startswith("warning: ")]
        assert warning.startswith("warning: trial 0 did not finish") and "resume point is after epoch 3" in warning
    resumed = sweep(mmar, tmp_path, f"hydra.sweep.dir={sweep_dir}")
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    (trial,) = trials(sweep_dir)
    assert trial["state"] == "complete" and float(trial["value"]) == pytest.approx(best), trial
    log = (sweep_dir / "0" / "train.log").read_text()
    if direction == "minimize":
        assert "resuming after epoch 3/4" in log and "finished 1 epoch(s)" in log  # counts what this run trained
    import optuna
    study = optuna.load_study(study_name="mmar-config_train",
                              storage=f"sqlite:///{tmp_path / 'clara_hydra_sweeps.db'}")
    assert study.direction.name.lower() == direction
    (t,) = study.trials
    assert t.intermediate_values == {epoch: pytest.approx(v) for epoch, v in enumerate(CURVE, 1)}  # at its epoch
    # the config's saver keeps the 2 best checkpoints in the run's direction, named by their score
    kept = sorted(abs(float(re.search(r"key_metric=(-?[0-9.]+)\.pt$", p.name).group(1)))
                  for p in (sweep_dir / "0" / "models").glob("*key_metric=*.pt"))
    assert kept == sorted(sorted(CURVE, reverse=direction == "maximize")[:2])
    # the exported best MMAR holds the best checkpoint
    (best_file,) = [p for p in (sweep_dir / "0" / "models").glob("*key_metric=*.pt")
                    if abs(float(re.search(r"key_metric=(-?[0-9.]+)\.pt$", p.name).group(1))) == pytest.approx(best)]
    assert (sweep_dir / "best_mmar" / "models" / "model.pt").read_bytes() == best_file.read_bytes()
    # and the best MONAI bundle: its savers keep the best in the run's direction, in its own models/
    bundle = sweep_dir / "best_bundle" / "configs"
    train = json.loads((bundle / "train.json").read_text())
    savers = [h for h in train["validate"]["handlers"] if h["_target_"].endswith("CheckpointSaver")]
    assert savers and all(bool(h.get("key_metric_negative_sign")) == (direction == "minimize") for h in savers)
    assert str(tmp_path) not in json.dumps(train), "the bundle writes into the run's folder"
    meta = json.loads((bundle / "metadata.json").read_text())
    assert meta["key_metric"]["direction"] == direction and meta["key_metric"]["value"] == pytest.approx(best)
    # the report ranks the trials by the direction and names it
    report = run_cli("report", "mmar-config_train", "--storage", f"sqlite:///{tmp_path / 'clara_hydra_sweeps.db'}",
                     "-o", tmp_path / "report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert f"({direction})" in report.stdout and f"#0    {best:.4f}" in report.stdout


def test_a_plain_run_of_a_loss_key_metric_returns_and_keeps_its_lowest_value(tmp_path, data):
    """No sweep: the config's own key metric decides (a loss: lower is better)."""
    mmar = scripted_mmar(tmp_path / "mmar", data, "val_loss")
    run_dir = tmp_path / "run"
    proc = run_cli("train", "--mmar", mmar, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "key metric = 0.2000 (the best validation value" in proc.stdout + proc.stderr
    assert "epoch 4/4, loss" in proc.stdout + proc.stderr and "(best 0.2000 at epoch 2)" in proc.stdout + proc.stderr
    assert sorted(p.name.rsplit("=", 1)[1] for p in (run_dir / "models").glob("*key_metric=*.pt")) == \
        ["-0.2000.pt", "-0.4000.pt"]  # MONAI's saver scores a minimized metric negated: higher is better


def test_a_multi_objective_trial_gives_its_metrics_at_the_best_key_metric(tmp_path, data):
    """The sweep's direction for the key metric reaches the job, whatever the config's metric says
    (here a score, higher-is-better: a minimize sweep makes its lowest value the best; the maximize
    side of the same rule is the single-objective test's)."""
    direction = "minimize"
    best_epoch = CASES[direction][1]
    mmar = scripted_mmar(tmp_path / "mmar", data, "val_score")
    sweep_dir = tmp_path / "sweep"
    proc = sweep(mmar, tmp_path, f"hydra.sweep.dir={sweep_dir}", "hydra.sweeper.storage=null",
                 f"hydra.sweeper.direction=[{direction},maximize]", "hydra.sweeper.objectives=[key_metric,val_other]")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    (trial,) = trials(sweep_dir)
    assert float(trial["values_key_metric"]) == pytest.approx(CURVE[best_epoch - 1])
    assert float(trial["values_val_other"]) == pytest.approx(OTHER[best_epoch - 1])


# ----------------------------------------------------------------- the sweep's side, on the stand-in task
# (tests/standin/sweep_task.py returns the searched x as its value: no training)

FIVE = "x=choice(0.9,0.7,0.5,0.3,0.1)"


@pytest.mark.parametrize("direction,threshold", [("minimize", 0.35), ("maximize", 0.65)])
def test_stop_threshold_is_reached_in_the_study_direction(tmp_path, conf, direction, threshold):  # noqa: F811
    """MMARHandler's stop_threshold: the sweep stops after the first trial at or beyond it in the
    study's direction (at or below it for a loss), never at one on the wrong side."""
    proc = stand_in(conf, tmp_path, FIVE, "mode=a", "hydra.sweeper.pruner=none", "hydra.sweeper.storage=null",
                    f"hydra.sweeper.direction={direction}", f"hydra.sweeper.stop_threshold={threshold}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    values = [float(r["value"]) for r in rows(tmp_path / "sweep" / "trials.csv")]
    def reached(v):
        return v <= threshold if direction == "minimize" else v >= threshold
    assert reached(values[-1]) and not any(reached(v) for v in values[:-1]), values
    assert "reached stop_threshold" in proc.stdout


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_keep_best_and_the_report_follow_the_study_direction(tmp_path, conf, direction):  # noqa: F811
    """keep_best=2 keeps the checkpoints of the 2 best trials in the study's direction; the report
    lists the trials best first."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    proc = stand_in(conf, tmp_path, FIVE, "mode=a", "hydra.sweeper.pruner=none", f"hydra.sweeper.storage={storage}",
                    f"hydra.sweeper.direction={direction}", "hydra.sweeper.keep_best=2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials_ = rows(tmp_path / "sweep" / "trials.csv")
    kept = {float(r["value"]) for r in trials_ if (Path(r["job_dir"]) / "models" / "model.pt").exists()}
    assert kept == ({0.1, 0.3} if direction == "minimize" else {0.9, 0.7})
    report = run_cli("report", "cfg", "--storage", storage, "-o", tmp_path / "report", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    listed = [float(v) for v in re.findall(r"^\s+#\d+\s+([0-9.]+)", report.stdout, re.M)]
    assert listed == sorted([0.9, 0.7, 0.5, 0.3, 0.1], reverse=direction == "maximize"), report.stdout


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_a_reused_combination_takes_the_best_of_its_finished_twins(tmp_path, conf, direction):  # noqa: F811
    """Two finished trials with the same values but different results (a non-deterministic run, a
    trial told by another sweep process): a third proposal of those values completes with the
    better one in the study's direction."""
    import optuna
    storage = f"sqlite:///{tmp_path / 's.db'}"
    args = ("x=choice(0.5)", "mode=a", "hydra.sweeper.pruner=none", f"hydra.sweeper.storage={storage}",
            f"hydra.sweeper.direction={direction}", "hydra.sweeper.finite_space=sample")
    first = stand_in(conf, tmp_path, *args, "hydra.sweeper.n_trials=1")
    assert first.returncode == 0, first.stderr[-3000:]
    study = optuna.load_study(study_name="cfg", storage=storage)
    (trained,) = study.trials
    for value in (0.2, 0.8):  # the same values, other results
        study.add_trial(optuna.trial.create_trial(params=trained.params, distributions=trained.distributions,
                                                  value=value, user_attrs=trained.user_attrs))
    again = stand_in(conf, tmp_path, *args, "hydra.sweeper.n_trials=1")
    assert again.returncode == 0, again.stderr[-3000:]
    last = rows(tmp_path / "sweep" / "trials.csv")[-1]
    assert last["reason"].startswith("reused") and float(last["value"]) == (0.2 if direction == "minimize" else 0.8)
