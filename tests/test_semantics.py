"""One case per construct of SPEC's "Clara semantics", on small configs written here.

Each case resolves a config through the real Hydra compose path (with overrides) and checks
the effective Clara config, and where it matters the search space (`space --json` objects).
"""

from __future__ import annotations

import re

import pytest
from conftest import cases, resolve, space


def at(tree, path: str):
    node = tree
    for key, idx in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path):
        node = node[int(idx)] if idx else node[key]
    return node


def T(cls, **args):
    return {"name": cls, "args": args}


def cfg(*pre, top=None, search=None, validate=None, **train):
    data = dict(top or {"epochs": 3, "learning_rate": 0.001})
    if search is not None:
        data["search"] = search
    data["train"] = {"pre_transforms": list(pre), **train}
    if validate is not None:
        data["validate"] = validate
    return data


FLIP = {"name": "RandomAxisFlip", "args": {"fields": ["image", "label"], "probability": 0.0}}
ROT = {"name": "RandomRotate3D", "args": {"fields": ["image", "label"], "probability": 0.0}}

# (id, config, env, overrides, enabled_only, {path: expected value} or {path: MISSING})
MISSING = object()
CASES = [
    ("name-and-args-kept", cfg(T("LoadNifti", fields=["image"])), None, [], False,
     {"train.pre_transforms[0]": {"name": "LoadNifti", "args": {"fields": ["image"]}}, "epochs": 3}),
    ("byoc-path-kept", cfg({"name": "Mine", "path": "custom.MyTx", "args": {"a": 1}}), None, [], False,
     {"train.pre_transforms[0].path": "custom.MyTx", "train.pre_transforms[0].name": "Mine"}),
    ("disabled-written", cfg({**FLIP, "disabled": True}), None, [], False,
     {"train.pre_transforms[0].disabled": True}),
    ("disabled-name-ref-is-bool", cfg({**FLIP, "disabled": "{skip}"}, top={"skip": True}), None, [], False,
     {"train.pre_transforms[0].disabled": True}),
    ("disabled-dropped-enabled-only", cfg({**FLIP, "disabled": True}, ROT), None, [], True,
     {"train.pre_transforms[0].name": "RandomRotate3D"}),
    ("float-search-default-is-written", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "float", "args": ["probability"], "targets": [0.0, 1.0]}]}),
     None, [], False, {"train.pre_transforms[0].args.probability": 0.0, "train.pre_transforms[0].search": MISSING}),
    ("float-search-override", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "float", "args": ["probability"], "targets": [0.0, 1.0]}]}),
     None, ["train.pre_transforms.0.args.probability=0.25"], False, {"train.pre_transforms[0].args.probability": 0.25}),
    ("int-search-override", cfg(T("Crop") | {"search": [
        {"domain": "transform", "type": "int", "args": ["n"], "targets": [1, 4]}], "args": {"n": 2}}),
     None, ["train.pre_transforms.0.args.n=4"], False, {"train.pre_transforms[0].args.n": 4}),
    ("enum-scalar-label", cfg(), None, ["train.model.args.norm=INSTANCE"], False,
     {"train.model.args.norm": "INSTANCE"}),
    ("enum-list-value", cfg(), None, ["UNet_channels=8-16"], False, {"train.model.args.channels": [8, 16]}),
    ("enum-list-value-default", cfg(), None, [], False, {"train.model.args.channels": [16, 32]}),
    ("joint-enum", cfg(model={"name": "UNet", "args": {"a": 1, "b": "x"}, "search": [
        {"domain": "net", "type": "enum", "args": ["a", "b"], "targets": [[1, "x"], [2, "y"]]}]}),
     None, ["UNet_a_b=2-y"], False, {"train.model.args.a": 2, "train.model.args.b": "y"}),
    ("bare-string-args", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "float", "args": "probability", "targets": [0.0, 1.0]}]}),
     None, ["train.pre_transforms.0.args.probability=0.5"], False, {"train.pre_transforms[0].args.probability": 0.5}),
    ("attr-search-default-false", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]}]}),
     None, [], False, {"train.pre_transforms[0].disabled": False}),
    ("attr-search-override", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]}]}, ROT),
     None, ["train.pre_transforms.0.disabled=true"], True, {"train.pre_transforms[0].name": "RandomRotate3D"}),
    ("alias-apply-follows", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "enum", "args": ["probability#prob"], "targets": [0.0, 1.0]}]},
        {**ROT, "apply": {"probability": "prob"}}),
     None, ["prob=1.0"], False, {"train.pre_transforms[0].args.probability": 1.0,
                                 "train.pre_transforms[1].args.probability": 1.0,
                                 "train.pre_transforms[1].apply": MISSING, "prob": MISSING}),
    ("apply-holds-without-sweep", cfg({**FLIP, "args": {"probability": 0.3}, "search": [
        {"domain": "transform", "type": "float", "args": ["probability#prob"], "targets": [0.0, 1.0]}]},
        {**ROT, "apply": {"probability": "prob"}}),
     None, [], False, {"train.pre_transforms[1].args.probability": 0.3}),
    ("disabled-alias-floats-to-bool", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "enum", "args": ["@disabled#d"], "targets": [0.0, 1.0]}]},
        {**ROT, "apply": {"@disabled": "d"}}),
     None, ["d=1.0"], False, {"train.pre_transforms[0].disabled": True, "train.pre_transforms[1].disabled": True}),
    ("top-level-tags-mutually-exclusive",
     cfg({**FLIP, "apply": {"@disabled": "d1"}}, {**ROT, "apply": {"@disabled": "d2"}},
         search=[{"domain": "transform", "type": "enum", "args": ["d1", "d2"],
                  "targets": [[True, False], [False, True]]}]),
     None, ["d1_d2=false-true"], True,
     {"train.pre_transforms": [{**FLIP, "disabled": False}], "d1": False, "d2": True}),
    ("top-level-at-tag", cfg({**FLIP, "apply": {"@disabled": "myTransformDisable"}},
        search=[{"domain": "transform", "type": "enum", "args": ["@myTransformDisable"],
                 "targets": [[True], [False]]}]),
     None, [], False, {"myTransformDisable": True, "train.pre_transforms[0].disabled": True}),
    ("top-level-existing-param", cfg(top={"use_amp": False, "epochs": 1},
        search=[{"domain": "net", "type": "enum", "args": ["use_amp"], "targets": [[True], [False]]}]),
     None, [], False, {"use_amp": False}),
    ("new-float-param-defaults-to-low", cfg({**FLIP, "apply": {"probability": "p"}},
        search=[{"domain": "transform", "type": "float", "args": ["p"], "targets": [0.2, 0.8]}]),
     None, [], False, {"p": 0.2, "train.pre_transforms[0].args.probability": 0.2}),
    ("lr-search", cfg(top={"learning_rate": 0.001, "lr_search": [1e-4, 2e-3]}), None, ["learning_rate=0.0005"], False,
     {"learning_rate": 0.0005, "lr_search": MISSING}),
    ("lr-search-new-param-low", cfg(top={"epochs": 1, "lr_search": [1e-4, 2e-3]}), None, [], False,
     {"learning_rate": 1e-4}),
    ("first-level-alias-applied", cfg({**FLIP, "apply": {"probability": "lr"}}, top={"learning_rate": 0.5},
        search=[{"domain": "lr", "type": "float", "args": ["learning_rate#lr"], "targets": [0.1, 0.9]}]),
     None, ["learning_rate=0.7"], False, {"train.pre_transforms[0].args.probability": 0.7}),
    ("apply-names-unsearched-param",
     cfg({"name": "Trainer", "args": {"max_epochs": 1}, "apply": {"max_epochs": "epochs"}}),
     None, ["epochs=9"], False, {"train.pre_transforms[0].args.max_epochs": 9}),
    ("multi-arg-float-shares-value", cfg({"name": "Shift", "args": {"a": 0.1, "b": 0.1}, "search": [
        {"domain": "transform", "type": "float", "args": ["a", "b"], "targets": [0.0, 1.0]}]}),
     None, ["Shift_a_b=0.6"], False,
     {"train.pre_transforms[0].args.a": 0.6, "train.pre_transforms[0].args.b": 0.6}),
    ("multi-arg-place-sets-its-own", cfg({"name": "Shift", "args": {"a": 0.1, "b": 0.1}, "search": [
        {"domain": "transform", "type": "float", "args": ["a", "b"], "targets": [0.0, 1.0]}]}),
     None, ["train.pre_transforms.0.args.a=0.6"], False,
     {"train.pre_transforms[0].args.a": 0.6, "train.pre_transforms[0].args.b": 0.1}),
    ("alternatives-exactly-one", cfg(optimizer=[
        {"name": "Adam", "apply": {"@disabled": "o1"}}, {"name": "Novograd", "apply": {"@disabled": "o2"}}],
        search=[{"domain": "net", "type": "enum", "args": ["o1", "o2"], "targets": [[False, True], [True, False]]}]),
     None, ["o1_o2=Novograd"], True, {"train.optimizer": {"name": "Novograd", "disabled": False}}),
    ("ref-follows-search", cfg({**FLIP, "search": [
        {"domain": "transform", "type": "float", "args": ["probability"], "targets": [0.0, 1.0]}]},
        validate={"pre_transforms": [{"ref": "RandomAxisFlip"}]}),
     None, ["train.pre_transforms.0.args.probability=0.75"], False,
     {"validate.pre_transforms[0].args.probability": 0.75, "validate.pre_transforms[0].name": "RandomAxisFlip"}),
    ("ref-by-alias", cfg({"name": "ScaleByResolution#ScaleImg", "args": {"fields": ["image"]}},
                         {"name": "ScaleByResolution#ScaleLb", "args": {"fields": ["label"]}},
                         validate={"pre_transforms": [{"ref": "ScaleLb"}]}),
     None, [], False, {"validate.pre_transforms[0].args.fields": ["label"]}),
    ("ref-follows-disabled", cfg({**FLIP, "disabled": "{off}"}, top={"off": True},
                                 validate={"pre_transforms": [{"ref": "RandomAxisFlip"}, {"ref": "RandomAxisFlip"}]}),
     None, ["off=false"], False, {"validate.pre_transforms[1].disabled": False}),
    ("name-ref-typed-int", cfg({"name": "Trainer", "args": {"max_epochs": "{epochs}"}}), None, [], False,
     {"train.pre_transforms[0].args.max_epochs": 3}),
    ("name-ref-follows-override", cfg({"name": "Trainer", "args": {"max_epochs": "{epochs}"}}), None, ["epochs=7"],
     False,
     {"train.pre_transforms[0].args.max_epochs": 7}),
    ("name-ref-format-string", cfg({"name": "Saver", "args": {"dir": "{MMAR_CKPT_DIR}/run_{epochs}"}}),
     {"MMAR_CKPT_DIR": "/ckpt"}, [], False, {"train.pre_transforms[0].args.dir": "/ckpt/run_3"}),
    ("env-beats-first-level", cfg({"name": "Trainer", "args": {"max_epochs": "{epochs}"}}), {"epochs": 11}, [], False,
     {"train.pre_transforms[0].args.max_epochs": 11, "epochs": 11}),
    ("command-line-beats-env", cfg({"name": "DS", "args": {"root": "{DATA_ROOT}"}}), {"DATA_ROOT": "/env"},
     ["DATA_ROOT=/cli"], False, {"train.pre_transforms[0].args.root": "/cli", "DATA_ROOT": MISSING}),
    ("undefined-name-stays-literal", cfg({"name": "DS", "args": {"root": "{NOWHERE}", "f": "{NOWHERE}/x"}}), None, [],
     False,
     {"train.pre_transforms[0].args.root": "{NOWHERE}", "train.pre_transforms[0].args.f": "{NOWHERE}/x"}),
    ("code-strings-kept", cfg({"name": "Opt", "args": {"params": "#@model.parameters()", "net": "@model",
                                                      "ot": "lambda x: {'a': x['loss']}", "d": "$x"}}), None, [], False,
     {"train.pre_transforms[0].args": {"params": "#@model.parameters()", "net": "@model",
                                       "ot": "lambda x: {'a': x['loss']}", "d": "$x"}}),
    ("dollar-brace-in-code-kept", cfg({"name": "X", "args": {"s": "lambda x: '${epochs}'", "t": "${epochs}"}}),
     None, [], False, {"train.pre_transforms[0].args.s": "lambda x: '${epochs}'",
                       # Clara formats any string with {name}: "$" stays, "{epochs}" is replaced
                       "train.pre_transforms[0].args.t": "$3"}),
    ("underscore-keys-inert", cfg(__model={"name": "Unet", "args": {"e": "{epochs}"}, "___search": [
        {"type": "enum", "args": ["x"], "targets": [[1]], "domain": "net"}]}), None, [], False,
     {"train.__model": {"name": "Unet", "args": {"e": "{epochs}"}, "___search": [
         {"type": "enum", "args": ["x"], "targets": [[1]], "domain": "net"}]}}),
    ("extra-component-keys-kept", cfg(dataset={"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}",
                                               "data_list_key": "training", "rank": 0, "args": {}}),
     {"DATASET_JSON": "/d.json"}, [], False,
     {"train.dataset.data_list_file_path": "/d.json", "train.dataset.rank": 0,
      "train.dataset.data_list_key": "training"}),
    ("components-inside-args", cfg(iteration={"name": "Interaction", "args": {"transforms": [
        {**FLIP, "search": [{"domain": "transform", "type": "float", "args": ["probability"], "targets": [0, 1]}]}]}}),
     None, ["train.iteration.args.transforms.0.args.probability=0.5"], False,
     {"train.iteration.args.transforms[0].args.probability": 0.5}),
    ("alias-is-not-a-name-ref", cfg({**FLIP, "args": {"probability": 0.2, "note": "{p}"}, "search": [
        {"domain": "t", "type": "float", "args": ["probability#p"], "targets": [0.0, 1.0]}]},
        {**ROT, "apply": {"probability": "p"}}), None, ["p=0.7"], False,
     {"train.pre_transforms[0].args.probability": 0.7, "train.pre_transforms[1].args.probability": 0.7,
      "train.pre_transforms[0].args.note": "{p}"}),
    ("alias-is-not-a-name-ref-default", cfg({**FLIP, "args": {"probability": 0.2, "note": "{p}"}, "search": [
        {"domain": "t", "type": "float", "args": ["probability#p"], "targets": [0.0, 1.0]}]},
        {**ROT, "apply": {"probability": "p"}}), None, [], False,
     {"train.pre_transforms[1].args.probability": 0.2, "train.pre_transforms[0].args.note": "{p}"}),
    ("args-with-name-key-not-a-component", cfg(T("TorchVisiond", keys="image", name="ColorJitter")), None, [], True,
     {"train.pre_transforms[0].args.name": "ColorJitter"}),
]
for case in CASES:  # a model with list-valued and scalar enums, used by the enum cases
    if case[0].startswith("enum-"):
        case[1]["train"]["model"] = {"name": "UNet", "args": {"channels": [16, 32], "norm": "batch"}, "search": [
            {"domain": "net", "type": "enum", "args": ["channels"], "targets": [[[16, 32]], [[8, 16]]]},
            {"domain": "net", "type": "enum", "args": ["norm"], "targets": [["batch"], ["INSTANCE"]]}]}


@pytest.mark.parametrize("cid,data,env,overrides,enabled_only,expect", cases(CASES))
def test_resolve_semantics(write_config, cid, data, env, overrides, enabled_only, expect):
    path = write_config(data, env=env)
    tree = resolve(path, overrides, enabled_only=enabled_only)
    assert "search" not in tree and "clara_hydra" not in tree and "hydra" not in tree
    for where, want in expect.items():
        if want is MISSING:
            with pytest.raises((KeyError, IndexError)):
                at(tree, where)
        else:
            assert at(tree, where) == want, f"{where} in {tree}"


SPACE_CASES = [
    ("float", cfg({**FLIP, "search": [{"domain": "transform", "type": "float", "args": ["probability#prob"],
                                        "targets": [0.0, 0.8]}]}, {**ROT, "apply": {"probability": "prob"}}),
     {"name": "prob", "type": "float", "domain": "transform", "sweep": "interval(0.0, 0.8)", "targets": [0.0, 0.8],
      "sources": ["train.pre_transforms[0].args.probability", "train.pre_transforms[1].args.probability"]}),
    ("int", cfg(model={"name": "M", "args": {"k": 2}, "search": [
        {"domain": "net", "type": "int", "args": ["k"], "targets": [1, 5]}]}),
     {"name": "M_k", "type": "int", "sweep": "int(interval(1, 5))",  # named by its class and arg
      "sources": ["train.model.args.k"], "at": "train.model.args.k"}),
    ("lr-log", cfg(top={"learning_rate": 1e-3, "lr_search": [1e-5, 1e-2]}),
     {"name": "learning_rate", "domain": "lr", "sweep": "tag(log, interval(1e-05, 0.01))", "targets": [1e-5, 1e-2],
      "sources": ["learning_rate"]}),
    ("enum-direct", cfg({**FLIP, "search": [{"domain": "transform", "type": "enum", "args": ["@disabled"],
                                              "targets": [[True], [False]]}]}),
     {"name": "RandomAxisFlip_disabled", "sweep": "choice(true, false)", "at": "train.pre_transforms.0.disabled",
      "choices": {"true": [True], "false": [False]}, "sources": ["train.pre_transforms[0].disabled"]}),
    ("exactly-one-of-labels", cfg(optimizer=[
        {"name": "Adam", "apply": {"@disabled": "o1"}}, {"name": "Novograd", "apply": {"@disabled": "o2"}}],
        search=[{"domain": "net", "type": "enum", "args": ["o1", "o2"], "targets": [[False, True], [True, False]]}]),
     {"name": "o1_o2", "sweep": "choice(Adam, Novograd)", "choices": {"Adam": [False, True], "Novograd": [True, False]},
      "sources": ["o1", "train.optimizer[0].disabled", "o2", "train.optimizer[1].disabled"]}),
    ("list-values", cfg(model={"name": "UNet", "args": {"channels": [16, 32]}, "search": [
        {"domain": "net", "type": "enum", "args": ["channels"], "targets": [[[16, 32]], [[8, 16]]]}]}),
     {"name": "UNet_channels", "domain": "net", "choices": {"16-32": [[16, 32]], "8-16": [[8, 16]]},
      "sweep": "choice(16-32, 8-16)", "targets": [[[16, 32]], [[8, 16]]]}),
    ("domain-kept-null", cfg(model={"name": "M", "args": {"k": 2}, "search": [
        {"type": "int", "args": ["k"], "targets": [1, 5]}]}), {"domain": None}),
]


@pytest.mark.parametrize("cid,data,want", cases(SPACE_CASES))
def test_space_json(write_config, cid, data, want):
    params = space(write_config(data))
    assert len(params) == 1
    for key, value in want.items():
        assert params[0][key] == value, key


LABELLED = cfg(model={"name": "UNet", "args": {"channels": [16, 32], "a": 1, "b": "x", "c": None}, "search": [
    {"domain": "net", "type": "enum", "args": ["channels"], "targets": [[[16, 32]], [[8, 16]], [[4]]]},
    {"domain": "net", "type": "enum", "args": ["a", "b"], "targets": [[1, "x"], [2, "y z"], [-3, "1"]]},
    {"domain": "net", "type": "enum", "args": ["c"], "targets": [None, "None", 1.5, "1"]}]})
#: param -> the places it sets, and each label `space --json` lists -> the values it sets there
#: (a label is a word Hydra reads back as that string: "v" before one that would read as a number
#: or null, "m" for a minus, "p" for a point; a duplicate-free label per option).
LABELS = {
    "UNet_channels": (["train.model.args.channels"],
                      {"16-32": [[16, 32]], "8-16": [[8, 16]], "v4": [[4]]}),
    "UNet_a_b": (["train.model.args.a", "train.model.args.b"],
              {"1-x": [1, "x"], "2-y_z": [2, "y z"], "m3-1": [-3, "1"]}),
    "UNet_c": (["train.model.args.c"],
            {"vnull": [None], "None": ["None"], "1p5": [1.5], "v1": ["1"]}),
}


def test_space_lists_each_label_with_its_values(write_config):
    params = space(write_config(LABELLED))
    assert {p["name"]: (p["sources"], p["choices"]) for p in params} == LABELS
    assert [list(p["choices"]) for p in params] == [list(choices) for _, choices in LABELS.values()]  # in order


@pytest.mark.parametrize("name,label", [pytest.param(name, label, id=f"{name}={label}")
                                        for name, (_, choices) in LABELS.items() for label in choices])
def test_every_label_works_on_the_command_line(write_config, name, label):
    """Each choice label, given as-is, resolves to the values it stands for (of their JSON type:
    null is not "None", "1" is not 1)."""
    sources, choices = LABELS[name]
    tree = resolve(write_config(LABELLED), [f"{name}={label}"])
    got = [at(tree, src) for src in sources]
    assert [(type(v), v) for v in got] == [(type(v), v) for v in choices[label]]


def _tx(cls: str, tag: str) -> dict:
    return {"name": cls, "args": {"fields": [tag]}}


# (train pre_transforms, the validate ref, which train component it must copy); see reader._find_ref
REF_PRECEDENCE = [
    pytest.param([_tx("ScaleByResolution", "plain"), _tx("LoadNifti#ScaleByResolution", "alias")],
                 "ScaleByResolution", 1, id="alias-beats-class-name"),
    pytest.param([_tx("LoadNifti#ScaleByResolution", "alias"), _tx("ScaleByResolution", "plain")],
                 "ScaleByResolution", 0, id="alias-beats-class-name-written-first"),
    pytest.param([_tx("RandomAxisFlip#first", "aliased"), _tx("RandomAxisFlip", "plain")],
                 "RandomAxisFlip", 1, id="unaliased-beats-aliased-of-the-class"),
    pytest.param([_tx("RandomAxisFlip", "plain"), _tx("RandomAxisFlip#second", "aliased")],
                 "RandomAxisFlip", 0, id="unaliased-beats-aliased-of-the-class-written-first"),
    pytest.param([_tx("LoadNifti", "load"), _tx("RandomAxisFlip#only", "aliased")],
                 "RandomAxisFlip", 1, id="aliased-of-the-class-when-no-unaliased"),
    pytest.param([_tx("RandomAxisFlip", "plain"), _tx("RandomAxisFlip#first", "aliased")],
                 "first", 1, id="alias-names-its-component"),
]


@pytest.mark.parametrize("pre,ref,index", REF_PRECEDENCE)
def test_ref_precedence(write_config, pre, ref, index):
    """{"ref": X} in validate copies the train component aliased X ("Cls#X"); failing that, the
    un-aliased component of class X over an aliased one; failing that, an aliased one of class X."""
    path = write_config({"epochs": 1, "train": {"pre_transforms": pre},
                         "validate": {"pre_transforms": [{"name": "LoadNifti", "args": {}}, {"ref": ref}]}})
    tree = resolve(path)
    assert tree["train"]["pre_transforms"] == pre  # the train side is kept as written
    assert tree["validate"]["pre_transforms"][1] == pre[index]
