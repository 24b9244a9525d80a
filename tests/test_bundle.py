"""``clara-hydra export RUN_DIR --bundle``: a trained run as a MONAI bundle, moved away and run by
MONAI alone (``python -m monai.bundle``) in a Python where ``import clara_hydra`` fails: it trains,
it infers (predictions on the input's grid and affine), its network passes MONAI's in/out check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import clara_cli, one_error
from test_mmar import VALIDATION_V41, clara_train, make_mmar, synth_data

pytestmark = pytest.mark.slow

#: A Python in which clara-hydra cannot be imported (what a machine without it has)
NO_CLARA_HYDRA = '''import sys


class _NoClaraHydra:
    def find_spec(self, name, path=None, target=None):
        if name == "clara_hydra" or name.startswith("clara_hydra."):
            raise ImportError(f"{name}: clara-hydra is not installed here")
        return None


sys.meta_path.insert(0, _NoClaraHydra())
'''


def _run(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """(run folder, its train.log): an MMAR of a v4.1 config with a BYOC transform and a
    config_validation.json, trained."""
    run = tmp_path / "run"
    mmar = make_mmar(tmp_path / "spleen_mmar", synth_data(tmp_path / "data", train=2, val=1), drop_search=True)
    (mmar / "config" / "config_validation.json").write_text(json.dumps(VALIDATION_V41))  # -> configs/evaluate.json
    proc = clara_train("--config-dir", mmar / "conf", "--config-name", "config_train", "epochs=1",
                       f"hydra.run.dir={run}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run, (run / "train.log").read_text()


def blocked(tmp_path: Path) -> Path:
    """A PYTHONPATH folder whose sitecustomize makes ``import clara_hydra`` fail."""
    block = tmp_path / "no_clara_hydra"
    block.mkdir(exist_ok=True)
    (block / "sitecustomize.py").write_text(NO_CLARA_HYDRA)
    return block


def runs_with_monai_alone(made: Path, tmp_path: Path) -> Path:
    """The bundle ``made``, moved away, run by MONAI where clara-hydra cannot be imported: its
    evaluate.json (where it has one) writes the metrics (kept in ``tmp_path/evaluated``), its
    inference.json one prediction per validation case on the input's grid and affine, its
    train.json trains; gives its folder."""
    import nibabel as nib
    import numpy as np
    bundle = tmp_path / "moved" / made.name
    shutil.move(str(made), str(bundle))  # a bundle is its folder: it runs wherever it is moved
    block = blocked(tmp_path)
    configs = bundle / "configs"
    evaluate = (configs / "evaluate.json").exists()
    # one Python runs the three as `python -m monai.bundle run` runs each (one start of torch and
    # MONAI, not three; the test of the v4.1 MMAR runs that command itself)
    script = ("import os, shutil\nfrom monai.bundle import run\n"
              + ("run(config_file='configs/evaluate.json')\nshutil.move('eval', 'evaluated')\n" if evaluate else "")
              + "run(config_file='configs/inference.json')\n"
              "os.remove('models/model.pt')\n"  # (what training writes)
              "run(config_file='configs/train.json')\n")
    done = _monai(["-c", script], bundle, block)
    assert done.returncode == 0, done.stderr[-3000:]
    if evaluate:
        assert (bundle / "evaluated" / "metrics.csv").read_text().strip(), "no metrics"
        shutil.move(str(bundle / "evaluated"), str(tmp_path / "evaluated"))
    train = json.loads((configs / "train.json").read_text())
    lists = json.loads((configs / "datalist.json").read_text())
    images = sorted(Path(train["dataset_dir"]) / item["image"] for item in lists["validation"])
    saved = sorted((bundle / "eval").rglob("*.nii.gz"))
    assert len(saved) == len(images) >= 1
    for image, out in zip(images, saved):
        given, got = nib.load(str(image)), nib.load(str(out))
        assert got.shape[:3] == given.shape[:3] and np.allclose(got.affine, given.affine, atol=1e-4), out
    assert (bundle / "models" / "model.pt").is_file()  # trained
    return bundle


def _monai(args: list[str], cwd: Path, block: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLARA_HYDRA")}
    env["PYTHONPATH"] = str(block)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("kind", ["v41-mmar-with-byoc"])  # (v3 corpus runs export in test_train; the v3
# demo's best trial in test_train's demo sweep)
def test_a_run_exported_as_a_bundle_trains_and_infers_with_monai_alone(tmp_path, kind):
    run, log = _run(kind, tmp_path)
    made = tmp_path / "bundle"
    proc = subprocess.run(clara_cli() + ["export", str(run), "--bundle", "-o", str(made)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    validation = tmp_path / "spleen_mmar" / "config" / "config_validation.json"
    assert f"configs/evaluate.json: from {validation}" in proc.stdout + proc.stderr
    train = json.loads((made / "configs" / "train.json").read_text())
    assert {"bundle_root", "device", "dataset_dir", "datalist", "network_def", "initialize", "run"} <= set(train)
    assert "trainer" in train["train"] and "clara_hydra" not in (made / "configs" / "train.json").read_text()
    meta = json.loads((made / "configs" / "metadata.json").read_text())
    reported = float(log.rsplit("key metric = ", 1)[1].split()[0])
    assert meta["key_metric"]["value"] == pytest.approx(reported, abs=1e-4) and meta["monai_version"]
    assert meta["network_data_format"]["inputs"]["image"]["num_channels"] == train["network_def"]["in_channels"]
    if kind == "v41-mmar-with-byoc":
        assert (made / "scripts" / "myflip.py").is_file()  # the MMAR's own class, carried along
        assert "myflip.MyFlip" in json.dumps(train)
    lists = json.loads((made / "configs" / "datalist.json").read_text())
    assert lists["training"] and not any(os.path.isabs(v) for items in lists.values() for item in items
                                         for v in item.values())  # relative to dataset_dir, which moves
    shutil.copyfile(made / "models" / "model.pt", tmp_path / "exported.pt")
    bundle = runs_with_monai_alone(made, tmp_path)
    block = blocked(tmp_path)
    assert "not installed here" in _monai(["-c", "import clara_hydra"], bundle, block).stderr

    # evaluate.json is Clara's validate.sh (the MMAR's config_validation.json) as MONAI ran it: the
    # same per-case values as clara-hydra validate on the exported weights
    validated = subprocess.run(clara_cli() + ["validate", "--mmar", str(validation.parent.parent),
                                              f"MMAR_CKPT={tmp_path / 'exported.pt'}", "dont_load_ts_model=true",
                                              "dont_load_ckpt_model=false", "++MMAR_TORCHSCRIPT=unused.ts",
                                              f"MMAR_EVAL_OUTPUT_PATH={tmp_path / 'validated'}",
                                              f"hydra.run.dir={tmp_path / 'val'}"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert validated.returncode == 0, validated.stderr[-3000:]
    for report in ("metrics.csv", "val_mean_dice_raw.csv"):
        ours = (tmp_path / "validated" / report).read_text().splitlines()
        theirs = (tmp_path / "evaluated" / report).read_text().splitlines()
        assert len(theirs) == len(ours) >= 1, report
        for a, b in zip(ours, theirs):  # the same cases, the same values (to the float's print)
            assert [c if not _number(c) else round(float(c), 4) for c in a.replace(",", "\t").split("\t")] == \
                [c if not _number(c) else round(float(c), 4) for c in b.replace(",", "\t").split("\t")], report

    # MONAI's own command line (test_train runs a v3 corpus run's bundle too): its in/out check of
    # the network; and an inference without the weights is refused
    checked = _monai(["-m", "monai.bundle", "verify_net_in_out", "--net_id", "network_def", "--meta_file",
                      "configs/metadata.json", "--config_file", "configs/inference.json"], bundle, block)
    assert checked.returncode == 0, checked.stderr[-3000:]
    refused = _monai(["-c", "from monai.bundle import run\n"
                            "try:\n"
                            "    run(config_file='configs/inference.json', ckpt_dir='no-weights-here')\n"
                            "except Exception as exc:\n"
                            "    print('refused:', exc)\n"], bundle, block)
    assert "refused:" in refused.stdout and "no-weights-here" in refused.stdout, refused.stderr[-2000:]


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_what_is_no_run_or_no_bundle_is_one_line(tmp_path):
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    line = one_error(subprocess.run(clara_cli() + ["export", str(tmp_path / "run"), "--bundle", "-o",
                                                   str(tmp_path / "b")], cwd=tmp_path, capture_output=True,
                                    text=True, timeout=120))
    assert "not a run folder" in line and not (tmp_path / "b").exists()


@pytest.mark.parametrize("config, where", [
    pytest.param({"train": {"loss": {"_target_": "clara_hydra.train.other.Loss"}}}, "train::loss::_target_",
                 id="a-class-of-clara-hydra"),
    pytest.param({"validate": {"handlers": [{"f": "$clara_hydra.x(1)"}]}}, "validate::handlers::0::f",
                 id="an-expression-that-calls-it"),
])
def test_what_needs_clara_hydra_is_refused_naming_the_component(config, where):
    from clara_hydra.bundle_export import _refuse_clara_hydra
    from clara_hydra.errors import ClaraHydraError
    with pytest.raises(ClaraHydraError) as caught:
        _refuse_clara_hydra(config)
    assert caught.value.location == where and "MONAI bundle" in caught.value.format()
