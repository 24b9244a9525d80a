"""Clara's evaluation configs read as a validate section (clara_hydra.evalconf), and inference
made from a validation (labels out, predictions saved on the input's grid)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clara_hydra import evalconf
from clara_hydra.errors import ClaraHydraError

TRAIN = {"train": {"model": {"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                                        "channels": [4, 8], "strides": [2]}}}}
V41 = {
    "dont_load_ts_model": False, "dont_load_ckpt_model": True,
    "model": [{"ts_path": "{MMAR_TORCHSCRIPT}", "disabled": "{dont_load_ts_model}"},
              {"ckpt_path": "{MMAR_CKPT}", "disabled": "{dont_load_ckpt_model}"}],
    "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}}],
    "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_list_key": "validation"},
    "evaluator": {"name": "SupervisedEvaluator", "args": {"network": "@model"}},
    "network_summary": {"network": "@model"},
}
SCALARS = {"MMAR_TORCHSCRIPT": "/m/models/model.ts", "MMAR_CKPT": "/m/models/model.pt", "DATASET_JSON": "/d.json"}


def _read(tmp_path: Path, data: dict, scalars: dict = SCALARS, overridden: frozenset = frozenset()):
    path = tmp_path / "config_validation.json"
    path.write_text(json.dumps(data))
    return evalconf.read(str(path), dict(scalars), overridden, TRAIN)


@pytest.mark.parametrize("scalars,overridden,weights", [
    pytest.param({}, frozenset(), ("ts", "/m/models/model.ts"), id="its-own-default-torchscript"),
    pytest.param({"dont_load_ts_model": True, "dont_load_ckpt_model": False}, frozenset(),
                 ("ts", "/m/models/model.ts"), id="the-training-config-does-not-decide"),
    pytest.param({"dont_load_ts_model": True, "dont_load_ckpt_model": False},
                 frozenset({"dont_load_ts_model", "dont_load_ckpt_model"}), ("ckpt", "/m/models/model.pt"),
                 id="the-command-line-does"),
])
def test_which_weights_a_v41_model_list_loads(tmp_path, scalars, overridden, weights):
    ev = _read(tmp_path, V41, {**SCALARS, **scalars}, overridden)
    assert ev.weights == weights and ev.era == "v4"
    assert ev.tree["validate"]["dataset"]["data_list_file_path"] == "/d.json"
    if weights[0] == "ts":
        assert ev.tree["train"]["model"] == {"path": "torch.jit.load", "args": {"f": weights[1], "map_location": "cpu"}}
    else:
        assert ev.tree["train"]["model"] == TRAIN["train"]["model"]
    assert any("network_summary" in n for n in ev.notes)


@pytest.mark.parametrize("data,scalars,overridden,words", [
    pytest.param({**V41, "dataset": {"name": "Dataset", "data_list_file_path": "{NOPE}"}}, SCALARS, frozenset(),
                 "dataset.data_list_file_path: '{NOPE}' names nothing", id="undefined-name"),
    pytest.param(V41, {**SCALARS, "dont_load_ts_model": True}, frozenset({"dont_load_ts_model"}),
                 "model: every entry of 'model' is disabled", id="nothing-to-load"),
    pytest.param({"train": {}, "evaluator": {}}, SCALARS, frozenset(), "this is a training config", id="training"),
    pytest.param({k: v for k, v in V41.items() if k != "evaluator"}, SCALARS, frozenset(),
                 "evaluator: the evaluation config has no evaluator", id="no-evaluator"),
])
def test_a_wrong_evaluation_config_is_one_located_line(tmp_path, data, scalars, overridden, words):
    with pytest.raises(ClaraHydraError) as info:
        _read(tmp_path, data, scalars, overridden)
    assert str(tmp_path / "config_validation.json") in info.value.format() and words in info.value.format()


@pytest.mark.parametrize("files,given,infer,want", [
    pytest.param(["config_validation.json"], None, False, "config_validation.json", id="validate-beside"),
    pytest.param(["config_validation.json", "config_inference.json"], None, True, "config_inference.json",
                 id="infer-prefers-the-inference-config"),
    pytest.param(["config_validation.json"], None, True, "config_validation.json", id="infer-else-validation"),
    pytest.param(["config_validation.json"], "none", False, None, id="none-the-training-config"),
    pytest.param([], None, False, None, id="nothing-beside"),
    pytest.param(["config_validation.json", "other.json"], "other.json", False, "other.json", id="given"),
])
def test_which_evaluation_config_runs(tmp_path, files, given, infer, want):
    for name in files:
        (tmp_path / name).write_text("{}")
    found = evalconf.find(str(tmp_path / "config_train.json"),
                          str(tmp_path / given) if given not in (None, "none") else given, infer)
    assert (Path(found).name if found else None) == want


def test_a_missing_evaluation_config_is_one_line(tmp_path):
    with pytest.raises(ClaraHydraError) as info:
        evalconf.find(str(tmp_path / "config_train.json"), str(tmp_path / "nope.json"))
    assert "no such evaluation config" in info.value.format() and "--eval-config none" in info.value.format()


def test_inference_is_the_validation_without_labels_or_metrics():
    tree = {"validate": {
        "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                           {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [2, 2, 2],
                                                         "mode": ["bilinear", "nearest"]}},
                           {"name": "AsDiscreted", "args": {"keys": "label", "to_onehot": 2}}],
        "dataset": {"name": "Dataset", "data_list_key": "validation"},
        "post_transforms": [{"path": "monai.transforms.AsDiscreted", "args": {
            "keys": ["pred", "label"], "argmax": [True, False], "to_onehot": 2}}],
        "key_metric": {"name": "MeanDice"}, "additional_metrics": [{"name": "Accuracy"}],
        "handlers": [{"name": "StatsHandler"}, {"name": "MetricsSaver"}, {"name": "CheckpointSaver"}],
        "evaluator": {"name": "SupervisedEvaluator", "args": {"key_val_metric": "@key_metric", "inferer": "@x"}}}}
    v = evalconf.for_inference(tree, "test", "/out")["validate"]
    assert v["dataset"]["data_list_key"] == "test"
    assert v["pre_transforms"][1]["args"] == {"keys": ["image"], "pixdim": [2, 2, 2], "mode": ["bilinear"]}
    assert len(v["pre_transforms"]) == 2  # the transform of labels only goes
    assert v["post_transforms"][0]["args"] == {"keys": ["pred"], "argmax": [True]}  # a label map
    assert [c["path"].rsplit(".", 1)[1] for c in v["post_transforms"][1:]] == ["Invertd", "SaveImaged"]
    assert v["post_transforms"][2]["args"]["output_dir"] == "/out"
    assert "key_metric" not in v and "additional_metrics" not in v
    assert [h["name"] for h in v["handlers"]] == ["StatsHandler"]
    assert v["evaluator"]["args"] == {"inferer": "@x"}
    assert tree["validate"]["pre_transforms"][1]["args"]["keys"] == ["image", "label"]  # the input is kept


def test_inference_saves_each_prediction_on_its_inputs_grid(tmp_path):
    """Resampled (Spacingd to 2 mm) for the network, the label map is inverted to the input's
    voxels and saved with the input's affine."""
    import nibabel as nib
    import numpy as np
    import torch

    from clara_hydra.synth import write
    from clara_hydra.train.evaluate import validate
    from clara_hydra.train.export_ts import load_weights  # noqa: F401  (the checkpoint form it reads)
    env = write(str(tmp_path / "d"), n_train=1, n_val=2, shape=(24, 20, 16))
    datalist = json.loads(Path(env["DATASET_JSON"]).read_text())
    from monai.networks.nets import UNet
    net = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(4, 8), strides=(2,))
    torch.save({"model": net.state_dict()}, tmp_path / "model.pt")
    tree = {**TRAIN, "validate": {
        "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                           {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
                           {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [2.0, 2.0, 2.0],
                                                         "mode": ["bilinear", "nearest"]}}],
        "dataset": {"name": "Dataset", "data_list_file_path": env["DATASET_JSON"],
                    "data_file_base_dir": env["DATA_ROOT"], "data_list_key": "validation"},
        "dataloader": {"name": "DataLoader", "args": {"batch_size": 1}},
        "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [16, 16, 16]}},
        "post_transforms": [{"name": "Activationsd", "args": {"keys": "pred", "softmax": True}},
                            {"name": "AsDiscreted", "args": {"keys": ["pred", "label"], "argmax": [True, False],
                                                             "to_onehot": 2}}],
        "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice"},
        "evaluator": {"name": "SupervisedEvaluator", "args": {}}}}
    assert validate(tree, weights=("ckpt", str(tmp_path / "model.pt")), out_dir=str(tmp_path / "pred"),
                    run_dir=str(tmp_path), progress=False, infer="validation") == {}
    for item in datalist["validation"]:
        source = nib.load(Path(env["DATA_ROOT"]) / item["image"])
        got = nib.load(tmp_path / "pred" / (Path(item["image"]).name.split(".")[0] + "_seg.nii.gz"))
        assert got.shape[:3] == source.shape[:3] == (24, 20, 16)
        assert np.allclose(got.affine, source.affine)
        assert set(np.unique(np.asarray(got.dataobj))) <= {0, 1}
    assert not (tmp_path / "pred" / "metrics.csv").exists()


def test_a_checkpoint_of_another_network_is_one_line(tmp_path):
    """A sweep trial's checkpoint validated on the config without its searched values (channels
    8-16 where the config says 4-8): one line that says what does not fit and what to use."""
    import torch
    from monai.networks.nets import UNet

    from clara_hydra.synth import write
    from clara_hydra.train.evaluate import validate
    env = write(str(tmp_path / "d"), n_train=1, n_val=1, shape=(16, 16, 16))
    other = UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16), strides=(2,))
    torch.save({"model": other.state_dict()}, tmp_path / "trial.pt")
    tree = {**TRAIN, "validate": {
        "pre_transforms": [{"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
                           {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}}],
        "dataset": {"name": "Dataset", "data_list_file_path": env["DATASET_JSON"],
                    "data_file_base_dir": env["DATA_ROOT"], "data_list_key": "validation"},
        "dataloader": {"name": "DataLoader", "args": {"batch_size": 1}},
        "inferer": {"name": "SimpleInferer"},
        "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice"},
        "evaluator": {"name": "SupervisedEvaluator", "args": {}}}}
    with pytest.raises(ClaraHydraError) as info:
        validate(tree, weights=("ckpt", str(tmp_path / "trial.pt")), out_dir=str(tmp_path / "eval"),
                 run_dir=str(tmp_path), progress=False)
    line = info.value.format()
    assert "validate: the checkpoint does not fit the network: size mismatch for" in line, line
    assert "its searched values" in line and "\n" not in line
