"""The v3 table and the v4 builder, without training."""

from __future__ import annotations

import copy
import inspect

import pytest
from conftest import CORPUS, corpus_or_skip, run_cli

ROWS = []
try:
    from clara_hydra.train.v3_table import CONVERTERS, TABLE
    ROWS = [pytest.param(name, i, row, id=f"{name}[{i}]") for name, rows in TABLE.items() for i, row in enumerate(rows)]
except ImportError:  # pragma: no cover
    pass


@pytest.mark.parametrize("name,i,row", ROWS)
def test_v3_row_targets_a_real_class_with_real_args(name, i, row):
    from clara_hydra.train.names import resolve_class
    cls = resolve_class(row.target)
    params = inspect.signature(cls).parameters
    emitted = {spec if isinstance(spec, str) else spec[0] for spec in row.args.values()}
    emitted |= set(row.fixed) | set(row.defaults)
    takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_kwargs and row.target.endswith("LoadImaged"):  # reader options go through **kwargs
        from monai.data import NibabelReader, PILReader
        params = {**params, **inspect.signature(NibabelReader).parameters, **inspect.signature(PILReader).parameters}
    missing = sorted(a for a in emitted if a not in params)
    assert not missing, f"{row.target} has no {missing}"
    for spec in row.args.values():
        if not isinstance(spec, str):
            assert spec[1] in CONVERTERS


@pytest.mark.parametrize("conv,value,want", [
    pytest.param("sqrt", 0.04, pytest.approx(0.2), id="sqrt"),
    pytest.param("deg2rad", 180, pytest.approx(3.141592653589793), id="deg2rad"),
    pytest.param("not", True, False, id="not"),
    pytest.param("int_tuple", "1,2,2,4", [1, 2, 2, 4], id="int-tuple"),
    pytest.param("label_mode", True, "nearest", id="label-mode-true"),
    pytest.param("label_mode", False, "bilinear", id="label-mode-false"),
])
def test_value_converters(conv, value, want):
    from clara_hydra.train.v3_table import CONVERTERS
    assert CONVERTERS[conv](value) == want


def test_searched_v3_arg_maps_like_a_written_one():
    """The mapping runs after search values are in place: variance 0.09 -> std 0.3."""
    from clara_hydra.train.v3 import map_transform
    [out] = map_transform({"name": "AddGaussianNoise", "args": {"fields": "image", "probability": 0.7,
                                                                "variance": 0.09}}, "x")
    assert out["path"].endswith("RandGaussianNoised")
    assert out["args"]["keys"] == ["image"] and out["args"]["prob"] == 0.7
    assert out["args"]["std"] == pytest.approx(0.3) and out["args"]["sample_std"] is False


def _tree(rel: str, data) -> dict:
    """A corpus config, converted and composed on the synthetic data in ``data``, as training reads it."""
    import os
    import tempfile

    from clara_hydra.convert import convert
    from clara_hydra.reader import read
    from clara_hydra.render import write
    from clara_hydra.resolve import compose, effective_from_cfg
    conv = convert(read(str(CORPUS / rel)))
    with tempfile.TemporaryDirectory() as tmp:
        path = write(conv, tmp)
        cfg = compose(tmp, os.path.splitext(os.path.basename(path))[0],
                      [f"DATASET_JSON={data / 'dataset.json'}", f"DATA_ROOT={data}",
                       f"MMAR_CKPT_DIR={data / 'models'}", f"MMAR_CKPT={data / 'models' / 'model.pt'}"])
        return effective_from_cfg(cfg, enabled_only=True)


def _build(rel: str, data):
    from clara_hydra.train.run import _parsed, build
    parser, bundle, era = build(_tree(rel, data), config_file=None, device="cpu", amp=False)
    return _parsed(parser, "train#trainer"), _parsed(parser, "validate#evaluator")


def test_v40_implicit_wiring_gives_the_objects_v41_writes(tmp_path):
    corpus_or_skip()
    assert run_cli("synth-data", tmp_path, "--shape", "48", "48", "48").returncode == 0
    t40, e40 = _build("cte-pt40-automl/trn_autoML_Loss_Optimizer.json", tmp_path)
    t41, e41 = _build("cte-pt41-automl/trn_autoML_Loss_Optimizer.json", tmp_path)
    for a, b in ((t40, t41), (e40, e41)):
        assert type(a.network) is type(b.network)
        assert type(a.inferer) is type(b.inferer)
        assert type(a.data_loader.dataset) is type(b.data_loader.dataset)
        assert len(a.data_loader.dataset.transform.transforms) == len(b.data_loader.dataset.transform.transforms)
    assert type(t40.optimizer) is type(t41.optimizer) and type(t40.loss_function) is type(t41.loss_function)
    assert t40.optimizer.param_groups[0]["params"][0] is list(t40.network.parameters())[0]
    assert e40.state.key_metric_name == e41.state.key_metric_name == "val_mean_dice"


def test_the_network_goes_where_training_runs_and_the_optimizer_keeps_its_parameters(tmp_path):
    """MONAI's engines move each batch to the device, never the network: training puts it there
    (on CUDA; here the "meta" device stands in, which no CPU default could reach by chance), and
    the optimizer optimizes the parameters that moved."""
    import torch

    from clara_hydra.train.run import place
    assert run_cli("synth-data", tmp_path, "--shape", "32", "32", "32").returncode == 0
    trainer, evaluator = _build("cte-pt41-automl/trn_autoML_Loss_Optimizer.json", tmp_path)
    place(torch.device("meta"), trainer, evaluator)  # (a move that makes new Parameter objects)
    assert {p.device.type for p in evaluator.network.parameters()} == {"meta"}
    optimized = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    assert len(optimized) == len(list(trainer.network.parameters()))
    assert all(a is b for a, b in zip(optimized, trainer.network.parameters()))


@pytest.mark.parametrize("device,amp", [pytest.param("cuda", True, id="cuda"), pytest.param("cpu", False, id="cpu")])
def test_what_a_run_puts_on_its_device(tmp_path, device, amp):
    """The GPU path, checked on the CPU: built for CUDA (the built config is read; nothing is
    allocated), both engines move each batch to CUDA without blocking and run under AMP where the
    config asks, and the cached data is kept on the GPU (it fits the free memory given); built for
    the CPU, none of it. The network's own move is the test above."""
    corpus_or_skip()
    from clara_hydra.train.bundle import Builder
    assert run_cli("synth-data", tmp_path, "--shape", "32", "32", "32").returncode == 0
    tree = _tree("cte-pt41-automl/trn_autoML_Loss_Optimizer.json", tmp_path)  # amp: true, CacheDataset
    built = Builder(tree, device=device, amp=amp, gpu_free_bytes=2**34 if device == "cuda" else None).build()
    for sec, name in (("train", "trainer"), ("validate", "evaluator")):
        engine = built[sec][name]
        assert engine["device"] == f"$torch.device('{device}')", (sec, engine["device"])
        assert engine.get("amp") is amp and engine.get("non_blocking", False) is (device == "cuda"), (sec, engine)
    train = built["train"]
    assert train["dataloader"]["_target_"] == ("monai.data.ThreadDataLoader" if device == "cuda"
                                               else "monai.data.DataLoader")
    on_gpu = [t for t in train["pre_transforms"]["transforms"]
              if t.get("_target_") == "monai.transforms.EnsureTyped" and t.get("device") == "cuda"]
    assert len(on_gpu) == (1 if device == "cuda" else 0), train["pre_transforms"]["transforms"]


def test_channels_last_3d_keeps_the_parameters_and_the_outputs(tmp_path):
    """``channels_last_3d: true``: every 3D convolution weight in channels-last order, the same
    Parameter objects (the optimizer still optimizes them) and the same outputs."""
    import torch

    from clara_hydra.train.run import channels_last_3d
    assert run_cli("synth-data", tmp_path, "--shape", "32", "32", "32").returncode == 0
    trainer, evaluator = _build("cte-pt41-automl/trn_autoML_Loss_Optimizer.json", tmp_path)
    network = trainer.network.eval()
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        before = network(x)
    params = list(network.parameters())
    weights = [p for p in params if p.dim() == 5]
    assert 0 < channels_last_3d(trainer, evaluator) <= len(weights)  # (1x1x1 kernels are channels-last already)
    assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in weights)
    assert all(a is b for a, b in zip(params, network.parameters()))
    assert all(a is b for a, b in zip([p for g in trainer.optimizer.param_groups for p in g["params"]], params))
    with torch.no_grad():
        assert torch.allclose(network(x), before, atol=1e-5)
    assert channels_last_3d(trainer, evaluator) == 0  # (once is enough)


@pytest.mark.parametrize("tree,where,words", [
    pytest.param({"train": {"model": {"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                                               "chanels": [8, 16], "strides": [2]}}}},
                 "train.model.args.chanels", "UNet has no argument 'chanels' (did you mean channels,",
                 id="unknown-arg"),
    pytest.param({"train": {"loss": {"name": "DiceLos", "args": {}}}}, "train.loss",
                 "no MONAI, torch or ignite class is called 'DiceLos' (did you mean DiceLoss", id="unknown-class"),
    pytest.param({"train": {"optimizer": {"name": "Adam", "args": {"params": "@nothing"}}}},
                 "train.optimizer.args.params", "'@nothing' names no slot of train or validate", id="unknown-ref"),
])
def test_build_errors_are_located(tree, where, words):
    from clara_hydra.errors import ClaraHydraError
    from clara_hydra.train.bundle import Builder
    with pytest.raises(ClaraHydraError) as info:
        Builder(tree, device="cpu", amp=False).build()
    assert info.value.location == where
    assert words in info.value.format()


def test_old_monai_names_are_renamed_with_a_notice(capsys):
    from clara_hydra.train.bundle import Builder
    tree = {"train": {"model": {"name": "UNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
                                                         "channels": [8, 16], "strides": [2]}},
                      "post_transforms": [{"name": "AddChanneld", "args": {"keys": "pred"}},
                                          {"name": "AsDiscreted", "args": {"keys": "pred", "to_onehot": True,
                                                                           "n_classes": 3}}]}}
    b = Builder(tree, device="cpu", amp=False).build()
    assert b["train"]["model"]["spatial_dims"] == 3 and "dimensions" not in b["train"]["model"]
    post = b["train"]["post_transforms"]["transforms"]
    assert post[0]["_target_"].endswith("EnsureChannelFirstd") and post[0]["channel_dim"] == "no_channel"
    assert post[1]["to_onehot"] == 3 and "n_classes" not in post[1]
    err = capsys.readouterr().err
    assert "'dimensions' is now 'spatial_dims'" in err and "AddChanneld is called EnsureChannelFirstd" in err


@pytest.mark.parametrize("share", [False, True], ids=["single-run", "in-a-sweep"])
@pytest.mark.parametrize("free,on_gpu", [(8 * 2**30, True), (1024, False)], ids=["fits", "too-big"])
def test_cuda_fast_path_wiring(tmp_path, free, on_gpu, share, capsys):
    """On CUDA (simulated: the bundle is only built, not run), a cached dataset gets a
    ThreadDataLoader, non-blocking transfers, and its cache on the GPU when it fits."""
    from clara_hydra.synth import write
    from clara_hydra.train.bundle import Builder
    env = write(str(tmp_path / "d"), n_train=2, n_val=1, shape=(32, 32, 32))
    tree = {"train": {
        "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                           {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
                           {"name": "RandFlipd", "args": {"keys": ["image", "label"], "prob": 0.5}}],
        "dataset": {"name": "CacheDataset", "data_list_file_path": env["DATASET_JSON"],
                    "data_file_base_dir": env["DATA_ROOT"], "data_list_key": "training", "args": {}},
        "dataloader": {"name": "DataLoader", "args": {"batch_size": 1, "num_workers": 2}},
        "trainer": {"name": "SupervisedTrainer", "args": {"max_epochs": 1, "amp": True}}}}
    b = Builder(tree, device="cuda", amp=True, gpu_free_bytes=free, share_cache=share).build()["train"]
    if share:  # in a sweep the dataset is the shared-cache wrapper, and the fast path still applies
        assert b["dataset"]["_target_"] == "clara_hydra.train.cache.shared_dataset"
    assert b["dataloader"]["_target_"] == "monai.data.ThreadDataLoader" and b["dataloader"]["num_workers"] == 0
    assert b["trainer"]["non_blocking"] is True and b["trainer"]["amp"] is True
    chain = [t["_target_"].rsplit(".", 1)[-1] for t in b["pre_transforms"]["transforms"]]
    if on_gpu:
        assert chain == ["LoadImaged", "EnsureChannelFirstd", "EnsureTyped", "RandFlipd"]
        assert b["pre_transforms"]["transforms"][2]["device"] == "cuda"
    else:
        assert chain == ["LoadImaged", "EnsureChannelFirstd", "RandFlipd"]
        assert "does not fit" in capsys.readouterr().err


@pytest.mark.parametrize("written, built", [({}, True), ({"optim_set_to_none": False}, False)],
                         ids=["not-said-pytorchs-default", "the-configs-own"])
def test_gradients_are_set_to_none_where_the_config_does_not_say(tmp_path, written, built):
    """PyTorch's own default (``zero_grad(set_to_none=True)``: no memset of every gradient each
    iteration), which MONAI's trainer leaves off; a config that says keeps what it says."""
    from clara_hydra.synth import write
    from clara_hydra.train.bundle import Builder
    env = write(str(tmp_path / "d"), n_train=2, n_val=1, shape=(32, 32, 32))
    tree = {"train": {
        "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}}],
        "dataset": {"name": "Dataset", "data_list_file_path": env["DATASET_JSON"],
                    "data_file_base_dir": env["DATA_ROOT"], "data_list_key": "training", "args": {}},
        "dataloader": {"name": "DataLoader", "args": {"batch_size": 1}},
        "trainer": {"name": "SupervisedTrainer", "args": {"max_epochs": 1, **written}}}}
    assert Builder(tree, device="cpu", amp=False).build()["train"]["trainer"]["optim_set_to_none"] is built


def test_train_and_validate_never_share_a_cached_dataset(tmp_path):
    from clara_hydra.synth import write
    from clara_hydra.train.bundle import Builder
    env = write(str(tmp_path / "d"), n_train=2, n_val=1, shape=(32, 32, 32))
    ds = {"name": "CacheDataset", "data_list_file_path": env["DATASET_JSON"], "data_file_base_dir": env["DATA_ROOT"],
          "data_list_key": "training", "args": {}}
    chain = [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}}]
    tree = {"train": {"pre_transforms": chain, "dataset": ds}, "validate": {"pre_transforms": chain, "dataset": ds}}

    def build():  # one trial's bundle, from the same config
        return Builder(copy.deepcopy(tree), device="cuda", amp=False, share_cache=True,
                       gpu_free_bytes=8 * 2**30).build()
    b, again = build(), build()
    assert b["train"]["dataset"]["_target_"] == "clara_hydra.train.cache.shared_dataset"
    assert b["validate"]["dataset"]["_target_"] == "clara_hydra.train.cache.shared_dataset"
    # the next trial finds the same cache (the key is the config's, not the build's) ...
    assert again["train"]["dataset"]["key"] == b["train"]["dataset"]["key"]
    assert again["validate"]["dataset"]["key"] == b["validate"]["dataset"]["key"]
    # ... and validate, with the same transforms and data list, never takes train's
    assert b["train"]["dataset"]["key"] != b["validate"]["dataset"]["key"]


def _ddp_tree(env: dict, val_key: str = "validation") -> dict:
    chain = [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}}]
    ds = {"name": "Dataset", "data_list_file_path": env["DATASET_JSON"], "data_file_base_dir": env["DATA_ROOT"],
          "args": {}}
    return {"train": {"model": {"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                                         "channels": [4, 8], "strides": [2]}},
                      "pre_transforms": chain, "dataset": dict(ds, data_list_key="training"),
                      "dataloader": {"name": "DataLoader", "args": {"batch_size": 1, "shuffle": True}},
                      "handlers": [{"name": "CheckpointSaver", "args": {"save_dir": "m", "save_dict": ["model"]}},
                                   {"name": "StatsHandler", "args": {}}]},
            "validate": {"pre_transforms": chain, "dataset": dict(ds, data_list_key=val_key),
                         "dataloader": {"name": "DataLoader", "args": {"batch_size": 1, "shuffle": False}},
                         "handlers": [{"name": "MetricsSaver", "args": {"save_dir": "e"}},
                                      {"name": "TensorBoardStatsHandler", "args": {}}]}}


@pytest.mark.parametrize("rank", [0, 1])
def test_a_ddp_rank_reads_its_share_and_only_rank_0_writes(tmp_path, rank):
    """Each of 2 processes: MONAI's DistributedSampler (training shuffled, even shares;
    validation each case once); the handlers that write files or log lines on rank 0 only, the
    metric savers (which gather every rank's values) on every rank."""
    from clara_hydra.synth import write
    from clara_hydra.train.bundle import Builder
    env = write(str(tmp_path / "d"), n_train=3, n_val=3, shape=(16, 16, 16))
    b = Builder(_ddp_tree(env), device="cpu", amp=False, rank=rank, world=2).build()
    for sec, shuffle, even in (("train", True, True), ("validate", False, False)):
        dl = b[sec]["dataloader"]
        assert dl["shuffle"] is False and dl["sampler"] == {
            "_target_": "monai.data.DistributedSampler", "dataset": f"@{sec}::dataloader::dataset",
            "shuffle": shuffle, "even_divisible": even}
    handlers = [h["_target_"].rsplit(".", 1)[-1] for sec in ("train", "validate") for h in b[sec]["handlers"]]
    everywhere = ["MetricsSaver"]
    assert handlers == (["CheckpointSaver", "StatsHandler", "MetricsSaver", "TensorBoardStatsHandler"] if rank == 0
                        else everywhere)


def test_fewer_cases_than_processes_is_one_located_line(tmp_path):
    from clara_hydra.errors import BuildError
    from clara_hydra.synth import write
    from clara_hydra.train.bundle import Builder
    env = write(str(tmp_path / "d"), n_train=3, n_val=1, shape=(16, 16, 16))
    with pytest.raises(BuildError) as err:
        Builder(_ddp_tree(env), device="cpu", amp=False, rank=0, world=2).build()
    assert err.value.location == "validate.dataset"
    assert "1 case(s) for 2 training processes: each process needs at least one" in err.value.message


@pytest.mark.parametrize("nproc,multi_gpu,want,said", [
    pytest.param(None, False, 1, "", id="default-one"),
    pytest.param(None, True, 1, "multi_gpu is true, but this job sees no GPUs: training in one process "
                 "(CLARA_HYDRA_NPROC=N trains in N processes, gloo on the CPU)", id="multi_gpu-without-cuda"),
    pytest.param("2", False, 2, "", id="nproc-2"),
    pytest.param("3", True, 3, "", id="nproc-wins"),
    pytest.param("0", False, "CLARA_HYDRA_NPROC must be a whole number of processes, at least 1; got '0'", "",
                 id="nproc-0"),
    pytest.param("two", False, "CLARA_HYDRA_NPROC must be a whole number of processes, at least 1; got 'two'", "",
                 id="nproc-word"),
])
def test_how_many_processes_a_job_trains_in(monkeypatch, capsys, nproc, multi_gpu, want, said):
    from clara_hydra.errors import TrainingError
    from clara_hydra.train.ddp import processes
    if nproc is None:
        monkeypatch.delenv("CLARA_HYDRA_NPROC", raising=False)
    else:
        monkeypatch.setenv("CLARA_HYDRA_NPROC", nproc)
    tree = {"multi_gpu": multi_gpu}
    if isinstance(want, str):
        with pytest.raises(TrainingError, match=want):
            processes(tree)
        return
    assert processes(tree) == want
    err = capsys.readouterr().err
    assert (said in err) if said else "multi_gpu" not in err


def test_a_resumed_saver_knows_the_checkpoint_files_as_at_its_resume_point(tmp_path):
    """The run went on after its resume point (a preemption's grace time): the best file the
    point knows was replaced by a later one. On resume the saver forgets the missing file (the
    next best would fail to remove it) and the later file goes (its epochs train again)."""
    import torch
    from ignite.handlers import Checkpoint, DiskSaver

    from clara_hydra.train.resume import _files_as_at_the_point
    checkpoint = Checkpoint({"model": torch.nn.Linear(1, 1)}, DiskSaver(str(tmp_path), require_empty=False), n_saved=1)
    checkpoint.load_state_dict({"_saved": [(0.25, "model_key_metric=0.2500.pt")]})  # gone: replaced
    for name in ("model_key_metric=0.2700.pt", "model.pt", "other_key_metric=0.1.pt"):
        (tmp_path / name).write_text("x")
    _files_as_at_the_point(checkpoint)
    assert checkpoint.state_dict()["_saved"] == []  # (ignite's public state)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "other_key_metric=0.1.pt"]
