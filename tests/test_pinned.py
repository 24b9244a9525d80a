"""Behaviour a user relies on off the demo's path, each pinned where it is decided: the data a
trial trains on (its own cache when its searched values change the deterministic transforms, a
validation list that is the validation list), and the values the sweep gives its trials (a resumed
seeded sweep samples on, it never replays). (A validation interval longer than the run validates
once at its end: the corpus training test, whose configs do so, checks that validation's value.)"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import cases


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict:
    from clara_hydra.synth import write
    return write(str(tmp_path_factory.mktemp("d")), n_train=2, n_val=1, shape=(16, 16, 16))


def _tree(env: dict, *, a_min: float = -57.0, pixdim=(1.0, 1.0, 1.0), prob: float = 0.5,
          val_key: str | None = "validation") -> dict:
    chain = [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
             {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
             {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": list(pixdim),
                                           "mode": ["bilinear", "nearest"]}},
             {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": a_min, "a_max": 164.0, "b_min": 0.0,
                                                       "b_max": 1.0, "clip": True}},
             {"name": "RandFlipd", "args": {"keys": ["image", "label"], "prob": prob}}]
    ds = {"name": "CacheDataset", "data_list_file_path": env["DATASET_JSON"], "data_file_base_dir": env["DATA_ROOT"],
          "args": {"cache_rate": 1.0}}
    val_ds = dict(ds, data_list_key=val_key) if val_key else dict(ds)
    return {"train": {"pre_transforms": chain, "dataset": dict(ds, data_list_key="training")},
            "validate": {"pre_transforms": chain[:4], "dataset": val_ds}}


def _dataset(tree: dict, sec: str = "train"):
    """The section's dataset as a sweep's trial builds it (the shared cache on)."""
    from clara_hydra.train.run import build
    parser, _bundle, _era = build(tree, config_file=None, device="cpu", amp=False, share_cache=True)
    return parser.get_parsed_content(f"{sec}::dataset")


@pytest.fixture
def fresh_cache():
    from clara_hydra.train import cache
    cache._MEMORY.clear()
    yield
    cache._MEMORY.clear()


@pytest.mark.parametrize("name,change", cases([
    ("ScaleIntensityRanged.a_min", {"a_min": 0.0}),
    ("Spacingd.pixdim", {"pixdim": (2.0, 2.0, 2.0)}),
]))
def test_a_trial_that_changes_a_deterministic_transform_never_gets_another_trials_cache(synth, fresh_cache, name,
                                                                                        change):
    first = _dataset(_tree(synth))
    other = _dataset(_tree(synth, **change))
    assert other is not first
    a, b = first.data[0], other.data[0]  # (the cached items: the deterministic prefix's output)
    import torch
    cached_a, cached_b = first._cache[0]["image"], other._cache[0]["image"]
    assert a == b  # the same case
    assert cached_a.shape != cached_b.shape or not torch.equal(cached_a, cached_b)  # transformed otherwise


def test_trials_with_the_same_deterministic_chain_share_one_cache(synth, fresh_cache, capsys):
    first = _dataset(_tree(synth, prob=0.5))
    again = _dataset(_tree(synth, prob=0.9))  # only the random tail differs
    assert again is first and "reusing this sweep's cached data" in capsys.readouterr().err
    assert again.transform.transforms[-1].prob == pytest.approx(0.9)  # its own random tail


def test_a_validation_dataset_without_data_list_key_reads_the_validation_list(synth):
    listed = json.loads(open(synth["DATASET_JSON"]).read())
    from clara_hydra.train.run import build
    for val_key in (None, "validation"):
        parser, bundle, _era = build(_tree(synth, val_key=val_key), config_file=None, device="cpu", amp=False)
        images = [item["image"] for item in bundle["validate"]["dataset"]["data"]]
        assert [i.rsplit("/", 1)[-1] for i in images] == [v["image"].rsplit("/", 1)[-1] for v in listed["validation"]]
        trained = [item["image"] for item in bundle["train"]["dataset"]["data"]]
        assert not set(images) & set(trained)


# ---------------------------------------------------------------------- runs and sweeps, for real

@pytest.mark.slow
def test_a_resumed_seeded_sweep_samples_on_and_never_replays_its_first_trials(tmp_path):
    """The same seeded sweep command run again on its study: the new trials' values are new ones
    (a restarted seeded sampler would give the first trials' values again), and the same ones
    whenever it resumes from the same study (seeded: reproducible)."""
    from test_sweeper import CONFIG, rows, sweep

    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    src = tmp_path / "cfg.json"
    src.write_text(json.dumps(CONFIG))
    conf = Path(write(convert(analyse(CONFIG, file=str(src))), str(tmp_path / "conf")))
    args = ("hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=none", "hydra.sweeper.sampler.seed=5",
            "hydra.sweeper.startup_trials=10")  # (random samples all along: what a restarted seed replays)
    base = tmp_path / "base"
    base.mkdir()
    assert sweep(conf, base, *args).returncode == 0
    first = [r["x"] for r in rows(base / "sweep" / "trials.csv")]
    resumed = []
    for copy in ("a", "b"):
        d = tmp_path / copy
        d.mkdir()
        shutil.copyfile(base / "clara_hydra_sweeps.db", d / "clara_hydra_sweeps.db")
        proc = sweep(conf, d, *args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        resumed.append([r["x"] for r in rows(d / "sweep" / "trials.csv")][2:])
    assert len(resumed[0]) == 2 and not set(resumed[0]) & set(first), (first, resumed[0])
    assert resumed[0] == resumed[1]


@pytest.mark.slow
@pytest.mark.parametrize("host,state", [("another-machine", "RUNNING"), (None, "FAIL")],
                         ids=["other-host", "this-host"])
def test_recovery_never_fails_a_trial_another_machine_runs(tmp_path, host, state):
    """A study shared by several machines (a journal file): a RUNNING trial asked by a sweep on
    another host, whose process id means nothing here, is left to that machine; one of this host
    whose sweep process is gone is recovered (failed: it left no resume point)."""
    import os
    import subprocess
    import sys

    import optuna
    from test_sweeper import CONFIG, sweep

    from clara_hydra.convert import convert
    from clara_hydra.reader import analyse
    from clara_hydra.render import write
    from clara_hydra.sweep.protocol import ATTR_HOST, ATTR_JOB_DIR, ATTR_PID
    src = tmp_path / "cfg.json"
    src.write_text(json.dumps(CONFIG))
    conf = Path(write(convert(analyse(CONFIG, file=str(src))), str(tmp_path / "conf")))
    journal = tmp_path / "study.journal"
    args = ("hydra.sweeper.n_trials=1", "hydra.sweeper.pruner=none", f"hydra.sweeper.storage=journal:{journal}")
    assert sweep(conf, tmp_path, *args).returncode == 0
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    study = optuna.load_study(study_name="cfg", storage=storage)
    trial = study.ask(study.trials[0].distributions)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process id that is no process here
    trial.set_user_attr(ATTR_HOST, host or os.uname().nodename)
    trial.set_user_attr(ATTR_PID, gone.pid)
    trial.set_user_attr(ATTR_JOB_DIR, str(tmp_path / "elsewhere" / str(trial.number)))
    proc = sweep(conf, tmp_path, *args)
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="cfg", storage=storage)
    assert study.trials[trial.number].state.name == state
