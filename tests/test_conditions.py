"""Conditional search spaces from Clara's alternatives: an arg searched on a component that
another param switches on and off (an alternatives member via ``apply {"@disabled": ...}``, or a
component searched on ``@disabled``) is searched only where that component is enabled."""

from __future__ import annotations

import pytest
from conftest import run_cli

from clara_hydra.reader import analyse
from clara_hydra.space import Condition, active, build, count_combinations

SGD = {"name": "SGD", "args": {"lr": 0.01, "momentum": 0.9},
       "search": [{"domain": "lr", "type": "float", "args": ["momentum"], "targets": [0.5, 0.99]}],
       "apply": {"@disabled": "useAdam"}}
ADAM = {"name": "Adam", "args": {"lr": 0.01, "amsgrad": False},
        "search": [{"domain": "lr", "type": "enum", "args": ["amsgrad"], "targets": [True, False]}],
        "apply": {"@disabled": "useSGD"}}
FLIP = {"name": "RandFlipd", "args": {"keys": ["image"], "prob": 0.5},
        "search": [{"domain": "transform", "type": "enum", "args": ["@disabled"], "targets": [[True], [False]]},
                   {"domain": "transform", "type": "float", "args": ["prob"], "targets": [0.1, 0.9]}]}
NOISE = {"name": "RandGaussianNoised", "args": {"keys": ["image"], "prob#p": 0.5}}


def config(pre=(FLIP,), optimizer=(SGD, ADAM)):
    return {"epochs": 1, "learning_rate": 0.01,
            "search": [{"domain": "net", "type": "enum", "args": ["useSGD", "useAdam"],
                        "targets": [[True, False], [False, True]]},
                       {"domain": "lr", "type": "float", "args": ["learning_rate"], "targets": [0.001, 0.1]}],
            "train": {"optimizer": list(optimizer), "pre_transforms": list(pre)}}


def _when(data) -> dict:
    return {p.name: (p.when.text() if p.when else None) for p in build(analyse(data, file="c.json"))}


@pytest.mark.parametrize("data, want", [
    pytest.param(config(), {"useSGD_useAdam": None, "learning_rate": None,
                            "SGD_momentum": "when useSGD_useAdam=SGD",
                            "Adam_amsgrad": "when useSGD_useAdam=Adam",
                            "RandFlipd_disabled": None,
                            "RandFlipd_prob": "when RandFlipd_disabled=false"},
                 id="alternatives-and-a-disabled-search"),
    pytest.param(config(pre=(dict(FLIP, args={"keys": ["image"], "prob#p": 0.5}, search=[
        FLIP["search"][0], {"domain": "transform", "type": "float", "args": ["prob#p"], "targets": [0.1, 0.9]}]),
        dict(NOISE, apply={"prob": "p"}))), {"p": None}, id="also-set-where-nothing-switches-it-off"),
])
def test_which_params_are_conditional(data, want):
    got = _when(data)
    assert {k: got[k] for k in want} == want


def test_space_shows_the_conditions(tmp_path):
    import json
    path = tmp_path / "config_train.json"
    path.write_text(json.dumps(config()))
    proc = run_cli("space", path)
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.split("\n\n")[0].splitlines()
    assert header.split() == ["NAME", "TYPE", "DOMAIN", "SWEEP", "WHEN", "SETS"]
    momentum = next(r for r in rows if r.startswith("SGD_momentum"))
    assert "when useSGD_useAdam=SGD" in momentum
    listed = json.loads(run_cli("space", path, "--json").stdout)
    assert next(p for p in listed if p["name"] == "Adam_amsgrad")["when"] == \
        {"param": "useSGD_useAdam", "in": ["Adam"]}


CONDS = {"m": Condition("opt", ("SGD",)), "b": Condition("opt", ("Adam",)), "deep": Condition("b", ("true",))}


@pytest.mark.parametrize("values, fixed, want", [
    pytest.param({"opt": "SGD", "b": True}, {}, ["opt", "m"], id="sgd"),
    pytest.param({"opt": "Adam", "b": True}, {}, ["opt", "b", "deep"], id="adam-then-nested"),
    pytest.param({"opt": "Adam", "b": False}, {}, ["opt", "b"], id="nested-off"),
    pytest.param({}, {"opt": "SGD"}, ["m"], id="controller-fixed-on-the-command-line"),
])
def test_a_trial_samples_only_what_its_values_enable(values, fixed, want):
    names = [n for n in ("m", "b", "deep", "opt") if n not in fixed]
    got = active(names, CONDS, fixed, values.__getitem__)
    assert sorted(got) == sorted(want)


def test_a_finite_conditional_space_counts_its_distinct_trials():
    grid = {"opt": ["SGD", "Adam"], "m": [0.5, 0.9], "b": [True, False], "x": [1, 2]}
    conds = {"m": CONDS["m"], "b": CONDS["b"]}
    assert count_combinations(grid, conds, {}) == 2 * 2 + 2 * 2  # SGD x m x x + Adam x b x x
    assert count_combinations(grid, {}, {}) == 16
