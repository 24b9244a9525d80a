"""Failures that lose work or hide their cause (the issue of that name), each as a user meets it,
from folders outside the clone:

1. an error in a DataLoader worker process is one line naming the transform and the real
   exception, not PyTorch's "Caught RuntimeError in DataLoader worker process 0";
2. a mistyped boolean for a first-level key that no training config types (``dont_load_ts_model``
   of the evaluation config) is refused, as ``maybe`` is refused for a boolean arg;
3. ``clara-hydra export`` never writes over a search space or the MMAR the run trained from, and
   says so when the run it exports failed, was pruned or did not finish."""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from conftest import convert_here, one_error, run_cli
from test_mmar import VALIDATION_V41, clara_train, make_mmar

CROP_ERROR = "The size of the proposed random crop ROI is larger than the image size"


def small_data(out: Path) -> dict:
    """16^3 synthetic volumes (smaller than the demo's 32^3 crop): their DATA_ROOT and DATASET_JSON."""
    proc = run_cli("synth-data", out, "--shape", "16", "16", "16", "--train", "2", "--val", "1")
    assert proc.returncode == 0, proc.stderr
    env = json.loads((out / "environment.json").read_text())
    return {"DATA_ROOT": env["DATA_ROOT"], "DATASET_JSON": env["DATASET_JSON"]}


def edit_mmar(mmar: Path, change) -> Path:
    """``change(config)`` on the MMAR's config_train.json, converted again."""
    path = mmar / "config" / "config_train.json"
    cfg = json.loads(path.read_text())
    change(cfg)
    path.write_text(json.dumps(cfg, indent=1))
    shutil.rmtree(mmar / "conf")
    convert_here(path, mmar / "conf")
    return mmar


@pytest.fixture(scope="module")
def data16(tmp_path_factory) -> dict:
    return small_data(tmp_path_factory.mktemp("data16"))


# ----------------------------------------------------------------- 1. a DataLoader worker's error

def _crop_too_large(cfg: dict, workers: int = 1) -> None:
    cfg["epochs"] = 1
    for t in cfg["train"]["pre_transforms"]:
        if t.get("name") == "RandCropByPosNegLabeld":
            t["args"]["spatial_size"] = [32, 32, 32]
    cfg["train"]["dataloader"]["args"]["num_workers"] = workers


def _loader_error(workers: int, nested: bool = False) -> BaseException:
    """What a DataLoader of ``workers`` worker processes raises for a crop larger than the image."""
    import numpy as np
    from monai.data import DataLoader, Dataset
    from monai.transforms import Compose, EnsureChannelFirstd, RandCropByPosNegLabeld
    keys = ["image", "label"]
    crop = RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=[32, 32, 32], num_samples=2)
    chain = [EnsureChannelFirstd(keys=keys, channel_dim="no_channel"), Compose([crop]) if nested else crop]
    rng = np.random.default_rng(0)
    case = {"image": rng.random((16, 16, 16), dtype=np.float32),
            "label": (rng.random((16, 16, 16)) > 0.5).astype(np.float32)}
    loader = DataLoader(Dataset([case], Compose(chain)), batch_size=1, num_workers=workers)
    with pytest.raises(Exception) as info:
        next(iter(loader))
    return info.value


@pytest.mark.parametrize("workers,nested", [(0, False), (1, False), (1, True)])
def test_a_transform_error_names_the_transform_and_the_real_exception(workers, nested):
    """In the training process (0 workers) or in a worker process, whose error PyTorch re-raises
    with the traceback as text: the innermost transform and the exception that started it."""
    from clara_hydra.train.run import _training_error
    error = _training_error(_loader_error(workers, nested))
    line = error.format()
    assert "\n" not in line, line
    assert line.startswith("error: train.pre_transforms: training failed in RandCropByPosNegLabeld: ValueError: "
                           + CROP_ERROR), line
    assert "Caught" not in line and "Compose" not in line, line
    assert "check RandCropByPosNegLabeld's args" in line, line
    if sys.version_info >= (3, 11):  # where tracebacks are shown (CLARA_HYDRA_FULL_ERROR=1), the cause's is under it
        assert any(f"ValueError: {CROP_ERROR}" in note for note in error.__notes__), error.__notes__


class _NoImage:
    """A dataset (no MONAI transform) whose case has no image."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index):
        return {"label": 0}["image"]


def test_an_error_of_no_transform_in_a_worker_names_the_worker_and_the_exception():
    from torch.utils.data import DataLoader

    from clara_hydra.train.run import _training_error
    with pytest.raises(KeyError) as info:
        next(iter(DataLoader(_NoImage(), num_workers=1)))
    line = _training_error(info.value).format()
    assert line.startswith("error: train: training failed in a DataLoader worker process: KeyError: 'image' "), line


@pytest.mark.slow
def test_a_crop_larger_than_the_image_in_a_worker_process_is_one_line_naming_it(tmp_path, data16):
    mmar = edit_mmar(make_mmar(tmp_path / "mmar", data16), _crop_too_large)
    proc = clara_train("--mmar", mmar, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path / "elsewhere")
    line = one_error(proc)
    assert ": train.pre_transforms: training failed in RandCropByPosNegLabeld: ValueError: " + CROP_ERROR in line, line
    assert "DataLoader worker" not in line, line


def _exits(cfg: dict) -> None:
    cfg["train"]["lr_scheduler"]["args"]["step_size"] = "#__import__('sys').exit(0)"


@pytest.mark.slow
def test_code_of_the_config_that_calls_sys_exit_ends_the_run_as_a_failure(tmp_path, data16):
    """A run whose config's code ends the process is a failed run (exit 2, the reason), never a
    silent exit 0 (a sweep's trial: failed, the sweep goes on; test_sweeper)."""
    mmar = edit_mmar(make_mmar(tmp_path / "mmar", data16, drop_search=True), _exits)
    line = one_error(clara_train("--mmar", mmar, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path))
    assert "train: the config's code called sys.exit(0) while training" in line, line


@pytest.mark.slow
def test_a_run_on_a_full_disk_is_one_line_without_a_traceback(tmp_path, data16):
    """The disk fills while the run writes its checkpoint (no file may grow past 30 kB)."""
    mmar = make_mmar(tmp_path / "mmar", data16, drop_search=True)
    proc = run_cli("train", "--mmar", mmar, "epochs=1", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                   file_limit=30000)
    line = one_error(proc)
    assert "cannot write the run's files: the disk is full" in line, line
    assert "hydra.run.dir=" in line, line


def test_an_error_exit_waits_for_the_pool_threads_still_on_an_item():
    """MONAI's CacheDataset fills its cache in a ThreadPool: when one item fails, the others are
    still loading; the process must not exit under them (it aborted: "terminate called without an
    active exception", SIGABRT, in one run of five with a missing image)."""
    import threading
    import time
    from multiprocessing.pool import ThreadPool

    from clara_hydra.app import settle_pool_threads
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def item(_):
        started.set()
        release.wait()
        time.sleep(0.3)  # the rest of the item's work
        finished.set()
    pool = ThreadPool(2)
    pool.map_async(item, [0])
    started.wait()
    pool.terminate()  # (what the failed fill did; it does not wait for the threads)
    release.set()
    settle_pool_threads()
    assert finished.is_set()


# ----------------------------------------------------------------- 2. a mistyped first-level boolean

@pytest.mark.parametrize("override,value", [("+dont_load_ts_model=true", True), ("++dont_load_ts_model=0", 0),
                                            ("++dont_load_ts_model=False", False), ("++use_gpu=true", True)])
def test_a_first_level_boolean_the_config_does_not_have_is_taken_when_it_is_one(override, value):
    from conftest import CORPUS, resolve
    key = override.lstrip("+").split("=")[0]
    assert resolve(CORPUS / "mdai-spleen-pt41" / "config_train.json", [override])[key] == value


@pytest.mark.slow
@pytest.mark.parametrize("value", ["ture"])  # (maybe: a test_types table row, in-process)
def test_a_mistyped_boolean_of_the_evaluation_config_is_refused(tmp_path, data16, value):
    """``dont_load_ts_model`` is the evaluation config's (the training config has none): validate
    adds it to the composed config untyped, where a string that is neither true nor false would
    silently load the TorchScript model."""
    mmar = make_mmar(tmp_path / "mmar", data16)
    (mmar / "config" / "config_validation.json").write_text(json.dumps(VALIDATION_V41))
    proc = run_cli("validate", "--mmar", mmar, f"dont_load_ts_model={value}", f"hydra.run.dir={tmp_path / 'v'}",
                   cwd=tmp_path)
    line = one_error(proc)
    assert line.endswith(f": dont_load_ts_model: 'dont_load_ts_model' takes a boolean, got {value} "
                         f"(give a boolean)"), line


# ----------------------------------------------------------------- 3. export

@pytest.fixture(scope="module")
def trained(tmp_path_factory, data16) -> tuple[Path, Path]:
    """(an MMAR with a search space, the folder of a run that trained it to the end)."""
    root = tmp_path_factory.mktemp("trained")
    mmar = make_mmar(root / "spleen_mmar", data16)
    proc = clara_train("--mmar", mmar, "epochs=1", f"hydra.run.dir={root / 'run'}", cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return mmar, root / "run"


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("force", [False, True])
def test_export_never_writes_over_the_mmar_the_run_trained_from(tmp_path, trained, force):
    mmar, run = trained
    before = _files(mmar)
    proc = run_cli("export", run, "-o", mmar, *(["--force"] if force else []), cwd=tmp_path)
    line = one_error(proc)
    assert f"error: {mmar}: this is the MMAR the run trained from" in line and "-o NEW_DIR" in line, line
    assert _files(mmar) == before


@pytest.mark.slow
def test_export_never_writes_over_a_search_space_even_with_force(tmp_path, trained):
    mmar, run = trained
    other = tmp_path / "my_other_mmar"
    (other / "config").mkdir(parents=True)
    shutil.copy(mmar / "config" / "config_train.json", other / "config" / "config_train.json")
    before = _files(other)
    line = one_error(run_cli("export", run, "-o", other, "--force", cwd=tmp_path))
    assert line.startswith(f"error: {other / 'config' / 'config_train.json'}: search: holds a search space"), line
    assert "give another folder: -o NEW_DIR" in line, line
    assert _files(other) == before


@pytest.mark.slow
def test_export_writes_over_an_earlier_export_with_force_and_a_finished_run_has_no_warning(tmp_path, trained):
    _, run = trained
    out = tmp_path / "exported"
    assert run_cli("export", run, "-o", out, cwd=tmp_path).returncode == 0
    line = one_error(run_cli("export", run, "-o", out, cwd=tmp_path))
    assert "not empty" in line and "--force" in line, line
    proc = run_cli("export", run, "-o", out, "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr, proc.stderr


@pytest.mark.slow
def test_an_export_that_fails_on_a_full_disk_leaves_nothing_and_an_earlier_export_as_it_was(tmp_path, trained):
    """The disk fills during the export (no file may grow past 20 kB: the checkpoint is larger):
    a new folder is not there afterwards, an earlier export written over with --force keeps its
    files, and no partial folder stays beside them."""
    _, run = trained
    new = tmp_path / "new" / "mmar"
    line = one_error(run_cli("export", run, "-o", new, cwd=tmp_path, file_limit=20000))
    assert line.startswith(f"error: {new}: cannot write there: File too large"), line
    assert list(tmp_path.iterdir()) == []
    earlier = tmp_path / "earlier"
    assert run_cli("export", run, "-o", earlier, cwd=tmp_path).returncode == 0
    before = _files(earlier)
    (earlier / "models" / "model.pt").write_bytes(b"an older checkpoint")
    before = _files(earlier)
    one_error(run_cli("export", run, "-o", earlier, "--force", cwd=tmp_path, file_limit=20000))
    assert _files(earlier) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["earlier"]


def _as_trial(run: Path, sweep: Path, number: int) -> Path:
    job = sweep / str(number)
    shutil.copytree(run, job)
    return job


def _rows(sweep: Path, rows: list[dict]) -> None:
    with open(sweep / "trials.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["number", "state", "value", "duration_s", "reason", "job_dir"])
        w.writeheader()
        w.writerows(rows)


RECORDS = [  # (id, what records the run's end, its state, its reason, the words of the warning)
    ("trials-csv-fail", "csv", "fail", "the loss is nan at epoch 2",
     "trial 3 failed (SWEEP/trials.csv: fail): the loss is nan at epoch 2"),
    ("trials-csv-running", "csv", "running", "interrupted: the sweep stopped while this trial ran",
     "trial 3 did not finish (SWEEP/trials.csv: running): interrupted: the sweep stopped while this trial ran"),
    ("trials-csv-pruned", "csv", "pruned", "pruned at epoch 1: val_mean_dice = 0.1",
     "trial 3 was pruned (SWEEP/trials.csv: pruned): pruned at epoch 1"),
    ("worker-outcome-fail", "outcome", "fail", "stopped at the trial time limit",
     "trial 3 failed (clara_trial_result.json: fail): stopped at the trial time limit"),
    ("train-log-error", "log", "", "error: cfg.json: train.loss: the loss is nan at epoch 2, iteration 1",
     "the run failed (train.log): error: cfg.json: train.loss: the loss is nan at epoch 2"),
    ("no-outcome", "cut-log", "", "",
     "the run did not finish (interrupted, or still running): no outcome: its train.log has neither a result nor"),
]


@pytest.mark.slow
@pytest.mark.parametrize("rid,kind,state,reason,words", [pytest.param(*r, id=r[0]) for r in RECORDS])
def test_exporting_a_run_that_did_not_finish_says_so_and_what_its_checkpoint_is(tmp_path, trained, capsys, rid, kind,
                                                                                 state, reason, words):
    from clara_hydra.export import export
    _, run = trained
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    job = _as_trial(run, sweep, 3)
    if kind == "csv":
        _rows(sweep, [{"number": 3, "state": state, "reason": reason, "job_dir": str(job)}])
    elif kind == "outcome":
        _rows(sweep, [{"number": 3, "state": "running", "reason": "", "job_dir": str(job)}])
        (job / "clara_trial_result.json").write_text(json.dumps({"state": state, "reason": reason}))
    elif kind == "log":
        with open(job / "train.log", "a") as fh:
            fh.write(f"[2026-01-01 00:00:00][ERROR] {reason}\n")
    else:  # the log of a run killed before its result line
        lines = (job / "train.log").read_text().splitlines()
        (job / "train.log").write_text("\n".join(ln for ln in lines if "what this run returns" not in ln) + "\n")
    export(str(job), str(tmp_path / "out"))
    err = capsys.readouterr().err
    warning = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert len(warning) == 1, err
    assert words.replace("SWEEP", os.path.relpath(sweep)) in warning[0], warning
    ckpt = next((job / "models").glob("*key_metric=*.pt")).name
    assert f"models/model.pt is models/{ckpt}, the best checkpoint it saved before it stopped" in warning[0], warning
