"""Training: the demo, a short sweep, every trainable corpus config one epoch on synthetic NIfTI
data (as written apart from epochs and the data paths), BYOC refusals, clear failures."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import CORPUS, ROOT, convert_here, run_cli, training_configs

from clara_hydra import tree as T

pytestmark = pytest.mark.slow

#: Corpus configs that cannot train on a synthetic NIfTI segmentation set, and why.
NOT_TRAINABLE = {
    "cte-pt-digitalpathology/config_train_smartcache.json": "whole-slide images (pathology)",
    "mdai-chexpert-tf/config_train.json": "2D PNG classification data",
    "warrentseng-colonoscopy/config_train.json": "2D PNG images",
    "nvflare-jsonscanner-test/test_json_extracted.json": "refused by convert (see test_errors)",
}
#: BYOC configs whose Python files the corpus lacks: refused, naming the missing module.
BYOC_MISSING = {
    "cte-pt41-gettingstarted/trn_BYOC_Arch_loss.json": "myLoss",
    "cte-pt41-gettingstarted/trn_BYOC_transform.json": "myTransformation",
    "cte-pt-deepgrow3d/config_train.json": "deepgrow",
    "cte-tf31-gettingstarted/trn_BYOC_Arch_loss.json": "myNetworkArch",
    "cte-tf31-gettingstarted/trn_BYOC_DataLoader.json": "myNpLoader",
    "cte-tf31-automl/trn_autoML_AMP.json": "CustomArch",
    "taiwancvai-heaortanet/config_train.json": "custom_models",
}


def _rel(p: Path) -> str:
    return f"{p.parent.name}/{p.name}"


TRAINABLE = [p for p in training_configs() if _rel(p) not in NOT_TRAINABLE and _rel(p) not in BYOC_MISSING]


def _components(config: Path) -> tuple:
    """What a config trains with: each component's class and whether it is disabled, by slot
    (search and apply blocks aside: they change values, which the resolve tests cover)."""
    data = json.loads(config.read_text())
    sections = {k: data[k] for k in ("train", "validate") if k in data}
    return tuple(sorted({(v.loc[:2], str(v.node.get("path") or v.node.get("name")).split("#")[0],
                          v.node.get("disabled") is True) for v in T.walk(sections) if v.kind == "component"}))


#: One config per set of components trains one epoch (the AutoML variants of one example differ
#: only in their search blocks); every other trainable config builds all its objects, data included.
_FIRST: dict[tuple, Path] = {}
for _p in TRAINABLE:
    _FIRST.setdefault(_components(_p), _p)
TRAINED = list(_FIRST.values())
BUILT = [p for p in TRAINABLE if p not in TRAINED]


def _spacing(config: Path) -> list[float]:
    """Voxel size of the synthetic data: the config's Spacingd pixdim, so crops fit after resampling."""
    text = config.read_text()
    m = re.search(r'"pixdim"\s*:\s*\[([^\]]+)\]', text)
    return [float(x) for x in m.group(1).split(",")] if m else [1.0, 1.0, 1.0]


@pytest.fixture(scope="module")
def synth_sets(tmp_path_factory):
    made: dict[tuple, Path] = {}

    def get(spacing: list[float]) -> Path:
        key = tuple(spacing)
        if key not in made:
            out = tmp_path_factory.mktemp("synth")
            # one training volume: every component still runs end to end, at about half the cost
            proc = run_cli("synth-data", out, "--train", "1", "--spacing", *map(str, spacing))
            assert proc.returncode == 0, proc.stderr
            made[key] = out
        return made[key]
    return get


def train(config_dir: Path, name: str, *overrides: str, cwd: Path, timeout: int = 600,
          env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), "--config-dir", str(config_dir),
                           "--config-name", name, *overrides], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=None if env is None else {**os.environ, **env})


def _convert(src: Path, out: Path) -> None:
    convert_here(src, out)


def _one_sample_batches(config: Path) -> list[str]:
    """Overrides that make each training batch one crop (the crop transform's batch_size or
    num_samples, the v3 pipeline's output_batch_size, the dataloader's batch_size): the same
    components train, at a fraction of the CPU time (96^3 crops x 12 took 30 s an epoch)."""
    train = json.loads(config.read_text()).get("train", {})
    out = []
    for i, comp in enumerate(train.get("pre_transforms") or []):
        args = comp.get("args") if isinstance(comp, dict) else None
        for key in ("batch_size", "num_samples"):
            if isinstance(args, dict) and isinstance(args.get(key), int) and args[key] > 1:
                out.append(f"train.pre_transforms.{i}.args.{key}=1")
    for slot, key in (("image_pipeline", "output_batch_size"), ("dataloader", "batch_size")):
        args = (train.get(slot) or {}).get("args") if isinstance(train.get(slot), dict) else None
        if isinstance(args, dict) and isinstance(args.get(key), int) and args[key] > 1:
            out.append(f"train.{slot}.args.{key}=1")
    return out


@pytest.fixture(scope="module")
def corpus_runs(request, tmp_path_factory, synth_sets):
    """The selected corpus configs, each converted and trained one epoch (``python train.py``), two
    at a time in one thread each: on the 2-core CI machine one run's start, data loading and Python
    work overlap the other's training. Gives config -> (folder, data overrides, the run)."""
    selected = [item.callspec.params["config"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_corpus_config_trains_one_epoch"]
    pool = ThreadPoolExecutor(max_workers=2)
    runs = {}
    for config in selected:
        data = synth_sets(_spacing(config))
        folder = tmp_path_factory.mktemp("corpus")
        _convert(config, folder / "conf")
        data_keys = [f"DATASET_JSON={data / 'dataset.json'}", f"DATA_ROOT={data}"]
        runs[config] = (folder, data_keys, pool.submit(
            train, folder / "conf", config.stem, "epochs=1", *data_keys, f"hydra.run.dir={folder / 'run'}",
            *_one_sample_batches(config), cwd=folder, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}))
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("config", TRAINED, ids=_rel)
def test_corpus_config_trains_one_epoch(monkeypatch, corpus_runs, config):
    tmp_path, data_keys, run = corpus_runs[config]
    proc = run.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"finished 1 epoch\(s\) in [\d.]+s[\s\S]*key metric = ([\d.]+)", proc.stdout)
    assert m, proc.stderr[-2000:]
    # the epoch's validation line, or the one validation at the end (a validation interval longer than the run)
    validated = re.search(r"(?:epoch 1/1, loss [\d.]+, |validation after epoch 1: )\S+ ([\d.]+)", proc.stdout)
    assert validated and float(m.group(1)) == pytest.approx(float(validated.group(1)), abs=1e-4), proc.stdout[-2000:]
    saved = json.loads((tmp_path / "run" / "config_train.json").read_text())
    assert saved["epochs"] == 1
    if _rel(config) in EXPORTED:
        _exports_as_a_bundle(tmp_path)
        configs = tmp_path / "bundle" / "configs"
        if _rel(config) in RUN_BY_MONAI:
            from test_bundle import runs_with_monai_alone
            runs_with_monai_alone(tmp_path / "bundle", tmp_path)
            configs = tmp_path / "moved" / "bundle" / "configs"
        misfit = isinstance(VALIDATES.get(_rel(config)), str)  # (its validation config does not fit its training)
        assert (configs / "evaluate.json").exists() == ((configs / "inference.json").exists() and not misfit)
    if (config.parent / "config_validation.json").is_file():
        monkeypatch.chdir(tmp_path)
        _validate_with_the_corpus_validation_config(tmp_path, config, data_keys)


#: Corpus runs exported as bundles here: each era and form once (v3 with and without a validation
#: config, one that does not fit its training; v4.0's implicit wiring; v4.1 with a validation
#: config, and an AutoML one), where the suite's time allows
EXPORTED = {"cte-tf31-automl/trn_autoML_Enum.json", "cte-tf31-gettingstarted/trn_base.json",
            "fzbuzz-spleen/config_train.json", "mdai-spleen-pt40/config_train.json",
            "mdai-spleen-pt41/config_train.json", "cte-pt41-automl/trn_autoML_Loss_Optimizer.json"}
#: Corpus runs whose bundle MONAI also runs alone here (a v3 config, through the v3 mapping the
#: training used; test_bundle runs a v4.1 MMAR's)
RUN_BY_MONAI = {"cte-tf31-automl/trn_autoML_Enum.json"}


def _exports_as_a_bundle(tmp_path: Path) -> None:
    """The run exports as a MONAI bundle (clara-hydra export --bundle; test_bundle runs such bundles
    with MONAI alone): nothing of clara-hydra in its configs, every class they name importable
    (or the MMAR's own, in scripts/), and MONAI's parser builds the network from train.json."""
    import pydoc

    from monai.bundle import ConfigParser

    from clara_hydra.bundle_export import export_bundle
    out = tmp_path / "bundle"
    export_bundle(str(tmp_path / "run"), str(out))
    for name in ("train.json", "inference.json", "evaluate.json"):
        if name != "train.json" and not (out / "configs" / name).exists():
            continue  # (a config that validates nothing infers nothing)
        text = (out / "configs" / name).read_text()
        assert "clara_hydra" not in text, name
        targets = set(re.findall(r'"_target_": "([^"]+)"', text))
        own = {p.stem for p in (out / "scripts").glob("*.py")}
        missing = [t for t in targets if pydoc.locate(t) is None and t.split(".")[0] not in own]
        assert not missing, (name, missing)
    parser = ConfigParser(json.loads((out / "configs" / "train.json").read_text()))
    network = parser.get_parsed_content("network_def")
    import torch
    assert isinstance(network, torch.nn.Module)
    state = torch.load(out / "models" / "model.pt", weights_only=True)
    network.load_state_dict(state)  # the weights are the network's


#: What each corpus config_validation.json gives on the checkpoint its MMAR's (trained) training
#: config wrote: its metrics and the files its writers (v3) or SaveImaged (v4.1) write; or the one
#: error line of a pair that does not fit (cte-tf31-gettingstarted's validation config has 3
#: classes, trn_base.json trains 2). cte-pt41-gettingstarted's (the v4.1 form of mdai's) is not run
#: here: its config_train_Unet.json only builds (its components are a trained config's); test_mmar
#: runs one of that form on an exported MMAR's TorchScript model.
VALIDATES = {
    "mdai-spleen-pt41/config_train.json": (["val_mean_dice", "val_acc"], ["case_001/case_001_trans.nii.gz"]),
    "fzbuzz-spleen/config_train.json": (["mean_dice"], ["case_001_model.nii.gz", "case_001_pred_class1.nii.gz"]),
    "cte-tf31-gettingstarted/trn_base.json": "validate.metrics[1]: the metric mean_dice_class2 is of class 2, but "
                                             "the network gives 2 classes",
}


def _validate_with_the_corpus_validation_config(tmp_path: Path, config: Path, data: list[str]) -> None:
    """Clara's validate.sh on the corpus's own config_validation.json (v3 and v4.1 forms; as written
    apart from a sliding window no larger than the 96^3 synthetic volume), with the checkpoint the
    training above wrote; a v4.1 config loads it (dont_load_ckpt_model=false) instead of its
    TorchScript file. In this process (the command itself: test_mmar), through what it runs."""
    from clara_hydra import evalconf
    from clara_hydra.effective import enabled_only
    from clara_hydra.errors import ClaraHydraError
    from clara_hydra.resolve import compose, effective_from_cfg, first_level_values
    from clara_hydra.train.evaluate import validate

    want = VALIDATES[_rel(config)]
    (ckpt,) = (tmp_path / "run" / "models").glob("*.pt")
    eval_dir = tmp_path / "eval"
    written = json.loads((config.parent / "config_validation.json").read_text())
    inferer = written.get("inferer", {}).get("args", {})
    if "roi_size" in inferer:
        inferer["roi_size"] = [min(int(x), 96) for x in inferer["roi_size"]]
    copy = tmp_path / "config_validation.json"
    copy.write_text(json.dumps(written))
    v41 = "dont_load_ts_model" in written
    keys = {"MMAR_CKPT": str(ckpt), "MMAR_EVAL_OUTPUT_PATH": str(eval_dir),
            **({"dont_load_ts_model": "true", "dont_load_ckpt_model": "false"} if v41 else {})}
    cfg = compose(str(tmp_path / "conf"), config.stem, [*data, *(f"++{k}={v}" for k, v in keys.items())])
    try:
        ev = evalconf.read(str(copy), first_level_values(cfg), frozenset(keys), enabled_only(effective_from_cfg(cfg)))
        validate(ev.tree, weights=ev.weights, out_dir=str(eval_dir), config_file=str(config),
                 run_dir=str(tmp_path), writers=ev.writers, progress=False)
    except ClaraHydraError as exc:
        assert isinstance(want, str) and want in exc.format(), exc.format()
        return
    assert not isinstance(want, str), f"no error, but: {want}"
    metrics, files = want
    with open(eval_dir / "metrics.csv") as fh:
        rows = {name: float(value) for name, value in csv.reader(fh)}
    assert sorted(rows) == sorted(metrics) and all(0 <= v <= 1 for v in rows.values()), rows
    assert (eval_dir / f"{metrics[0]}_raw.csv").read_text().count("case_001") == 1
    for name in files:
        assert (eval_dir / name).is_file(), sorted(p.name for p in eval_dir.rglob("*"))


@pytest.mark.parametrize("config", BUILT, ids=_rel)
def test_corpus_config_like_a_trained_one_builds_every_object(tmp_path, monkeypatch, synth_sets, config):
    monkeypatch.chdir(tmp_path)  # handlers write where the config says (often relative: models/)
    from clara_hydra.effective import enabled_only
    from clara_hydra.resolve import compose, effective_from_cfg
    from clara_hydra.train.run import _parsed, build

    data = synth_sets(_spacing(config))
    _convert(config, tmp_path / "conf")
    cfg = compose(str(tmp_path / "conf"), config.stem,
                  ["epochs=1", f"DATASET_JSON={data / 'dataset.json'}", f"DATA_ROOT={data}"])
    tree = enabled_only(effective_from_cfg(cfg))
    parser, _, _ = build(tree, config_file=str(config), device="cpu", amp=False)
    trainer = _parsed(parser, "train::trainer")
    assert trainer.state.max_epochs == 1 and len(trainer.data_loader) >= 1
    assert _parsed(parser, "validate::evaluator") is not None


def test_the_trained_configs_cover_every_component_set():
    assert {_components(p) for p in TRAINED} == {_components(p) for p in TRAINABLE}
    assert len(TRAINED) + len(BUILT) == len(TRAINABLE)


_BYOC = sorted(BYOC_MISSING.items())


@pytest.mark.parametrize("rel,module", [pytest.param(r, m, id=r) for r, m in _BYOC[:1]])
def test_byoc_without_its_code_is_refused(tmp_path, rel, module):
    """Through the real command, once; test_byoc_refusal_names_the_missing_module covers the others."""
    config = CORPUS / rel
    if not config.exists():
        pytest.skip("../shared/corpus is absent")
    _convert(config, tmp_path / "conf")
    proc = train(tmp_path / "conf", config.stem, "epochs=1", "DATASET_JSON=/nonexistent/dataset.json",
                 "DATA_ROOT=/nonexistent", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 2
    assert f"module '{module}' not found" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("rel,module", [pytest.param(r, m, id=r) for r, m in _BYOC[1:]])
def test_byoc_refusal_names_the_missing_module(tmp_path, monkeypatch, rel, module):
    """The same refusal, in-process (the build step train.py runs), for the other BYOC configs."""
    from clara_hydra.effective import enabled_only
    from clara_hydra.errors import BuildError
    from clara_hydra.resolve import compose, effective_from_cfg
    from clara_hydra.train.run import build

    config = CORPUS / rel
    if not config.exists():
        pytest.skip("../shared/corpus is absent")
    monkeypatch.chdir(tmp_path)
    _convert(config, tmp_path / "conf")
    cfg = compose(str(tmp_path / "conf"), config.stem,
                  ["epochs=1", "DATASET_JSON=/nonexistent/dataset.json", "DATA_ROOT=/nonexistent"])
    with pytest.raises(BuildError, match=f"module '{module}' not found"):
        build(enabled_only(effective_from_cfg(cfg)), config_file=str(config), device="cpu", amp=False)


@pytest.mark.parametrize("name", ["demo_v41"])  # demo (v3): test_demo_sweep_two_trials trains it
def test_demo_trains_with_builtin_data(tmp_path, name):
    proc = train(ROOT / "examples" / "conf", name, f"hydra.run.dir={tmp_path / 'run'}", "+channels_last_3d=true",
                 cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r"finished 2 epoch\(s\)[\s\S]*key metric = [\d.]+", proc.stdout)
    assert re.search(r"channels_last_3d: [1-9]\d* 3D convolution weight\(s\) in channels-last memory order \(it pays "
                     r"on CUDA under AMP; here on the CPU", proc.stdout + proc.stderr), proc.stdout[-2000:]
    run = tmp_path / "run"
    assert (run / "config_train.json").exists()
    assert list((run / "models").glob("*.pt")), "the best checkpoint is saved in the run folder"
    said = re.search(r"run folder: (\S+); checkpoint: (\S+); curves: tensorboard --logdir (\S+)", proc.stdout)
    assert said and Path(said.group(1)) == run and Path(said.group(2)).parent == run / "models", proc.stdout[-2000:]
    assert Path(said.group(2)).is_file() and Path(said.group(3)) == run / "tensorboard"
    if name == "demo_v41":
        assert list((run / "models").glob("events.out.tfevents.*")), "TensorBoard scalars"


def rows_of(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _demo_sweep(tmp_path: Path, name: str, trials: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", f"hydra.sweeper.n_trials={trials}",
                           f"hydra.sweep.dir={tmp_path / name}",
                           f"hydra.sweeper.storage=sqlite:///{tmp_path / name}.db",
                           "hydra.sweeper.study_name=demo"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)


def test_demo_sweep_two_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'sweep'}.db"
    proc = _demo_sweep(tmp_path, "sweep")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the demo repeats: a second sweep (its own study) gives its first trial the same values, the same score
    again = _demo_sweep(tmp_path, "again", trials=1)
    assert again.returncode == 0, again.stderr[-3000:]
    first, second = (rows_of(tmp_path / name / "trials.csv") for name in ("sweep", "again"))
    assert [(r["state"], r["value"], r["learning_rate"]) for r in first[:1]] == \
        [(r["state"], r["value"], r["learning_rate"]) for r in second]
    import yaml
    results = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    with open(tmp_path / "sweep" / "trials.csv") as fh:
        complete = [r for r in csv.DictReader(fh) if r["state"] == "complete"]
    best = max(complete, key=lambda r: float(r["value"]))  # the demo's key metric is a Dice: maximized
    assert results["best_value"] == pytest.approx(float(best["value"])) and results["best_trial"] == int(best["number"])
    logged = [float(v) for v in re.findall(r"mean_dice ([0-9.]+)", (Path(best["job_dir"]) / "train.log").read_text())]
    assert logged and results["best_value"] == pytest.approx(max(logged), abs=1e-4)  # the run's best validation
    assert "useNovoGrad_useAdam" in results["best_params"]
    trained = [d for d in (tmp_path / "sweep").iterdir() if d.name.isdigit() and list((d / "models").glob("*.pt"))]
    assert trained and all((d / "config_train.json").exists() for d in trained)  # the v3 demo trains and saves
    # what a user looks at: each trial's curves and its HParams in one TensorBoard run (its tensorboard/),
    # read back with TensorBoard's own reader; the study names its value (Optuna's dashboard and plots)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2
    for row in complete:
        d = Path(row["job_dir"])
        events = EventAccumulator(str(d / "tensorboard"))
        events.Reload()
        assert {"train/loss", "train/lr", "val/mean_dice"} <= set(events.Tags()["scalars"]), d
        steps = [e.step for e in events.Scalars("train/loss")]  # every iteration's loss, at its iteration
        assert len(steps) >= 2 and steps == list(range(1, len(steps) + 1)), steps
        assert events.Scalars("val/mean_dice")[-1].step == 2
        hparams = events.PluginTagToContent("hparams")
        experiment = plugin_data_pb2.HParamsPluginData.FromString(hparams["_hparams_/experiment"]).experiment
        assert [m.name.tag for m in experiment.metric_infos] == ["mean_dice"]
        assert {h.name for h in experiment.hparam_infos} == set(results["best_params"])
        assert events.Scalars("mean_dice")[-1].value == pytest.approx(float(row["value"]))
    import optuna
    study = optuna.load_study(study_name="demo", storage=storage)
    # the story as it goes: what is the same for every trial is said once; the launch lines show
    # the sampled numbers as the trial lines do (the jobs get them whole)
    said = proc.stdout + proc.stderr
    assert said.count("CUDA is not available") == 1 and said.count("v3 angle ranges are unknown") == 1
    launches = re.findall(r"#\d+ : .*", said)
    assert len(launches) == 2 and not re.search(r"=-?\d+\.\d{8,}", " ".join(launches)), launches
    assert "trials |" not in said and "\r" not in said and "Epoch [" not in said  # no bar where no terminal
    assert study.metric_names == ["mean_dice"] and study.user_attrs == {}  # (bookkeeping: system attributes)
    best = tmp_path / "sweep" / "best_mmar"  # exported: a v3 network scripts too
    assert (best / "models" / "model.ts").is_file() and (best / "conf" / "config_train.yaml").is_file()
    bundle = json.loads((tmp_path / "sweep" / "best_bundle" / "configs" / "metadata.json").read_text())  # and a bundle
    assert bundle["key_metric"]["value"] == pytest.approx(results["best_value"], abs=1e-4)
    assert {k: v for k, v in bundle["searched_values"].items() if k in results["best_params"]} == results["best_params"]


def test_alternatives_error_stops_training(tmp_path):
    proc = train(ROOT / "examples" / "conf", "demo_v41", "useNovograd=false", "useAdam=false",
                 f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert proc.returncode == 2
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")][0]
    assert "train.optimizer: exactly one of the 2 alternatives must be enabled, 2 are" in line
    assert "[0] Novograd disabled=false" in line and "[1] Adam disabled=false" in line
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("every, reads", [
    pytest.param(2, [[1, 2], [3, 4], [5]], id="every-2-iterations-and-the-epochs-end"),
    pytest.param(50, [[1, 2, 3, 4, 5]], id="at-the-epochs-end"),
])
def test_the_loss_is_read_off_the_device_in_batches(every, reads):
    """The NaN check keeps each iteration's loss where it was computed and reads them together:
    no host-device sync per iteration (on a GPU), the same values, in order."""
    import torch
    from ignite.engine import Engine

    from clara_hydra.train.loss import LossWatch
    engine = Engine(lambda _engine, batch: {"loss": torch.tensor(batch, requires_grad=True) * 2})
    watch = LossWatch(every).attach(engine)
    got: list = []
    watch.listeners.append(lambda pairs: got.append(pairs))
    engine.run([0.5, 1.0, 1.5, 2.0, 2.5], max_epochs=1)
    assert [[i for i, _ in pairs] for pairs in got] == reads
    assert [v for pairs in got for _, v in pairs] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert engine.state.clara_loss == 5.0


@pytest.mark.parametrize("every", [1, 4, 50])
def test_a_nan_loss_read_later_still_names_its_iteration(every):
    import torch
    from ignite.engine import Engine

    from clara_hydra.errors import TrainingError
    from clara_hydra.train.loss import LossWatch
    engine = Engine(lambda _engine, batch: {"loss": torch.tensor(batch)})
    LossWatch(every).attach(engine)
    with pytest.raises(TrainingError) as caught:
        engine.run([0.5, float("nan"), 1.0, float("inf"), 1.0, 1.0], max_epochs=1)
    assert caught.value.message == "the loss is nan at epoch 1, iteration 2"
    assert engine.state.iteration == min(every if every > 1 else 2, 6)  # (read at the batch it ended)


def test_nan_loss_ends_the_run_clearly(tmp_path):
    import nibabel as nib
    import numpy as np
    proc = run_cli("synth-data", tmp_path / "data", "--shape", "48", "48", "32")
    assert proc.returncode == 0
    for img in (tmp_path / "data" / "imagesTr").glob("*.nii.gz"):
        vol = nib.load(img)
        data = np.full(vol.shape, np.nan, dtype=np.float32)
        nib.save(nib.Nifti1Image(data, vol.affine), img)
    proc = train(ROOT / "examples" / "conf", "demo_v41", f"DATASET_JSON={tmp_path / 'data' / 'dataset.json'}",
                 f"DATA_ROOT={tmp_path / 'data'}", "d1_d2=false-true", f"hydra.run.dir={tmp_path / 'r'}",
                 cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")][0]
    assert "train.loss: the loss is nan at epoch 1, iteration 1" in line


def test_unknown_v3_name_is_located_with_suggestions(tmp_path):
    cfg = json.loads((ROOT / "examples" / "demo.json").read_text())
    cfg["train"]["pre_transforms"][4]["name"] = "RandomAxisFlp"
    src = tmp_path / "bad.json"
    src.write_text(json.dumps(cfg))
    (tmp_path / "environment.json").write_text((ROOT / "examples" / "environment.json").read_text())
    _convert(src, tmp_path / "conf")
    proc = train(tmp_path / "conf", "bad", f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert proc.returncode == 2
    line = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")][0]
    assert "train.pre_transforms[4]: the v3 component 'RandomAxisFlp' has no MONAI equivalent" in line
    assert "did you mean RandomAxisFlip" in line
