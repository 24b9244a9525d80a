"""Typed configs (issue 12): every component arg is typed as its class takes it, so a wrong-typed or
unknown override fails while Hydra composes (or, for what OmegaConf cannot type, before anything
trains), in one line naming the place, the class, the type and the value; a sweep value that does
not fit fails before any trial starts.

The table below holds one override of each kind (int, float, bool, list, string) for a config of
each era of the corpus (v3, v4.0, v4.1), on args the config writes."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys

import pytest
from conftest import CORPUS, ROOT, one_error
from test_mmar import clara_train, make_mmar, synth_data

V3 = CORPUS / "cte-tf31-gettingstarted" / "trn_base.json"
V3_SEGRESNET = CORPUS / "cte-tf31-automl" / "trn_autoML_Enum.json"
V40 = CORPUS / "mdai-spleen-pt40" / "config_train.json"
V41 = CORPUS / "mdai-spleen-pt41" / "config_train.json"

WRONG_TYPES = [  # (id, config, override, location, words)
    ("v3-int", V3, "train.pre_transforms.6.args.pos=abc", "train.pre_transforms[6].args.pos",
     "FastPosNegRatioCropROI (v3)'s 'pos' takes an integer, got abc"),
    ("v3-int-init-filters", V3_SEGRESNET, "train.model.args.init_filters=abc", "train.model.args.init_filters",
     "SegResnet (v3)'s 'init_filters' takes an integer, got abc"),
    ("v3-float", V3, "train.pre_transforms.4.args.a_min=low", "train.pre_transforms[4].args.a_min",
     "ScaleIntensityRange (v3)'s 'a_min' takes a number, got low"),
    ("v3-bool", V3, "train.pre_transforms.4.args.clip=maybe", "train.pre_transforms[4].args.clip",
     "'clip' takes a boolean, got maybe"),
    ("v3-list", V3, "train.pre_transforms.6.args.size=96", "train.pre_transforms[6].args.size",
     "'size' takes a list, got 96"),
    ("v3-string", V3, "train.pre_transforms.5.args.image_field=[a,b]", "train.pre_transforms[5].args.image_field",
     "'image_field' takes a string, got [a,b]"),
    ("v40-int", V40, "train.lr_scheduler.args.step_size=1.5", "train.lr_scheduler.args.step_size",
     "StepLR's 'step_size' takes an integer, got 1.5"),
    ("v40-float", V40, "train.optimizer.args.lr=fast", "train.optimizer.args.lr",
     "Adam's 'lr' takes a number, got fast"),
    ("v40-bool", V40, "train.loss.args.softmax=maybe", "train.loss.args.softmax",
     "DiceLoss's 'softmax' takes a boolean, got maybe"),
    ("v40-list", V40, "train.model.args.channels=16", "train.model.args.channels",
     "UNet's 'channels' takes a list, got 16"),
    ("v40-string", V40, "train.pre_transforms.3.args.source_key=[image]", "train.pre_transforms[3].args.source_key",
     "CropForegroundd's 'source_key' takes a string, got [image]"),
    ("v41-int", V41, "train.model.args.num_res_units=abc", "train.model.args.num_res_units",
     "UNet's 'num_res_units' takes an integer, got abc"),
    ("v41-float", V41, "train.pre_transforms.10.args.prob=often", "train.pre_transforms[10].args.prob",
     "RandShiftIntensityd's 'prob' takes a number, got often"),
    ("v41-bool", V41, "train.loss.args.squared_pred=maybe", "train.loss.args.squared_pred",
     "DiceCELoss's 'squared_pred' takes a boolean, got maybe"),
    ("v41-list", V41, "train.model.args.strides=2", "train.model.args.strides", "UNet's 'strides' takes a list, got 2"),
    ("v41-string", V41, "train.pre_transforms.2.args.axcodes=[R,A,S]", "train.pre_transforms[2].args.axcodes",
     "Orientationd's 'axcodes' takes a string or null, got [R,A,S]"),
    # args that take several kinds, which OmegaConf cannot type: refused before anything is built
    ("v41-union", V41, "train.pre_transforms.3.args.pixdim=fine", "train.pre_transforms[3].args.pixdim",
     "Spacingd's 'pixdim' takes a number or a list, got fine"),
    # Clara's first-level booleans that the config does not have, so nothing types them (validate adds the
    # evaluation config's keys so: ++dont_load_ts_model=...): refused before anything is built
    ("v41-first-level-bool-added", V41, "+dont_load_ts_model=ture", "dont_load_ts_model",
     "'dont_load_ts_model' takes a boolean, got ture"),
    ("v41-first-level-bool-forced", V41, "++dont_load_ts_model=maybe", "dont_load_ts_model",
     "'dont_load_ts_model' takes a boolean, got maybe"),
    ("v41-first-level-schema-bool-added", V41, "++use_gpu=ture", "use_gpu", "'use_gpu' takes a boolean, got ture"),
]

UNKNOWN_ARGS = [  # (id, config, override, location, words)
    ("v3", V3, "train.pre_transforms.4.args.a_mn=0", "train.pre_transforms[4].args.a_mn",
     "ScaleIntensityRange (v3) has no argument 'a_mn' (did you mean a_min"),
    ("v40", V40, "train.model.args.num_res_unit=2", "train.model.args.num_res_unit",
     "UNet has no argument 'num_res_unit' (did you mean num_res_units?"),
    ("v41-added", V41, "+train.model.args.num_res_unit=2", "train.model.args.num_res_unit",
     "UNet has no argument 'num_res_unit' (override +train.model.args.num_res_unit) (did you mean num_res_units?"),
    ("v41-real-but-not-written", V41, "train.model.args.dropout=0.1", "train.model.args.dropout",
     "UNet's 'dropout' is not in this config (to add an arg: +train.model.args.dropout=VALUE)"),
    ("v3-model", V3_SEGRESNET, "train.model.args.init_filtres=8", "train.model.args.init_filtres",
     "SegResnet (v3) has no argument 'init_filtres' (did you mean init_filters?"),
    ("v3-model-added", V3_SEGRESNET, "+train.model.args.use_vae_loss=1", "train.model.args.use_vae_loss",
     "SegResnet (v3) has no argument 'use_vae_loss' (override +train.model.args.use_vae_loss) (did you mean use_vae?"),
    ("v3-table", V3_SEGRESNET, "train.pre_transforms.0.args.fieldz=[image]", "train.pre_transforms[0].args.fieldz",
     "LoadNifti (v3) has no argument 'fieldz' (did you mean fields?"),
    ("v41-added-wrong-type", V41, "+train.model.args.dropout=abc", "train.model.args.dropout",
     "UNet's 'dropout' takes a number, got abc"),
]


def _resolve_error(config, override) -> str:
    """The error `clara-hydra resolve` (convert, compose with Hydra, resolve) gives, in this process."""
    from clara_hydra.errors import ClaraHydraError
    from clara_hydra.resolve import resolve_file
    with pytest.raises(ClaraHydraError) as info:
        resolve_file(str(config), [override])
    line = info.value.format()
    assert "\n" not in line, line
    return line


@pytest.mark.parametrize("cid,config,override,location,words", WRONG_TYPES + UNKNOWN_ARGS,
                         ids=[r[0] for r in WRONG_TYPES + UNKNOWN_ARGS])
def test_a_wrong_override_is_one_located_line(cid, config, override, location, words):
    line = _resolve_error(config, override)
    assert line.startswith(f"error: {config}: {location}: "), line
    assert words in line, line


def test_a_v3_arg_mapped_to_an_untyped_monai_arg_takes_anything():
    """v3 ``fields`` is MONAI's ``keys``: one name or a list of names."""
    from conftest import resolve
    tree = resolve(V3_SEGRESNET, ["train.pre_transforms.0.args.fields=image"])
    assert tree["train"]["pre_transforms"][0]["args"]["fields"] == "image"


def test_a_right_override_of_each_kind_is_taken_as_its_type():
    from conftest import resolve
    tree = resolve(V41, ["train.optimizer.args.lr=1", "train.model.args.num_res_units='3'",
                         "train.loss.args.squared_pred=false", "train.model.args.strides=[2,2,2,1]",
                         "+train.model.args.dropout=0.1", "train.pre_transforms.3.args.pixdim=1.5"])
    lr = tree["train"]["optimizer"]["args"]["lr"]
    assert lr == 1.0 and isinstance(lr, float)
    units = tree["train"]["model"]["args"]["num_res_units"]
    assert units == 3 and type(units) is int  # '3' (a quoted string) taken as the int the arg takes
    assert tree["train"]["loss"]["args"]["squared_pred"] is False
    assert tree["train"]["model"]["args"]["strides"] == [2, 2, 2, 1]
    assert tree["train"]["model"]["args"]["dropout"] == 0.1
    assert tree["train"]["pre_transforms"][3]["args"]["pixdim"] == 1.5


def test_code_strings_stay_untyped_and_interpolations_are_typed_when_resolved(write_config):
    """An arg of your own class is typed as written, but a lambda, "@obj" or "#expr" is Clara's code:
    any value may replace it. A {name} interpolation is checked when it is resolved (a float arg
    given a first-level string is refused there)."""
    from conftest import resolve

    from clara_hydra.errors import ClaraHydraError
    src = write_config({"epochs": 1, "rate": 0.5, "word": "often", "train": {
        "model": {"path": "custom.Net", "args": {"act": "lambda x: x", "norm": "batch"}},
        "optimizer": {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{rate}"}}}})
    assert resolve(src)["train"]["optimizer"]["args"]["lr"] == 0.5
    assert resolve(src, ["train.model.args.act=[1,2]"])["train"]["model"]["args"]["act"] == [1, 2]
    with pytest.raises(ClaraHydraError, match="custom.Net's 'norm' takes a string, got"):
        resolve(src, ["train.model.args.norm=[1,2]"])
    with pytest.raises(ClaraHydraError, match="could not be converted to Float"):
        resolve(src, ["train.optimizer.args.lr=${word}"])


def test_an_arg_the_search_sets_takes_every_value_the_search_gives(write_config):
    """Written as 0 (an integer) for a class of your own, searched as a float range: the arg
    takes 0.5, and still refuses a word."""
    from conftest import resolve

    from clara_hydra.errors import ClaraHydraError
    src = write_config({"epochs": 1, "train": {"loss": {"path": "custom.Loss", "args": {"alpha": 0}, "search": [
        {"domain": "loss", "type": "float", "args": ["alpha"], "targets": [0.0, 1.0]}]}}})
    assert resolve(src, ["train.loss.args.alpha=0.5"])["train"]["loss"]["args"]["alpha"] == 0.5
    with pytest.raises(ClaraHydraError, match="takes a number, got abc"):
        resolve(src, ["train.loss.args.alpha=abc"])


def test_values_as_the_config_writes_them_are_taken_in_overrides(write_config):
    """A first-level integer takes a number (``"cache_rate": 1``, ``cache_rate=0.5``), and the 1
    stays an integer; an arg of several kinds takes a value of the kind the config writes even
    where MONAI's annotation does not name it (AsDiscreted's ``to_onehot: true``, as Clara v4.0
    wrote it)."""
    from conftest import resolve

    from clara_hydra.errors import ClaraHydraError
    tree = resolve(V40, ["train.post_transforms.1.args.to_onehot=true"])
    assert tree["train"]["post_transforms"][1]["args"]["to_onehot"] is True
    src = write_config({"epochs": 1, "cache_rate": 1, "train": {}})
    assert resolve(src, ["cache_rate=0.5"])["cache_rate"] == 0.5
    assert isinstance(resolve(src)["cache_rate"], int)
    with pytest.raises(ClaraHydraError, match="cache_rate: 'cache_rate' takes a number, got abc"):
        resolve(src, ["cache_rate=abc"])


def test_a_sweep_checks_fixed_values_as_its_trials_parse_them_and_skips_its_own_added_keys(tmp_path):
    """The Optuna sweeper gives a fixed value as text ("3") and keeps a swept ``+key`` out of the
    sweep's own config: neither is refused."""
    from clara_hydra.convert import convert
    from clara_hydra.errors import ClaraHydraError
    from clara_hydra.reader import read
    from clara_hydra.render import write
    from clara_hydra.resolve import compose
    from clara_hydra.typed import check_overrides, check_sweep
    write(convert(read(str(V41))), str(tmp_path))
    cfg = compose(str(tmp_path), "config_train", [])
    check_sweep(cfg, {"train.model.args.num_res_units": ["3"], "train.loss.args.squared_pred": ["True"]})
    check_overrides(cfg, ["+train.model.args.dropout=choice(0.1,0.2)"])
    with pytest.raises(ClaraHydraError, match="takes an integer, but the sweep gives it 'x'"):
        check_sweep(cfg, {"train.model.args.num_res_units": ["x"]})


def test_a_sweep_label_the_param_does_not_have_fails_before_any_trial():
    from clara_hydra.errors import ClaraHydraError
    from clara_hydra.resolve import compose
    from clara_hydra.typed import check_sweep
    cfg = compose(str(ROOT / "examples" / "conf"), "demo", [])
    check_sweep(cfg, {"d1_d2": ["true-false", "false-true"]})
    with pytest.raises(ClaraHydraError, match="hydra.sweeper.params.d1_d2: 'x' is not one of the choices of "
                                              "'d1_d2': true-false, false-true"):
        check_sweep(cfg, {"d1_d2": ["true-false", "x"]})


def test_each_hydra_app_of_a_process_loads_its_own_config(tmp_path):
    """The compose API set up for folder A loads A's config even after another set-up (B) in the
    same process."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.utils import create_config_search_path

    from clara_hydra.convert import convert
    from clara_hydra.reader import read
    from clara_hydra.render import write
    for name, epochs in (("a", 1), ("b", 2)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "c.json").write_text(json.dumps({"epochs": epochs, "train": {}}))
        write(convert(read(str(tmp_path / name / "c.json"))), str(tmp_path / name))
    with initialize_config_dir(config_dir=str(tmp_path / "a")):
        create_config_search_path(str(tmp_path / "b"))
        assert compose("c").epochs == 1


def test_a_written_value_the_annotation_does_not_name_is_kept(write_config):
    """The config is the user's truth: a value MONAI's annotation does not name (a list of names
    for CheckpointLoader's load_dict, as Clara wrote it) composes, and an override of its kind too."""
    from conftest import resolve
    src = write_config({"epochs": 1, "train": {"handlers": [
        {"name": "CheckpointLoader", "args": {"load_path": "x.pt", "load_dict": ["model"]}}]}})
    tree = resolve(src, ["train.handlers.0.args.load_dict=[model,optimizer]"])
    assert tree["train"]["handlers"][0]["args"]["load_dict"] == ["model", "optimizer"]


# ----------------------------------------------------------------------------- the commands

@pytest.fixture(scope="module")
def v41_mmar(tmp_path_factory):
    root = tmp_path_factory.mktemp("types")
    return make_mmar(root / "mmar", synth_data(root / "data", train=2, val=1))


def test_train_refuses_a_wrong_override_before_training(tmp_path, v41_mmar):
    proc = clara_train("--mmar", v41_mmar, "train.model.args.channels=16", f"hydra.run.dir={tmp_path / 'run'}",
                       cwd=tmp_path)
    line = one_error(proc)
    assert "train.model.args.channels: UNet's 'channels' takes a list, got 16" in line, line
    assert not (tmp_path / "run").exists() and "epoch" not in proc.stdout + proc.stderr  # refused while composing


def test_train_refuses_an_added_unknown_arg_before_training(tmp_path, v41_mmar):
    proc = clara_train("--mmar", v41_mmar, "+train.pre_transforms.8.args.probb=0.5", f"hydra.run.dir={tmp_path / 'r'}",
                       cwd=tmp_path)
    line = one_error(proc)
    assert "train.pre_transforms[8].args.probb: RandGaussianNoised has no argument 'probb'" in line, line
    assert "did you mean prob?" in line, line
    assert "finished" not in proc.stdout


def test_a_sweep_value_that_does_not_fit_fails_before_any_trial(tmp_path, v41_mmar):
    storage = tmp_path / "s.db"
    proc = clara_train("--mmar", v41_mmar, "-m", "train.model.args.channels=choice([8,16,32,64,128],16)",
                       f"hydra.sweeper.storage=sqlite:///{storage}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                       cwd=tmp_path)
    line = one_error(proc)
    assert "hydra.sweeper.params.train.model.args.channels: 'train.model.args.channels' takes a list, but the " \
           "sweep gives it 16" in line, line
    assert not storage.exists() or not sqlite3.connect(storage).execute(
        "select count(*) from sqlite_master where name='trials'").fetchone()[0] or \
        sqlite3.connect(storage).execute("select count(*) from trials").fetchone()[0] == 0
    assert not list((tmp_path / "sweep").glob("*/train.log"))


def test_cfg_job_and_help_show_typed_values(tmp_path, v41_mmar):
    conf = v41_mmar / "conf"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config-dir", str(conf), "--config-name",
                           "config_train", "train.optimizer.0.args.lr=1", "--cfg", "job"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"\n +lr: 1\.0\n", proc.stdout), proc.stdout
    assert "???" not in proc.stdout
    helped = subprocess.run([sys.executable, str(ROOT / "train.py"), "--config-dir", str(conf), "--config-name",
                             "config_train", "--help"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert helped.returncode == 0, helped.stderr
    assert "???" not in helped.stdout
    assert "num_res_units: 1" in helped.stdout


# ----------------------------------------------------------------------------- the signature table

def test_the_signature_table_matches_the_installed_monai(tmp_path, capsys):
    """signatures.json is what MONAI, torch and ignite say today (``python -m clara_hydra.signatures
    --check``, run here in the test process); a drifted copy is refused."""
    from clara_hydra.signatures import TABLE_FILE, main
    assert main(["--check"]) == 0, capsys.readouterr().err
    drifted = json.loads(open(TABLE_FILE, encoding="utf-8").read())
    drifted["classes"]["monai.transforms.RandFlipd"]["params"].pop("prob")
    (tmp_path / "t.json").write_text(json.dumps(drifted))
    assert main(["--check", "--table", str(tmp_path / "t.json")]) == 1
    assert "drifted" in capsys.readouterr().err


def test_typing_a_config_imports_neither_torch_nor_monai(tmp_path):
    code = ("import sys; from clara_hydra.resolve import resolve_file; "
            f"resolve_file({str(V41)!r}, ['train.optimizer.args.lr=0.5']); "
            "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", proc.stdout
