"""Sweep options read without running a sweep: Clara's workers string, the pruner names, and the
direction a converted config's key metric gives."""

from __future__ import annotations

import optuna
import pytest

from clara_hydra.better import of_config
from clara_hydra.errors import ClaraHydraError
from clara_hydra.sweep.options import make_pruner, parse_workers


@pytest.mark.parametrize("spec,want", [
    pytest.param("0:0:1:1", [["0"], ["0"], ["1"], ["1"]], id="two-per-gpu"),
    pytest.param("0,1:2,3", [["0", "1"], ["2", "3"]], id="two-gpus-each"),
    pytest.param(3, [[], [], []], id="count"),
    pytest.param(None, [], id="none"),
])
def test_parse_workers(spec, want):
    assert parse_workers(spec) == want


@pytest.mark.parametrize("spec,words", [
    pytest.param("abc", "malformed workers 'abc'", id="not-gpu-ids"),
    pytest.param("0::1", "malformed workers", id="empty-worker"),
    pytest.param(0, "workers must be at least 1", id="zero"),
])
def test_bad_workers_are_refused(spec, words):
    with pytest.raises(ClaraHydraError, match=words) as info:
        parse_workers(spec)
    assert info.value.location == "hydra.sweeper.workers"


@pytest.mark.parametrize("spec,kind", [
    pytest.param("median", optuna.pruners.MedianPruner, id="median"),
    pytest.param("HyperBand", optuna.pruners.HyperbandPruner, id="hyperband-any-case"),
    pytest.param("asha", optuna.pruners.SuccessiveHalvingPruner, id="asha"),
    pytest.param("none", optuna.pruners.NopPruner, id="none"),
    pytest.param(None, optuna.pruners.NopPruner, id="null"),
    pytest.param({"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.1}, optuna.pruners.ThresholdPruner,
                 id="target"),
])
def test_pruners_by_name_or_target(spec, kind):
    assert isinstance(make_pruner(spec), kind)


THRESHOLD = {"_target_": "optuna.pruners.ThresholdPruner", "lower": 0.1}


# (pruner, direction, the value the one finished trial reported at step 1 and ended with, what
# the second trial reports at step 1, is it pruned)
@pytest.mark.parametrize("spec,direction,first,report,pruned", [
    pytest.param("median", "maximize", 0.8, 0.2, True, id="median-prunes-from-the-second-trial"),
    pytest.param("median", "maximize", 0.8, 0.9, False, id="median-keeps-a-better-trial"),
    pytest.param("median", "minimize", 0.8, 0.2, False, id="median-minimize-keeps-a-lower-loss"),
    pytest.param("median", "minimize", 0.8, 0.9, True, id="median-minimize-prunes-a-higher-loss"),
    pytest.param({"_target_": "optuna.pruners.MedianPruner"}, "maximize", 0.8, 0.2, False,
                 id="optunas-own-median-waits-for-5-trials"),
    pytest.param(THRESHOLD, "maximize", 0.8, 0.05, True, id="threshold-below-lower"),
    pytest.param(THRESHOLD, "maximize", 0.8, 0.15, False, id="threshold-above-lower"),
    pytest.param("none", "maximize", 0.8, 0.2, False, id="none-never-prunes"),
])
def test_what_each_pruner_prunes(spec, direction, first, report, pruned):
    study = optuna.create_study(direction=direction, pruner=make_pruner(spec))
    done = study.ask()
    done.report(first, step=1)
    study.tell(done, first)
    trial = study.ask()
    trial.report(report, step=1)
    assert bool(trial.should_prune()) is pruned


@pytest.mark.parametrize("validate,want", [
    pytest.param({"key_metric": {"name": "MeanDice", "log_label": "val_mean_dice"}}, "maximize", id="dice"),
    pytest.param({"metrics": [{"name": "Accuracy", "log_label": "acc"},
                              {"name": "X", "log_label": "val_loss", "is_key_metric": True}]}, "minimize",
                 id="loss-v40"),
    pytest.param({"metrics": [{"name": "ComputeAverage", "args": {"name": "neg_loss", "is_key_metric": True}}]},
                 "maximize", id="negloss-v3"),
    pytest.param({"metrics": [{"name": "ComputeAverage", "args": {"name": "loss", "is_key_metric": True,
                                                                   "negate_value": True}}]},
                 "maximize", id="negate_value-v3"),
    pytest.param({"key_metric": {"path": "custom.metrics.LossMetricHandler"}}, "minimize", id="byoc-loss-path"),
    pytest.param({}, "maximize", id="none"),
])
def test_direction_follows_the_key_metric(validate, want):
    assert of_config({"validate": validate}).direction == want


@pytest.mark.parametrize("names, want", [
    pytest.param(["key_metric", "train_time"], [0.8, 12.5], id="key_metric-and-time"),
    pytest.param(["val_acc", "val_mean_dice"], [0.9, 0.7], id="by-metric-name"),  # at the best key-metric epoch
])
def test_a_trial_returns_the_named_objectives(names, want):
    from clara_hydra.train.run import objective_values
    assert objective_values(names, 0.8, {"val_mean_dice": 0.7, "val_acc": 0.9}, 12.5, "val_mean_dice") == want


@pytest.mark.parametrize("config, want", [
    pytest.param("mdai-chexpert-tf/config_train.json", {"mean_accuracy", "Average_AUC", "Pneumonia"}, id="v3-name"),
    pytest.param("mdai-spleen-pt40/config_train.json", {"val_mean_dice", "val_acc"}, id="v4.0-metrics"),
    pytest.param("mdai-spleen-pt41/config_train.json", {"val_mean_dice", "val_acc"}, id="v4.1-key-and-additional"),
])
def test_the_objectives_a_sweep_may_name_are_the_validation_metrics(config, want):
    """What the sweeper checks hydra.sweeper.objectives against before any trial: the names the
    run's metrics go by (log_label, else a v3 metric's args.name), not the classes."""
    import json

    from conftest import TRIMMED_CORPUS

    from clara_hydra.tree import validation_metric_names
    names = validation_metric_names(json.loads((TRIMMED_CORPUS / config).read_text())["validate"])
    assert want <= names and not names & {"ComputeAUC", "ComputeAverage", "MeanDice", "Accuracy"}


def test_an_unknown_objective_names_the_known_ones():
    from clara_hydra.errors import TrainingError
    from clara_hydra.train.run import objective_values
    with pytest.raises(TrainingError) as err:
        objective_values(["val_acc"], 0.8, {"val_mean_dice": 0.7, "val_accuracy": 0.9}, 1.0, "val_mean_dice")
    line = err.value.format()
    assert "no objective 'val_acc'" in line and "did you mean val_accuracy" in line and "train_time" in line


@pytest.mark.parametrize("value, exists, want", [
    pytest.param("config/dataset_0.json", "config/dataset_0.json", "config/dataset_0.json", id="v4-from-the-root"),
    pytest.param("../config/dataset_0.json", "config/dataset_0.json", "config/dataset_0.json",
                 id="v3-from-commands"),  # (fzbuzz-spleen's environment.json)
    pytest.param("models/model.pt", None, "models/model.pt", id="not-there-yet-is-the-mmars"),
])
def test_an_environment_path_is_the_mmars(tmp_path, value, exists, want):
    from clara_hydra.paths import in_mmar, mmar_root
    mmar = tmp_path / "mmar"
    (mmar / "config").mkdir(parents=True)
    (mmar / "commands").mkdir()
    if exists:
        (mmar / exists).write_text("{}")
    root = mmar_root(str(mmar / "config" / "config_train.json"))
    assert root == str(mmar)
    assert in_mmar(value, root) == str(mmar / want)


@pytest.mark.parametrize("args, want", [
    pytest.param(["MMAR_CKPT=models/net_key_metric=0.9123.pt"], ["MMAR_CKPT='models/net_key_metric=0.9123.pt'"],
                 id="monai-checkpoint-name-quoted"),
    pytest.param(["lr=choice(1e-3,1e-4)", "a=1"], ["lr=choice(1e-3,1e-4)", "a=1"], id="hydra-syntax-left-alone"),
    pytest.param(["MMAR_CKPT='a=b.pt'"], ["MMAR_CKPT='a=b.pt'"], id="quoted-already"),
    pytest.param(["--config-dir", "x=y"], ["--config-dir", "x=y"], id="a-flag-value"),
])
def test_a_value_with_an_equals_sign_needs_no_quoting(args, want):
    from clara_hydra.resolve import quote_equals
    assert quote_equals(args) == want


def test_relative_mmar_paths_are_the_mmars_unless_the_command_line_gives_them(tmp_path):
    """Clara's finetune and validate.sh: environment.json's relative MMAR_CKPT is the MMAR's
    models/model.pt wherever the run starts; one given on the command line (MONAI's name with '=',
    unquoted) is the caller's, as any path typed in a shell."""
    from omegaconf import OmegaConf

    from clara_hydra.resolve import compose
    from clara_hydra.train.entry import prepare
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "c.yaml").write_text("MMAR_CKPT: models/model.pt\nDATASET_JSON: config/dataset.json\n")
    cfg = compose(str(tmp_path / "conf"), "c", ["MMAR_CKPT=b/net_key_metric=0.1.pt"])
    OmegaConf.set_struct(cfg, False)
    prepare(cfg, str(tmp_path / "run"), str(tmp_path / "mmar"), frozenset({"MMAR_CKPT"}))
    assert cfg.MMAR_CKPT == "b/net_key_metric=0.1.pt"  # the caller's, as given
    assert cfg.DATASET_JSON == str(tmp_path / "mmar" / "config" / "dataset.json")
    cfg = compose(str(tmp_path / "conf"), "c", [])
    prepare(cfg, str(tmp_path / "run"), str(tmp_path / "mmar"))
    assert cfg.MMAR_CKPT == str(tmp_path / "mmar" / "models" / "model.pt")


TPE = {"_target_": "optuna.samplers.TPESampler", "seed": 0, "n_startup_trials": 10}


@pytest.mark.parametrize("sampler, startup, n_trials, want", [
    pytest.param(TPE, "auto", 20, 4, id="auto-a-fifth"),
    pytest.param(TPE, "auto", 200, 10, id="auto-at-most-10"),
    pytest.param(TPE, "auto", 5, 2, id="auto-at-least-2"),
    pytest.param(dict(TPE, n_startup_trials=3), "auto", 20, 3, id="auto-keeps-the-users-own"),
    pytest.param(TPE, 7, 20, 7, id="a-number"),
    pytest.param(TPE, None, 20, 10, id="null-the-samplers"),
])
def test_startup_trials_sets_the_tpe_samplers_random_start(sampler, startup, n_trials, want):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from clara_hydra.sweep.options import with_startup
    got, _ = with_startup(OmegaConf.create(sampler), startup, n_trials)
    assert instantiate(got)._n_startup_trials == want  # the sampler the sweep uses


def test_startup_trials_leaves_other_samplers_and_refuses_nonsense():
    from clara_hydra.sweep.options import with_startup
    random = {"_target_": "optuna.samplers.RandomSampler", "seed": 0}
    assert with_startup(random, "auto", 20) == (random, None)
    with pytest.raises(ClaraHydraError, match="startup_trials must be auto"):
        with_startup(TPE, "some", 20)
