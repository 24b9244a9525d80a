"""Hostile and odd input through the real command line: each ends as one clean located line
(exit 2, no traceback, nothing written) or as a correct result. Strings come out as written."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from conftest import ROOT, one_error, run_cli

MODEL = {"name": "UNet", "args": {"spatial_dims": 3}}
SEARCH = {"type": "float", "args": ["lr"], "targets": [0.1, 0.2]}


REFUSED = [
    pytest.param('{"epochs": 1,\n "train": {"model": {"name": "UNet", "search": [],\n'
                 ' "search": [{"type": "enum", "args": ["a"], "targets": [1]}]}}}', None, "config_train.json",
                 ["train.model.search", "written twice"], id="duplicate-search-key"),
    pytest.param('{"epochs": 1, "epochs": 2}', None, "config_train.json", ["epochs: key 'epochs' is written twice"],
                 id="duplicate-top-key"),
    pytest.param('{"epochs": 1,\n  "lr": 1e999}', None, "config_train.json", ["line 2, column 9", "1e999"],
                 id="overflowing-number"),
    pytest.param('{"epochs": NaN}', None, "config_train.json", ["line 1, column 12", "NaN"], id="nan"),
    pytest.param('{"epochs": 1,\n "x": "-Infinity", "lr": -Infinity}', None, "config_train.json",
                 ["line 2, column 26", "-Infinity"], id="infinity-after-a-string-that-looks-like-it"),
    pytest.param({"epochs": 1}, {"hydra": 1}, "config_train.json", ["environment.json: hydra:", "reserved"],
                 id="env-key-hydra"),
    pytest.param({"epochs": 1}, {"clara_hydra": {}}, "config_train.json", ["clara_hydra:", "reserved"],
                 id="env-key-clara_hydra"),
    pytest.param({"epochs": 1, "train": {"model": dict(MODEL, search=[
        {"type": "enum", "args": ["norm#defaults"], "targets": ["a", "b"]}])}}, None, "config_train.json",
                 ["train.model.search[0].args[0]", "alias 'defaults' is reserved"], id="alias-defaults"),
    pytest.param({"epochs": 1, "search": [{"type": "enum", "args": ["@hydra"], "targets": [True, False]}]}, None,
                 "config_train.json", ["search[0].args[0]", "'hydra' is reserved"], id="tag-hydra"),
    pytest.param({"epochs": 1, "determinism": {"random_seed": 0, "search": [SEARCH]}}, None, "config_train.json",
                 ["determinism.search: 'search' outside a component: never searched there"],
                 id="search-in-a-first-level-object"),
    pytest.param({"epochs": 1, "xs": [{"search": [SEARCH]}]}, None, "config_train.json",
                 ["xs[0].search: 'search' outside a component"], id="search-in-a-first-level-list"),
    pytest.param({"epochs": 1, "train": {"model": {"name": "UNet#m"}},
                  "validate": {"model": {"ref": "m", "search": [SEARCH]}}}, None, "config_train.json",
                 ["validate.model.search: 'search' beside a ref: the ref takes train's component 'm' as it is"],
                 id="search-beside-a-ref"),
    pytest.param({"epochs": 1, "lr": 0.1, "train": {"model": {"name": "UNet#m"}},
                  "validate": {"model": {"ref": "m", "apply": {"x": "lr"}}}}, None, "config_train.json",
                 ["validate.model.apply: 'apply' beside a ref", "never applied here"], id="apply-beside-a-ref"),
    pytest.param({"epochs": 1}, {"X": {"search": [SEARCH]}}, "config_train.json",
                 ["environment.json: X.search: 'search' in environment.json, whose values are data"],
                 id="search-in-environment-json"),
    pytest.param({"epochs": 1, "train": {"model": dict(MODEL, args={"search": [SEARCH]})}}, None, "config_train.json",
                 ["train.model.args.search: 'search' inside args, where it is an init arg"], id="search-inside-args"),
    pytest.param({"epochs": 1, "train": {"model": dict(MODEL, args={"x": [[{"name": "Foo", "search": [SEARCH]}]]})}},
                 None, "config_train.json",
                 ["train.model.args.x[0][0].search: 'search' of a component nested deeper in args than Clara builds"],
                 id="search-in-a-list-of-lists-of-components"),
    pytest.param({"epochs": 1, "train": {"pre_transforms": [{"name": "LoadImaged"}, {"name": "LoadImaged"}]},
                  "validate": {"pre_transforms": [{"ref": "LoadImaged"}]}}, None, "config_train.json",
                 ["validate.pre_transforms[0].ref: ref 'LoadImaged' is ambiguous: 2 train components go by that "
                  "name (train.pre_transforms[0], train.pre_transforms[1])", "alias"], id="ambiguous-ref"),
    pytest.param({"epochs": 1, "train": {"lr_policy": {"name": "StepLR", "args": {"poly_power": 0.9}, "search": [
        {"type": "float", "args": [" poly_power "], "targets": [0.1, 0.9]}]}}}, None, "config_train.json",
                 ["train.lr_policy.search[0].args[0]: search arg \" poly_power \" is not an arg name (it holds blanks)",
                  "did you mean 'poly_power'"], id="search-arg-with-spaces"),
    pytest.param({"epochs": 1, "train": {"lr_policy": {"name": "StepLR", "args": {"poly_power": 0.9}, "search": [
        {"type": "enum", "args": ["poly_power", "poly_power"], "targets": [[0.1, 0.2]]}]}}}, None, "config_train.json",
                 ["train.lr_policy.search[0].args[1]: 'train.lr_policy.args.poly_power' is written twice in this "
                  "entry"], id="search-arg-twice-in-one-entry"),
    pytest.param({"epochs": 1, "train": {"model": MODEL}}, {"train": "x"}, "config_train.json",
                 ["environment.json: train: the environment key 'train' names a section of the config"],
                 id="env-key-a-section"),
    pytest.param({"epochs": 1}, None, "clara_schema.json", ["a config named 'clara_schema'"], id="file-clara_schema"),
    pytest.param({"epochs": 1}, None, "hydra.json", ["a config named 'hydra'"], id="file-hydra"),
    pytest.param({"epochs": 1, "train": {"model": dict(MODEL, disabled="maybe")}}, None, "config_train.json",
                 ["train.model.disabled", "must be true/false", '"maybe"'], id="disabled-maybe"),
    pytest.param({"epochs": 1, "train": {"model": dict(MODEL, disabled=2)}}, None, "config_train.json",
                 ["train.model.disabled"], id="disabled-2"),
    pytest.param('{"epochs": 1, "train": {"model": {"name": "UNet", "args": {"x": "a\\ud800"}}}}', None,
                 "config_train.json", ["train.model.args.x", "lone UTF-16 surrogate"], id="lone-surrogate"),
    pytest.param({"epochs": 1, "train": {"pre_transforms": [{"name": "RandFlipd#a"}, {"name": "RandZoomd#b"}]},
                  "validate": {"model": [{"ref": "a"}, {"ref": "b"}]}}, None, "config_train.json",
                 ["validate.model", "exactly one of the 2 alternatives must be enabled, 2 are"],
                 id="refs-as-alternatives-both-enabled"),
    pytest.param({"useA": False, "useB": True, "search": [{"type": "enum", "args": ["useA", "useB"],
                                                          "targets": [[False, True], [True, True]]}],
                  "train": {"optimizer": [{"name": "Adam", "disabled": "{useA}"},
                                          {"name": "SGD", "disabled": "{useB}"}]}},
                 None, "config_train.json", ["train.optimizer", "0 are", "for the combination useA_useB=true-true"],
                 id="name-driven-alternatives-combination"),
]


@pytest.mark.parametrize("doc,env,name,wanted", REFUSED)
def test_bad_input_is_one_located_line(write_config, tmp_path, capsys, doc, env, name, wanted):
    """``clara-hydra convert`` run in this process (its main, as the command's entry point calls it;
    the command itself refuses the same in test_space_and_resolve_refuse_alike)."""
    import subprocess

    from clara_hydra.cli import main
    src = write_config(doc, name, env)
    code = main(["convert", str(src), "-o", str(tmp_path / "out")])
    out = capsys.readouterr()
    line = one_error(subprocess.CompletedProcess([], code, out.out, out.err))
    for want in wanted:
        assert want in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("case", ["duplicate-search-key", "overflowing-number", "env-key-hydra", "disabled-maybe"])
@pytest.mark.parametrize("command", ["space", "resolve"])
def test_space_and_resolve_refuse_alike(write_config, tmp_path, case, command):
    (doc, env, name, wanted), = [p.values for p in REFUSED if p.id == case]
    line = one_error(run_cli(command, write_config(doc, name, env)))
    for want in wanted:
        assert want in line, line


def test_enum_options_one_to_python_are_distinct_options(write_config, tmp_path):
    """1, true and 1.0 are three options (Optuna's choice index would make them one)."""
    from conftest import resolve, space
    src = write_config({"epochs": 1, "x": 1,
                        "search": [{"type": "enum", "args": ["x"], "targets": [[1], [True], [1.0]]}]})
    (param,) = space(src)
    assert param["choices"] == {"v1": [1], "vtrue": [True], "1p0": [1.0]}
    for label, text in (("v1", "1"), ("vtrue", "true"), ("1p0", "1.0")):
        assert json.dumps(resolve(src, [f"{param['name']}={label}"])["x"]) == text


def test_too_deep_nesting_is_refused_in_one_line(write_config, tmp_path):
    deep: dict = {"x": 1}
    for _ in range(600):
        deep = {"k": deep}
    src = write_config({"epochs": 1, "deep": deep})
    assert "nests 602 levels deep" in one_error(run_cli("convert", src, "-o", tmp_path / "out"))


def test_output_folder_that_is_a_file_is_one_line(write_config, tmp_path):
    src = write_config({"epochs": 1})
    (tmp_path / "afile").write_text("")
    assert "cannot write there" in one_error(run_cli("convert", src, "-o", tmp_path / "afile"))


def _at(tree, loc: tuple):
    for key in loc:
        tree = tree[key]
    return tree


# (config, its search params {name: choices}, [(overrides, {place (keys, as a tuple): value} in the
# --enabled-only config)])
@pytest.mark.parametrize("doc,params,runs", [
    pytest.param({"epochs": 1, "train": {"optimizer": [{"name": "Adam#optA"}, {"name": "SGD#optB", "disabled": True}]},
                  "validate": {"optimizer": [{"ref": "optA"}, {"ref": "optB"}]}}, {},
                 [([], {("train", "optimizer"): {"name": "Adam#optA"},  # the disabled one's ref goes with it
                        ("validate", "optimizer"): {"name": "Adam#optA"}})],
                 id="refs-follow-their-components"),
    pytest.param({"epochs": 1,
                  "train": {"my.opt": {"optimizer": [{"name": "Adam"}, {"name": "SGD", "disabled": True}]}}}, {},
                 [([], {("train", "my.opt"): {"optimizer": {"name": "Adam"}}})],
                 id="a-dot-in-a-key-on-the-way"),
    pytest.param({"clara": 1, "hydra_": 2, "search": [{"type": "enum", "args": ["clara", "hydra_"],
                                                       "targets": [[1, 2], [3, 4]]}], "train": {"model": MODEL}},
                 {"clara_hydra_choice": {"1-2": [1, 2], "3-4": [3, 4]}},  # "clara_hydra" is the reserved key
                 [([], {("clara",): 1, ("hydra_",): 2}),
                  (["clara_hydra_choice=3-4"], {("clara",): 3, ("hydra_",): 4, ("train", "model"): MODEL})],
                 id="a-generated-name-never-a-reserved-one"),
    pytest.param({"epochs": 1, "train": {"pre_transforms": [{"name": "LoadImaged", "args": {"keys": "a"}}],
                                         "iteration": {"name": "Interaction", "args": {"transforms": [
                                             {"name": "LoadImaged", "args": {"keys": "b"}}]}}},
                  "validate": {"pre_transforms": [{"ref": "LoadImaged"}]}}, {},
                 [([], {("validate", "pre_transforms"): [{"name": "LoadImaged", "args": {"keys": "a"}}]})],
                 id="a-ref-takes-the-component-of-its-own-slot"),  # (deepgrow's AddGuidanceSignald)
])
def test_odd_but_valid_configs_convert_and_resolve(write_config, tmp_path, doc, params, runs):
    src = write_config(doc)
    proc = run_cli("convert", src, "-o", tmp_path / "conf")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("space", src, "--json")
    assert proc.returncode == 0, proc.stderr
    assert {p["name"]: p["choices"] for p in json.loads(proc.stdout)} == params
    for overrides, want in runs:
        proc = run_cli("resolve", tmp_path / "conf" / "config_train.yaml", *overrides, "--json", "--enabled-only")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert {loc: _at(out, loc) for loc in want} == want, overrides


def test_unwritable_output_folder_is_one_line(write_config, tmp_path):
    src = write_config({"epochs": 1})
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_error(run_cli("convert", src, "-o", blocker / "conf"))
    assert str(blocker / "conf") in line and "cannot write there" in line


# ----------------------------------------------------------------------------- strings as written

STRINGS = ["${oc.env:HOME}", "\\${oc.env:HOME}", "\\\\${x}", "C:\\data\\", "???", "\\???", "$HOME/readers",
           "%macro", "a::b", "@#x", "x${", "{{literal}}", "plain", "1e5", "+1e5", "-2e3", "1e-4", "0x10", "~",
           "{hydra}", "line\nbreak"]


def test_every_string_comes_out_as_written(write_config, tmp_path):
    """Values, keys, environment.json values and enum options: through resolve and through the YAML."""
    os.environ.setdefault("HOME", "/root")
    doc = {"epochs": 1, "strs": STRINGS, "train": {"model": {"name": "UNet", "args": {
        "opt": "x", **{f"k{i}": s for i, s in enumerate(STRINGS)}},
        "search": [{"type": "enum", "args": ["opt"], "targets": ["${oc.env:HOME}", "\\${y}", "plain"]}]}}}
    src = write_config(doc, env={"ENVSTR": "${oc.env:HOME}", "ENVQ": "???"})
    proc = run_cli("resolve", src, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["strs"] == STRINGS
    assert [out["train"]["model"]["args"][f"k{i}"] for i in range(len(STRINGS))] == STRINGS
    assert out["train"]["model"]["args"]["opt"] == "x"
    # every option of the enum, chosen on the command line by its label, comes out as written
    (param,) = json.loads(run_cli("space", src, "--json").stdout)
    assert param["name"] == "UNet_opt"
    choices = {"oc_env_HOME": ["${oc.env:HOME}"], "y": ["\\${y}"], "plain": ["plain"]}
    assert param["choices"] == choices
    for label, (value,) in choices.items():
        got = json.loads(run_cli("resolve", src, f"UNet_opt={label}", "--json").stdout)
        assert got["train"]["model"]["args"]["opt"] == value, label  # oc_env_HOME: the literal, not $HOME
    # the converted YAML holds them escaped: OmegaConf reads back exactly the strings
    from omegaconf import OmegaConf
    assert run_cli("convert", src, "-o", tmp_path / "conf").returncode == 0
    oc = OmegaConf.load(tmp_path / "conf" / "config_train.yaml")
    assert list(oc.strs) == STRINGS
    assert oc.ENVSTR == "${oc.env:HOME}" and oc.ENVQ == "???"


@pytest.mark.parametrize("written,want", [
    pytest.param("C:\\{epochs}", "C:\\3", id="backslash-before-a-name"),
    pytest.param("\\\\{epochs}", "\\\\3", id="two-backslashes-before-a-name"),
    pytest.param("???{epochs}", "???3", id="missing-marker-next-to-a-name"),
    pytest.param("{epochs}\n", "3\n", id="name-then-newline"),
    pytest.param("{epochs}{{x}}", "3{x}", id="name-and-braces-formatted-as-clara-did"),
])
def test_strings_with_names_are_formatted_as_clara_did(write_config, tmp_path, written, want):
    src = write_config({"epochs": 3, "s": written})
    proc = run_cli("resolve", src, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["s"] == want


def test_literal_clara_strings_reach_monai_as_written():
    """$, % and @ at the start of a plain Clara string are not MONAI code, macros or references."""
    from monai.bundle import ConfigParser

    from clara_hydra.train.bundle import Builder
    tree = {"train": {"model": {"name": "UNet", "args": {"spatial_dims": 3, "in_channels": 1, "out_channels": 2,
                                                         "channels": [4, 8], "strides": [2]}},
                      "inferer": {"name": "SlidingWindowInferer", "args": {
                          "roi_size": [8, 8, 8], "mode": "$HOME/readers"}}}}
    bundle = Builder(tree, device="cpu", amp=False).build()
    parser = ConfigParser(bundle)
    parser.parse()
    assert parser.get_parsed_content("train#inferer#mode") == "$HOME/readers"


# ----------------------------------------------------------------------------- YAML that loads

def test_long_lines_load(write_config, tmp_path):
    floats = [round(0.1 * i + 0.123456789, 9) for i in range(13)]
    name = "config_" + "x" * 150
    src = write_config({"epochs": 1, "train": {"model": dict(MODEL, search=[
        {"type": "enum", "args": ["dropout"], "targets": floats}])}}, name=name + ".json")
    proc = run_cli("convert", src, "-o", tmp_path / "conf")
    assert proc.returncode == 0, proc.stderr
    doc = yaml.safe_load((tmp_path / "conf" / (name + ".yaml")).read_text())
    assert doc["hydra"]["sweeper"]["study_name"] == name
    sweep = doc["hydra"]["sweeper"]["params"][MODEL["name"] + "_dropout"]
    assert sweep == "choice(" + ", ".join(repr(f) for f in floats) + ")"
    got = json.loads(run_cli("resolve", tmp_path / "conf" / (name + ".yaml"), f"train.model.args.dropout={floats[7]}",
                             "--json").stdout)
    assert got["train"]["model"]["args"]["dropout"] == floats[7]


@pytest.mark.parametrize("shape", ["4000-components", "10000-element-list", "400-levels"])
def test_large_configs_convert_and_resolve(write_config, tmp_path, shape):
    if shape == "4000-components":
        doc = {"epochs": 1, "train": {"pre_transforms": [
            {"name": "RandFlipd", "args": {"keys": ["image"], "prob": 0.5}} for _ in range(4_000)]}}
    elif shape == "10000-element-list":
        doc = {"epochs": 1, "big": list(range(10_000)), "train": {"model": MODEL}}
    else:
        deep: dict = {"x": 1}
        for _ in range(398):
            deep = {"k": deep}
        doc = {"epochs": 1, "deep": deep, "train": {"model": MODEL}}
    src = write_config(doc)
    proc = run_cli("convert", src, "-o", tmp_path / "conf")
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("resolve", tmp_path / "conf" / "config_train.yaml", "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == doc


# ----------------------------------------------------------------------------- names and overrides

def test_an_arg_with_a_dot_gets_an_overridable_name(write_config, tmp_path):
    src = write_config({"epochs": 1, "train": {"model": dict(MODEL, args={"a.b": 1}, search=[
        {"type": "float", "args": ["a.b"], "targets": [0, 2]}])}})
    (param,) = json.loads(run_cli("space", src, "--json").stdout)
    assert "." not in param["name"], param
    out = json.loads(run_cli("resolve", src, f"{param['name']}=1.5", "--json").stdout)
    assert out["train"]["model"]["args"] == {"a.b": 1.5}


@pytest.mark.parametrize("argv", [
    pytest.param(["resolve", "{src}", "epochs=3", "--json"], id="flags-after"),
    pytest.param(["resolve", "--json", "{src}", "epochs=3"], id="flags-first"),
    pytest.param(["resolve", "{src}", "--json", "epochs=3", "--enabled-only"], id="flags-between"),
])
def test_resolve_takes_flags_before_or_after_overrides(argv):
    src = ROOT / "examples" / "demo.json"
    proc = run_cli(*[str(src) if a == "{src}" else a for a in argv])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["epochs"] == 3


def test_an_override_outside_the_search_domain_warns_once():
    proc = run_cli("resolve", ROOT / "examples" / "demo.json", "learning_rate=0.5", "--json")
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if ln.startswith("warning:")]
    assert [w for w in warnings if "learning_rate=0.5 is outside its search domain [0.0001, 0.01]" in w], warnings
    assert json.loads(proc.stdout)["learning_rate"] == 0.5


def test_an_override_inside_the_domain_is_quiet():
    proc = run_cli("resolve", ROOT / "examples" / "demo.json", "learning_rate=0.005", "--json")
    assert proc.returncode == 0 and "outside its search domain" not in proc.stderr


@pytest.mark.parametrize("override,wanted", [
    pytest.param("epochs=null", "'epochs' takes an integer, got null", id="epochs-null"),
    pytest.param("epochs=abc", "'epochs' takes an integer, got abc", id="epochs-abc"),
    pytest.param("learning_rate=inf", "which JSON cannot hold", id="inf-in-json"),
])
def test_bad_overrides_are_one_line(override, wanted):
    line = one_error(run_cli("resolve", ROOT / "examples" / "demo.json", override, "--json"))
    assert wanted in line, line


def test_report_never_creates_a_database(tmp_path):
    line = one_error(run_cli("report", "demo", "--storage", "sqlite:///typo.db", cwd=tmp_path))
    assert "no such storage file" in line and "typo.db" in line
    assert not (tmp_path / "typo.db").exists()


# ----------------------------------------------------------------------------- code only where written
def _handler(tree_or_path, overrides=()):
    """The first train handler, built by training's own builder (a tree, or a Clara config file
    resolved with ``overrides`` as a run would)."""
    from conftest import resolve

    from clara_hydra.train.run import _parsed, build
    tree = tree_or_path if isinstance(tree_or_path, dict) else resolve(tree_or_path, overrides, enabled_only=True)
    parser, _, _ = build(tree, config_file=None, device="cpu", amp=False)
    return _parsed(parser, "train::handlers")[0]


def _stats(value) -> dict:
    return {"train": {"handlers": [{"name": "StatsHandler", "args": {"state_attributes": value}}]}}


def _opens(path) -> dict:
    return {"_target_": "builtins.open", "file": str(path), "mode": "w"}


@pytest.mark.parametrize("shape", [
    pytest.param(lambda d: d, id="a-dict-arg"),
    pytest.param(lambda d: [1, d], id="a-list-item"),
    pytest.param(lambda d: {"outer": [[d]]}, id="deep-inside"),
    pytest.param(lambda d: {"_requires_": d, "x": 1}, id="requires-key"),
    pytest.param(lambda d: {"a#b": d, "c::d": "e#f"}, id="keys-with-id-separators"),
])
def test_a_target_dict_in_args_is_data_never_built(tmp_path, shape):
    """Only Clara's component form builds an object: a ``_target_`` dict anywhere in the args
    reaches the class as the dict it is (Clara passed it so), and no file is opened."""
    value = shape(_opens(tmp_path / "probe"))
    assert _handler(_stats(value)).state_attributes == value
    assert not (tmp_path / "probe").exists()


def test_a_target_dict_picked_by_its_label_is_data(write_config, tmp_path):
    doc = {"epochs": 1, "search": [{"type": "enum", "args": ["attrs"],
                                    "targets": [[{"ok": 1}], [_opens(tmp_path / "probe")]]}],
           "train": {"handlers": [{"name": "StatsHandler", "args": {"state_attributes": {"ok": 1}},
                                   "apply": {"state_attributes": "attrs"}}]}}
    src = write_config(doc)
    assert _handler(src, ["attrs_choice=opt2"]).state_attributes == _opens(tmp_path / "probe")
    assert not (tmp_path / "probe").exists()


@pytest.mark.parametrize("value,used", [
    pytest.param("#open({probe!r}, 'w')", "{X}", id="expression"),
    pytest.param("lambda x: open({probe!r}, 'w')", "{X}", id="lambda"),
    pytest.param("@optimizer", "{X}", id="reference"),
    pytest.param("#open({probe!r}, 'w')", "{X}/more", id="expression-inside-a-string"),
    pytest.param("x#y", "{X}", id="a-hash-inside"),
])
def test_an_environment_value_is_data_never_code(write_config, tmp_path, value, used):
    probe = str(tmp_path / "probe")
    text = value.format(probe=probe)
    src = write_config(_stats(None) | {"epochs": 1}, env={"X": text})
    doc = json.loads(src.read_text())
    doc["train"]["handlers"][0]["args"]["tag_name"] = used
    src.write_text(json.dumps(doc))
    assert _handler(src).tag_name == used.replace("{X}", text)
    assert not (tmp_path / "probe").exists()


class _Opens:
    """Unpickled, it opens a file: what a crafted resume point would do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


@pytest.mark.parametrize("content", [
    pytest.param("code", id="a-pickle-that-runs-code"),
    pytest.param("truncated", id="truncated"),
    pytest.param("empty", id="empty"),
    pytest.param("not-a-dict", id="a-tensor-only"),
])
def test_a_resume_point_that_is_not_one_restarts_the_trial_and_runs_nothing(tmp_path, capsys, content):
    """The resume point is read as MONAI reads a checkpoint (tensors and plain values): a crafted
    one runs nothing, a damaged one (a full disk) is no crash: the trial trains from its start."""
    import torch

    from clara_hydra.train.resume import ResumePoint
    point = ResumePoint(str(tmp_path), None, None, None, [], {})
    os.makedirs(os.path.dirname(point.path))
    state = {"epoch": 1, "network": {"w": torch.ones(2)}, "evil": _Opens(str(tmp_path / "probe"))}
    if content == "code":
        torch.save(state, point.path)
    elif content == "truncated":
        del state["evil"]
        torch.save(state, point.path)
        with open(point.path, "r+b") as fh:
            fh.truncate(os.path.getsize(point.path) // 2)
    elif content == "empty":
        open(point.path, "wb").close()
    else:
        torch.save(torch.ones(2), point.path)
    assert point.load() == 0
    assert not (tmp_path / "probe").exists()
    assert not os.path.exists(point.path)
    err = capsys.readouterr().err
    assert f"the resume point {point.path} cannot be read" in err and "training the trial from its start" in err


# ----------------------------------------------------------------------------- whole or nothing
def _everything(folder) -> list:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("command,limit", [
    pytest.param("convert", 1000, id="convert"),
    pytest.param("synth-data", 20000, id="synth-data"),
])
def test_a_command_that_fails_on_a_full_disk_leaves_nothing(write_config, tmp_path, command, limit):
    """The disk fills while the command writes (no file may grow past ``limit`` bytes): one line
    naming the folder, and nothing of its output stays, neither a partial folder nor a temporary
    file, nor the folders it made on the way."""
    out = tmp_path / "new" / "deeper" / "out"
    args = (["convert", ROOT / "examples" / "demo_v41.json", "-o", out] if command == "convert"
            else ["synth-data", out, "--shape", "32", "32", "32"])
    before = _everything(tmp_path)
    line = one_error(run_cli(*args, cwd=tmp_path, file_limit=limit))
    assert line.startswith(f"error: {out}: cannot write there: File too large"), line
    assert _everything(tmp_path) == before


@pytest.mark.parametrize("args,wanted", [
    pytest.param({"shape": (0, 32, 32)}, "--shape must be 8 to 1024 voxels a side", id="zero-size"),
    pytest.param({"shape": (100000, 100000, 100000)}, "--shape must be 8 to 1024", id="huge-size"),
    pytest.param({"spacing": (float("nan"), 1, 1)}, "--spacing must be sizes in mm > 0", id="nan-spacing"),
    pytest.param({"spacing": (0, 1, 1)}, "--spacing must be sizes in mm > 0", id="zero-spacing"),
    pytest.param({"n_train": 0}, "--train must be from 1 to 10000 volumes", id="no-training-volume"),
    pytest.param({"n_val": -1}, "--val must be from 1 to 10000", id="negative-validation"),
    pytest.param({"seed": 2**40}, "--seed must be from 0 to 2**32 - 1", id="huge-seed"),
])
def test_synth_data_refuses_what_makes_no_data_set(args, wanted):
    from clara_hydra.errors import ClaraHydraError
    from clara_hydra.synth import check
    given = dict(n_train=2, n_val=1, shape=(32, 32, 32), spacing=(1.0, 1.0, 1.0), seed=0) | args
    with pytest.raises(ClaraHydraError) as info:
        check(**given)
    assert wanted in info.value.format()


def test_synth_data_checks_before_it_writes(tmp_path):
    line = one_error(run_cli("synth-data", tmp_path / "d", "--shape", "0", "32", "32", cwd=tmp_path))
    assert line.startswith("error: --shape: --shape must be 8 to 1024 voxels a side"), line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("lists,key,wanted", [
    pytest.param({"training": ["a.nii.gz"]}, "training", ["Every item in items must be a dict", '{"image": "...",'],
                 id="items-that-are-strings"),
    pytest.param({"training": []}, "training", ["the 'training' list of", "is empty: nothing to train on"],
                 id="empty-training-list"),
    pytest.param({"validation": []}, "validation", ["the 'validation' list of", "is empty: nothing to validate"],
                 id="empty-validation-list"),
    pytest.param({"training": [{"image": "a.nii.gz"}]}, "validation", ["cannot read the 'validation' list"],
                 id="no-such-list"),
])
def test_a_datalist_that_lists_nothing_to_train_on_is_one_located_line(tmp_path, lists, key, wanted):
    from clara_hydra.errors import BuildError
    from clara_hydra.train.data import load_datalist
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(lists))
    where = "train.dataset" if key == "training" else "validate.dataset"
    with pytest.raises(BuildError) as info:
        load_datalist(str(path), str(tmp_path), key, where)
    line = info.value.format()
    assert info.value.location == where
    for want in wanted:
        assert want in line, line
