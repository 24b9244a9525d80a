"""An MMAR in its own folder, as a Clara user keeps one: config/config_train.json, its own
environment.json, BYOC code in custom/, converted into conf/, trained and swept with the
installed `clara-hydra train` and with `python <clone>/train.py --config-dir`, from folders
outside the clone. Every failure a user can cause is one line; nothing is silently wrong."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, clara_cli, convert_here, one_error, run_cli

pytestmark = pytest.mark.slow

BYOC = '''from monai.transforms import RandFlipd


class MyFlip(RandFlipd):
    """A user's own transform (BYOC), found in the MMAR's custom/ folder."""
'''


def make_mmar(root: Path, data_env: dict, *, drop_search: bool = False, env_keys: dict | None = None) -> Path:
    """An MMAR from examples/demo_v41.json: small crops, 2 epochs, a BYOC transform in custom/."""
    cfg = json.loads((ROOT / "examples" / "demo_v41.json").read_text())
    cfg["epochs"] = 2
    flip = cfg["train"]["pre_transforms"][4]
    cfg["train"]["pre_transforms"][4] = {"path": "myflip.MyFlip", "args": flip["args"], "search": flip["search"]}
    for t in cfg["train"]["pre_transforms"]:
        if t.get("name") == "RandCropByPosNegLabeld":
            t["args"]["spatial_size"] = [16, 16, 16]
    cfg["validate"]["inferer"]["args"]["roi_size"] = [16, 16, 16]
    if drop_search:
        cfg["train"]["model"].pop("search")
    (root / "config").mkdir(parents=True)
    (root / "custom").mkdir()
    (root / "custom" / "myflip.py").write_text(BYOC)
    (root / "config" / "config_train.json").write_text(json.dumps(cfg, indent=1))
    env = env_keys if env_keys is not None else dict(data_env, MMAR_CKPT_DIR="models", MMAR_CKPT="models/model.pt")
    (root / "config" / "environment.json").write_text(json.dumps(env))
    convert_here(root / "config" / "config_train.json", root / "conf")
    return root


def synth_data(out: Path, train: int, val: int) -> dict:
    """32^3 synthetic volumes (clara-hydra synth-data): their DATA_ROOT and DATASET_JSON."""
    proc = run_cli("synth-data", out, "--shape", "32", "32", "32", "--train", str(train), "--val", str(val))
    assert proc.returncode == 0, proc.stderr
    env = json.loads((out / "environment.json").read_text())
    return {"DATA_ROOT": env["DATA_ROOT"], "DATASET_JSON": env["DATASET_JSON"]}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    return synth_data(tmp_path_factory.mktemp("data"), train=2, val=1)


@pytest.fixture
def mmar(tmp_path, data) -> Path:
    return make_mmar(tmp_path / "spleen_mmar", data)


def clara_train(*args, cwd: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    cwd.mkdir(parents=True, exist_ok=True)
    return run_cli("train", *args, cwd=cwd, timeout=timeout, env=env)


def logged_best(train_log: Path, metric: str = "val_mean_dice") -> float:
    """The best validation value the run itself logged, epoch by epoch."""
    values = [float(m.group(1)) for m in re.finditer(rf"{metric} ([0-9.]+)", train_log.read_text())]
    assert values, train_log.read_text()
    return max(values)


def trials(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "trials.csv") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- one run

def test_python_train_py_with_config_dir_from_the_mmar(tmp_path, mmar):
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config-dir", "conf", "--config-name",
                           "config_train", f"hydra.run.dir={run_dir}", "epochs=1"], cwd=mmar, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "myflip.MyFlip" in (run_dir / "bundle_config.json").read_text()


def test_synthetic_data_lists_training_validation_and_test(data):
    """``synth-data`` writes the lists Clara's scripts read: training and validation (image and
    label), and test (images: ``clara-hydra infer``'s default list)."""
    lists = json.loads(Path(data["DATASET_JSON"]).read_text())
    assert (len(lists["training"]), len(lists["validation"])) == (2, 1)
    assert lists["test"] == [{"image": item["image"]} for item in lists["validation"]]
    assert all((Path(data["DATA_ROOT"]) / item["image"]).is_file() for item in lists["test"])


def test_train_leaves_the_mmar_ready_to_validate_and_infer_as_clara_did(tmp_path, data):
    """Clara's train.sh wrote models/model.pt into the MMAR, so validate.sh and infer.sh worked right
    after it: ``train --mmar`` leaves the run's best checkpoint as the MMAR's MMAR_CKPT and the
    network as TorchScript beside it, and keeps a model that was there."""
    mmar = make_mmar(tmp_path / "mmar", data)
    models = mmar / "models"
    models.mkdir()
    (models / "model.pt").write_bytes(b"an earlier model")
    elsewhere = tmp_path / "elsewhere"
    proc = clara_train("--mmar", mmar, f"hydra.run.dir={tmp_path / 'run'}", cwd=elsewhere)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said[-3000:]
    assert (f"the MMAR is ready to validate and infer (clara-hydra validate --mmar {mmar}): {models / 'model.pt'}, "
            f"{models / 'model.ts'}; the earlier model kept as model.pt.prev") in said, said[-2000:]
    assert (models / "model.pt.prev").read_bytes() == b"an earlier model" and (models / "model.ts").is_file()
    best = float(re.search(r"key metric = ([\d.]+)", said).group(1))
    validated = run_cli("validate", "--mmar", mmar, cwd=elsewhere)
    assert validated.returncode == 0, validated.stderr[-3000:]
    assert f"val_mean_dice = {best:.4f}" in validated.stdout + validated.stderr  # the checkpoint of the best epoch
    inferred = run_cli("infer", "--mmar", mmar, cwd=elsewhere)  # (synth-data's test list)
    assert inferred.returncode == 0 and "inferred 1 case(s) of the 'test' list" in inferred.stdout + inferred.stderr
    # Clara's export.sh: the MMAR's model.pt as model.ts again (the earlier one kept)
    scripted = (models / "model.ts").read_bytes()
    exported = run_cli("export", "--mmar", mmar, cwd=elsewhere)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert f"{models / 'model.ts'}: the network of {models / 'model.pt'} as TorchScript (the earlier one kept as " \
           f"model.ts.prev)" in exported.stdout + exported.stderr
    assert (models / "model.ts.prev").read_bytes() == scripted and (models / "model.ts").stat().st_size > 1000
    (models / "model.pt").unlink()
    line = one_error(run_cli("export", "--mmar", mmar, cwd=elsewhere))
    assert f"MMAR_CKPT: the checkpoint to export is not there: {models / 'model.pt'}" in line, line
    line = one_error(run_cli("validate", "--mmar", mmar, f"hydra.run.dir={tmp_path / 'v'}", cwd=elsewhere))
    assert "the checkpoint to validate is not there" in line and line in (tmp_path / "v" / "train.log").read_text()


def test_an_undefined_datalist_is_an_error_not_synthetic_data(tmp_path, data):
    mmar = make_mmar(tmp_path / "m", data, env_keys={"MY_DATA_ROOT": data["DATA_ROOT"]})
    proc = clara_train("--mmar", mmar, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    line = one_error(proc)
    assert "train.dataset" in line and "DATASET_JSON" in line, line
    assert "synthetic" not in (proc.stdout + proc.stderr).lower()


def test_a_missing_conf_folder_says_how_to_convert(tmp_path):
    (tmp_path / "m" / "config").mkdir(parents=True)
    line = one_error(clara_train("--mmar", tmp_path / "m", cwd=tmp_path))
    assert "clara-hydra convert" in line and "conf" in line


def test_help_shows_the_search_space_and_no_missing_values(tmp_path, mmar):
    proc = clara_train("--mmar", mmar, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "== Search space: 7 parameter(s)" in proc.stdout
    assert "flipProb: interval(0.0, 1.0)" in proc.stdout and "sets train.pre_transforms[4].args.prob" in proc.stdout
    assert "???" not in proc.stdout
    assert re.search(r"\n  - (name|path): myflip\.MyFlip  # train\.pre_transforms\.4\n", proc.stdout), proc.stdout
    v3 = subprocess.run([sys.executable, str(ROOT / "train.py"), "--cfg", "job"], capture_output=True, text=True,
                        cwd=tmp_path, timeout=120)
    assert v3.returncode == 0 and "???" not in v3.stdout and "use_amp: false" in v3.stdout


def test_cfg_job_writes_each_list_components_place_beside_it(tmp_path, mmar):
    """So that ``train.pre_transforms.9.args.x=...`` is written without counting: every component
    of a list shows its override path, which leads to that very component."""
    proc = clara_train("--mmar", mmar, "--cfg", "job", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load(proc.stdout)  # still YAML, the same config
    shown = re.findall(r"^ *- ([\w.]+): (.*?)  # ([\w.]+)$", proc.stdout, flags=re.M)
    assert len([s for s in shown if s[2].startswith("train.pre_transforms.")]) == len(doc["train"]["pre_transforms"])
    for key, value, path in shown:
        node = doc
        for part in path.split("."):
            node = node[int(part)] if isinstance(node, list) else node[part]
        assert str(node[key]) == value or value == "", (path, key, value)


@pytest.mark.parametrize("mmar_arg", ["--mmar {m}", "--mmar={m}"])
def test_shell_completion_outside_the_clone(tmp_path, mmar, mmar_arg):
    line = f"clara-hydra train {mmar_arg.format(m=mmar)} "
    env = dict(os.environ, COMP_LINE=line + "epo", COMP_POINT="0")
    proc = subprocess.run(clara_cli() + ["-sc", "query=bash"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "epochs=" in proc.stdout.split()
    env["COMP_LINE"] = line + "tr"  # the config's sections, not this package's folders
    proc = subprocess.run(clara_cli() + ["-sc", "query=bash"], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120)
    assert "train." in proc.stdout.split() and "train" not in proc.stdout.split()


def test_an_unwritable_run_folder_is_one_line(tmp_path, mmar):
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_error(clara_train("--mmar", mmar, f"hydra.run.dir={blocker / 'run'}", cwd=tmp_path))
    assert str(blocker) in line and "hydra.run.dir" in line


def test_a_nan_loss_is_one_line_without_engine_tracebacks(tmp_path, mmar, data):
    import nibabel as nib
    import numpy as np
    bad = tmp_path / "nan"
    assert run_cli("synth-data", bad, "--shape", "32", "32", "32").returncode == 0
    for img in (bad / "imagesTr").glob("*.nii.gz"):
        vol = nib.load(img)
        nib.save(nib.Nifti1Image(np.full(vol.shape, np.nan, dtype=np.float32), vol.affine), img)
    proc = clara_train("--mmar", mmar, f"DATASET_JSON={bad / 'dataset.json'}", f"DATA_ROOT={bad}",
                       f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    line = one_error(proc)
    assert "train.loss: the loss is nan at epoch 1" in line
    assert "terminating due to exception" not in proc.stdout + proc.stderr
    assert "the loss is nan" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.parametrize("override,wanted", [
    pytest.param("train.model.args.strides=[2]", "train.model: cannot build UNet", id="model-arg"),
    pytest.param("learning_rate=-1", "train.optimizer: cannot build", id="negative-lr"),
])
def test_build_errors_name_the_component(tmp_path, mmar, override, wanted):
    assert wanted in one_error(clara_train("--mmar", mmar, override, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path))


@pytest.mark.parametrize("override,wanted", [
    pytest.param("train.model.args.init_filters=abc", "train.model.args.init_filters: SegResnet (v3)'s "
                 "'init_filters' takes an integer, got abc", id="typed-while-composing"),
    pytest.param("train.model.args.blocks_down=abc", "train.model: cannot map this v3 component",
                 id="a-string-the-v3-mapping-cannot-read"),
])
def test_v3_arg_type_error_is_one_located_line(tmp_path, override, wanted):
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), override, f"hydra.run.dir={tmp_path / 'r'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert wanted in one_error(proc)


# ----------------------------------------------------------------------------- sweeps

def test_sweep_with_gpu_workers_syntax_from_an_mmar(tmp_path, mmar):
    """workers=0:0 (CPU workers here) with --config-dir: every worker finds the config and the
    BYOC code; each trial's value is the best validation value its own log shows."""
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "hydra.sweeper.n_trials=2", "hydra.sweeper.workers=0:0",
                       "hydra.sweeper.pruner=none", "hydra.sweeper.export_best=false", f"hydra.sweep.dir={sweep_dir}",
                       cwd=tmp_path / "work")
    assert not (sweep_dir / "best_mmar").exists()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = trials(sweep_dir)
    assert [r["state"] for r in rows] == ["complete", "complete"], rows
    for r in rows:
        assert float(r["value"]) == pytest.approx(logged_best(Path(r["job_dir"]) / "train.log"), abs=1e-4)
    assert "CLARA_HYDRA" not in proc.stdout  # no internal plumbing on the launch lines
    for r in rows:  # each trial's epochs in the sweep's console, not only in its worker.log
        assert re.search(rf"trial #{r['number']}: epoch 2/2, loss [\d.]+, ", proc.stdout + proc.stderr), proc.stderr


def test_a_workers_sweep_shows_each_epoch_while_its_trial_trains(tmp_path, mmar):
    """A worker's trial trains in its own process and log; its epoch lines reach the sweep's
    console as it goes: the trial holds after epoch 1 (a fault point) until the sweep has said
    that epoch, so the line cannot be one read at the trial's end."""
    gate = tmp_path / "epoch1.said"
    cmd = clara_cli() + ["train", "--mmar", str(mmar), "-m", "hydra.sweeper.n_trials=1", "hydra.sweeper.workers=1",
                         "hydra.sweeper.pruner=none", "hydra.sweeper.export_best=false",
                         f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=dict(os.environ, CLARA_HYDRA_FAULT=f"epoch_end@1:wait={gate}"))
    seen: list[str] = []
    try:
        def read() -> None:
            for line in proc.stdout:
                seen.append(line)
                if re.search(r"trial #0: epoch 1/2, loss [\d.]+, ", line):
                    gate.touch()  # said while the trial waits after its first epoch: it may go on
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout=300)  # (it ends with the sweep; a sweep still running after 300 s never said it)
        assert gate.exists() and proc.wait(timeout=60) == 0, "".join(seen)[-3000:]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert re.search(r"trial #0: epoch 2/2, loss", "".join(seen))


#: A Clara 4.1 config_validation.json for the test MMAR (the form of the corpus's
#: cte-pt41-gettingstarted one): the TorchScript model unless told otherwise, MetricsSaver
#: reports in {MMAR_EVAL_OUTPUT_PATH}.
VALIDATION_V41 = {
    "dont_load_ts_model": False, "dont_load_ckpt_model": True, "amp": True,
    "model": [{"ts_path": "{MMAR_TORCHSCRIPT}", "disabled": "{dont_load_ts_model}"},
              {"ckpt_path": "{MMAR_CKPT}", "disabled": "{dont_load_ckpt_model}"}],
    "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                       {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
                       {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164,
                                                                  "b_min": 0.0, "b_max": 1.0, "clip": True}},
                       {"name": "ToTensord", "args": {"keys": ["image", "label"]}}],
    "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "validation", "args": {"transform": "@pre_transforms"}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 1, "shuffle": False}},
    "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [16, 16, 16], "sw_batch_size": 4}},
    "handlers": [{"name": "CheckpointLoader", "disabled": "{dont_load_ckpt_model}",
                  "args": {"load_path": "{MMAR_CKPT}", "load_dict": {"model": "@model"}}},
                 {"name": "MetricsSaver", "args": {
                     "save_dir": "{MMAR_EVAL_OUTPUT_PATH}", "metrics": ["val_mean_dice"],
                     "metric_details": ["val_mean_dice"], "summary_ops": "*",
                     "batch_transform": "#monai.handlers.from_engine(['image_meta_dict'])"}}],
    "post_transforms": [{"name": "Activationsd", "args": {"keys": "pred", "softmax": True}},
                        {"name": "Invertd", "args": {"keys": ["pred"], "transform": "@pre_transforms",
                                                     "orig_keys": "image", "nearest_interp": False,
                                                     "to_tensor": True, "device": "cuda"}},
                        {"name": "AsDiscreted", "args": {"keys": ["pred", "label"], "argmax": [True, False],
                                                         "to_onehot": 2}}],
    "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice", "args": {
        "include_background": False, "output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}},
    "evaluator": {"name": "SupervisedEvaluator", "args": {
        "device": "cuda", "val_data_loader": "@dataloader", "network": "@model", "inferer": "@inferer",
        "postprocessing": "@post_transforms", "key_val_metric": "@key_metric", "val_handlers": "@handlers",
        "amp": "{amp}"}},
}


def test_the_best_trial_is_an_mmar_that_validates_infers_and_finetunes_where_it_is_moved(tmp_path, mmar, data):
    """The MMAR's lifecycle from folders outside the clone. A sweep (the MMAR's custom code in every
    trial) returns what each trial logged; finetune.sh takes environment.json's relative MMAR_CKPT
    as the MMAR's models/model.pt wherever it starts. At the end the best trial is a
    complete MMAR (clara-hydra export): its config has the best values in and no search blocks, its
    network is TorchScript too. Moved to another folder, validate.sh (its config_validation.json on
    model.ts; per-case rows), infer.sh (a datalist list without labels, predictions on the input's
    grid) and finetune.sh (from its model.pt) run on it as it is."""
    (mmar / "config" / "config_validation.json").write_text(json.dumps(VALIDATION_V41, indent=1))
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "hydra.sweeper.n_trials=2", "hydra.sweeper.pruner=none",
                       f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path / "work")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = trials(sweep_dir)
    assert len(rows) == 2 and all(r["state"] == "complete" for r in rows)
    for r in rows:  # the value a run returns is the best validation value it logged (not a constant)
        assert float(r["value"]) == pytest.approx(logged_best(Path(r["job_dir"]) / "train.log"), abs=1e-4)
    assert "++hydra.job.env_set" not in proc.stdout and "hydra.sweep.subdir" not in proc.stdout
    # quiet: no engine chatter, no library warnings the user cannot act on
    assert "Engine run" not in proc.stdout and "UserWarning" not in proc.stderr and "Warning:" not in proc.stderr
    assert f"the best trial as an MMAR: {sweep_dir / 'best_mmar'}" in proc.stdout
    best = max(rows, key=lambda r: float(r["value"]))
    best_dir = Path(best["job_dir"])
    bundle = json.loads((best_dir / "bundle_config.json").read_text())
    assert bundle["train"]["pre_transforms"]["transforms"][4]["_target_"] == "myflip.MyFlip"
    log = (best_dir / "train.log").read_text()
    assert "\r" not in log and "clara-hydra: epoch 2/2" in log

    moved = tmp_path / "elsewhere" / "spleen_best"
    shutil.move(sweep_dir / "best_mmar", moved)
    config = json.loads((moved / "config" / "config_train.json").read_text())
    assert '"search"' not in json.dumps(config) and config["learning_rate"] == pytest.approx(
        float(best["learning_rate"]))
    assert config["train"]["optimizer"][0]["args"]["lr"] == "{learning_rate}"  # as the user wrote it
    assert config["train"]["pre_transforms"][4]["path"] == "myflip.MyFlip"
    assert (moved / "models" / "model.ts").is_file() and (moved / "custom" / "myflip.py").is_file()

    proc = run_cli("validate", "--mmar", moved, f"hydra.run.dir={tmp_path / 'val2'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"validating with {moved / 'models' / 'model.ts'}" in proc.stdout
    with open(moved / "eval" / "metrics.csv") as fh:
        (name, value), = csv.reader(fh)
    assert name == "val_mean_dice" and float(value) == pytest.approx(float(best["value"]), abs=1e-4)
    with open(moved / "eval" / "val_mean_dice_raw.csv") as fh:
        cases = list(csv.DictReader(fh))
    datalist = json.loads(Path(data["DATASET_JSON"]).read_text())
    assert [Path(c["filename"]).name for c in cases] == [Path(v["image"]).name for v in datalist["validation"]]

    # KiTS's layout: every case is case_N/imaging.nii.gz, one name in many folders
    kits = []
    for i, item in enumerate(datalist["training"] + datalist["validation"]):
        case = tmp_path / "kits" / f"case_{i}" / "imaging.nii.gz"
        case.parent.mkdir(parents=True)
        shutil.copyfile(Path(data["DATA_ROOT"]) / item["image"], case)
        kits.append((case, Path(data["DATA_ROOT"]) / item["image"]))
    unlabelled = tmp_path / "to_infer.json"
    unlabelled.write_text(json.dumps({"test": [str(case) for case, _ in kits]}))
    proc = run_cli("infer", "--mmar", moved, f"DATASET_JSON={unlabelled}", f"MMAR_EVAL_OUTPUT_PATH={tmp_path / 'pred'}",
                   f"hydra.run.dir={tmp_path / 'inf'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"inferred {len(kits)} case(s)" in proc.stdout + proc.stderr
    import nibabel as nib
    import numpy as np
    assert len(list((tmp_path / "pred").rglob("*.nii.gz"))) == len(kits)  # every case its own output
    for case, source_file in kits:
        source = nib.load(source_file)
        got = nib.load(tmp_path / "pred" / case.parent.name / "imaging_seg.nii.gz")
        assert got.shape[:3] == source.shape[:3] and np.allclose(got.affine, source.affine)
        assert set(np.unique(np.asarray(got.dataobj))) <= {0, 1}

    proc = clara_train("--mmar", moved, "dont_load_ckpt_model=false", "epochs=1",
                       f"hydra.run.dir={tmp_path / 'finetune'}", cwd=tmp_path / "other")
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundle = json.loads((tmp_path / "finetune" / "bundle_config.json").read_text())
    assert bundle["train"]["handlers"][0]["load_path"] == str(moved / "models" / "model.pt")
    assert "finished 1 epoch(s)" in proc.stderr + proc.stdout
    assert f"train.handlers[0]: finetuning: training starts from the weights of {moved / 'models' / 'model.pt'}" \
        in proc.stderr + proc.stdout


@pytest.mark.parametrize("workers,n", [pytest.param([], 2, id="in-process"),
                                       pytest.param(["hydra.sweeper.workers=1"], 1, id="worker-process")])
def test_a_sweep_in_which_every_trial_failed_exits_non_zero(tmp_path, mmar, workers, n):
    """The failure reasons come through the real train.py (in-process, and through a worker's
    outcome file)."""
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", f"hydra.sweeper.n_trials={n}", "DATASET_JSON=/nonexistent/dataset.json",
                       f"hydra.sweep.dir={sweep_dir}", *workers, cwd=tmp_path)
    line = one_error(proc, code=1)
    assert f"no trial completed: {n} ran, {n} failed" in line
    rows = trials(sweep_dir)
    assert [r["state"] for r in rows] == ["fail"] * n
    assert all("datalist file not found: /nonexistent/dataset.json" in r["reason"] for r in rows), rows


def test_a_trial_whose_worker_is_killed_resumes_from_its_last_epoch(tmp_path, mmar):
    """kill -9 of the worker process after epoch 1 (a fault point, not a timing guess): the sweep
    resumes the trial from its resume point, under the same number, as after a killed sweep."""
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "epochs=2", "hydra.sweeper.n_trials=1", "hydra.sweeper.workers=1",
                       "hydra.sweeper.pruner=none", f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path,
                       env={"CLARA_HYDRA_FAULT": "epoch_end@1:kill"})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "trial #0: its worker was killed by SIGKILL" in proc.stdout and "after epoch 1: resuming it" in proc.stdout
    (row,) = trials(sweep_dir)
    assert row["state"] == "complete" and row["reason"] == "", row
    log = (sweep_dir / "0" / "worker.log").read_text()
    assert "resuming after epoch 1/2" in log and "epoch 2/2, loss" in log
    assert float(row["value"]) == pytest.approx(logged_best(sweep_dir / "0" / "train.log"), abs=1e-4)


def test_pruning_through_train_py(tmp_path, mmar):
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "hydra.sweeper.n_trials=2", f"hydra.sweep.dir={sweep_dir}",
                       "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 2.0}",
                       cwd=tmp_path)
    assert "no trial completed: 2 ran, 0 failed, 2 pruned" in one_error(proc, code=1)
    assert [r["state"] for r in trials(sweep_dir)] == ["pruned", "pruned"]
    assert "Exception:" not in proc.stdout + proc.stderr  # no engine traceback in the second trial either


def test_a_trial_is_never_pruned_at_its_last_validation(tmp_path, mmar):
    """One-epoch trials: their only validation gives the final value, whatever the pruner says."""
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "epochs=1", "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={sweep_dir}",
                       "hydra.sweeper.pruner={_target_: optuna.pruners.ThresholdPruner, lower: 2.0}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [r["state"] for r in trials(sweep_dir)] == ["complete"]


def test_a_trial_past_its_time_limit_stops_where_it_trains(tmp_path, mmar):
    """In-process trials (and SLURM jobs) stop themselves at trial_timeout, with the reason."""
    sweep_dir = tmp_path / "sweep"
    proc = clara_train("--mmar", mmar, "-m", "hydra.sweeper.n_trials=1", "hydra.sweeper.trial_timeout=0.001",
                       f"hydra.sweep.dir={sweep_dir}", cwd=tmp_path)
    assert "no trial completed: 1 ran, 1 failed" in one_error(proc, code=1)
    (row,) = trials(sweep_dir)
    assert row["state"] == "fail" and "stopped at the trial time limit (trial_timeout=0.001s)" in row["reason"]


def test_each_mmar_gets_its_own_study_and_never_joins_another_space(tmp_path, data):
    first = make_mmar(tmp_path / "a", data)
    second = make_mmar(tmp_path / "b", data, drop_search=True)
    work = tmp_path / "work"
    for mmar in (first, second):  # by default: one study per MMAR, in one storage
        proc = clara_train("--mmar", mmar, "-m", "hydra.sweeper.n_trials=0", cwd=work)
        assert proc.returncode == 0, proc.stderr
        assert f"study '{mmar.name}-config_train'" in proc.stdout
    # naming the first MMAR's study for the second search space is refused in one line
    line = one_error(clara_train("--mmar", second, "-m", "hydra.sweeper.n_trials=0",
                                 "hydra.sweeper.study_name=a-config_train", cwd=work))
    assert "holds trials of another search space" in line and "UNet_channels" in line
    assert "hydra.sweeper.study_name=" in line


def test_a_sweeper_option_is_checked_in_one_line_from_an_mmar(tmp_path, mmar):
    """As clara-hydra train -m from an MMAR meets it (the options' table: test_sweeper)."""
    proc = clara_train("--mmar", mmar, "-m", "learning_rate=interval(1,0)", cwd=tmp_path)
    assert "hydra.sweeper.params: a sweep parameter cannot be made" in one_error(proc)
    assert not list(tmp_path.glob("multirun/*/*/0"))  # nothing ran


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_corrupt_storage_is_one_line_at_once(tmp_path, mmar, kind):
    bad = tmp_path / ("bad.db" if kind == "sqlite" else "bad.log")
    bad.write_text("this is not a database\n")
    spec = f"sqlite:///{bad}" if kind == "sqlite" else f"journal:{bad}"
    start = time.time()
    line = one_error(clara_train("--mmar", mmar, "-m", f"hydra.sweeper.storage={spec}", cwd=tmp_path))
    assert str(bad) in line and "cannot" in line
    assert time.time() - start < 30


def test_a_locked_storage_says_what_it_waits_for(tmp_path, mmar):
    import optuna
    db = tmp_path / "locked.db"
    optuna.storages.RDBStorage(f"sqlite:///{db}")  # an Optuna storage (another program's database is refused)
    holder = sqlite3.connect(db)
    holder.execute("BEGIN EXCLUSIVE")
    proc = subprocess.Popen(clara_cli() + ["train", "--mmar", str(mmar), "-m", "hydra.sweeper.n_trials=0",
                             f"hydra.sweeper.storage=sqlite:///{db}"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "locked by another process" in line:
                break
        assert any("waiting for" in s and "locked by another process" in s for s in seen), seen
    finally:
        holder.rollback()
        holder.close()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(seen) + out


def test_a_trial_killed_mid_training_resumes_from_its_last_epoch_when_the_sweep_runs_again(tmp_path, mmar):
    """SIGTERM (Ctrl-C, a preemption) while trial #0 trains: it stays, marked resumable, with the
    point its last whole epoch saved. The same command again continues it, not a new trial: the
    same number and params, in its own folder, from the next epoch, each epoch trained once; it
    completes with the best value its log shows over both runs, and the resume point is gone."""
    import optuna
    db = tmp_path / "s.db"
    sweep_dir = tmp_path / "sweep"
    command = ["train", "--mmar", str(mmar), "-m", "hydra.sweeper.n_trials=1", "epochs=4",
               "hydra.sweeper.pruner=none", f"hydra.sweeper.storage=sqlite:///{db}", f"hydra.sweep.dir={sweep_dir}"]
    reached = tmp_path / "epoch1.reached"  # the trial holds after epoch 1 (a fault point) until it is stopped
    proc = subprocess.Popen(clara_cli() + command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, CLARA_HYDRA_FAULT=f"epoch_end@1:touch={reached},"
                                                                              f"wait={tmp_path / 'never'}"))
    log = sweep_dir / "0" / "train.log"
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not reached.exists() and proc.poll() is None:
            time.sleep(0.1)
        assert reached.exists(), "the trial never finished its first epoch"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-2000:]
    study = optuna.load_study(study_name="spleen_mmar-config_train", storage=f"sqlite:///{db}")
    (t,) = study.get_trials(deepcopy=False)
    assert t.state == optuna.trial.TrialState.RUNNING, t.user_attrs
    assert t.user_attrs["clara_reason"].startswith("interrupted: resumes")
    after = t.user_attrs["clara_resumable"]
    assert after == 1, t.user_attrs
    assert (sweep_dir / "0" / "models" / "resume.ckpt").is_file()

    proc = run_cli(*command, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "1 interrupted one(s) to resume" in proc.stdout and "trial #0: resuming it in" in proc.stdout
    (done,) = optuna.load_study(study_name="spleen_mmar-config_train", storage=f"sqlite:///{db}").get_trials()
    assert done.number == 0 and done.state == optuna.trial.TrialState.COMPLETE and done.params == t.params
    text = log.read_text()
    assert f"resuming after epoch {after}/4" in text, text[-3000:]
    resumed = text[text.index("resuming after epoch"):]
    epochs = re.findall(r"epoch (\d)/4", resumed)
    assert [int(e) for e in epochs if int(e) > after] == list(range(after + 1, 5)), resumed
    assert not re.search(rf"clara-hydra: epoch {after}/4,", resumed)  # the epochs before it are not trained again
    assert done.value == pytest.approx(logged_best(log), abs=1e-4)
    assert not (sweep_dir / "0" / "models" / "resume.ckpt").exists()
